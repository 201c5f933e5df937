use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

pub struct Acts;

#[activities]
impl Acts {
    // Every option mistake is reported at once.
    #[activity]
    #[openbox::governed_activity(nmae = "x", name = "a", name = "b", capture_input = "no", approval, capture_output = 1)]
    pub async fn charge(_ctx: ActivityContext, amount: u64) -> Result<u64, ActivityError> {
        Ok(amount)
    }
}

fn main() {}
