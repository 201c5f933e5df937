use temporalio_sdk::activities::{ActivityContext, ActivityError};

pub struct Acts;

// No #[activities] on the impl: the method is not an activity.
impl Acts {
    #[openbox::governed_activity]
    pub async fn charge(_ctx: ActivityContext, amount: u64) -> Result<u64, ActivityError> {
        Ok(amount)
    }
}

fn main() {}
