use temporalio_macros::activities;
use temporalio_sdk::activities::ActivityContext;

pub struct Acts;

#[activities]
impl Acts {
    #[activity]
    #[openbox::governed_activity]
    pub async fn infallible(_ctx: ActivityContext, amount: u64) -> u64 {
        amount
    }

    #[activity]
    #[openbox::governed_activity]
    pub async fn other_error(_ctx: ActivityContext, amount: u64) -> Result<u64, std::io::Error> {
        Ok(amount)
    }
}

fn main() {}
