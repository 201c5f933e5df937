use temporalio_macros::activities;
use temporalio_sdk::activities::ActivityError;

pub struct Acts;

#[activities]
impl Acts {
    #[activity]
    #[openbox::governed_activity]
    pub async fn charge(amount: u64) -> Result<u64, ActivityError> {
        Ok(amount)
    }
}

fn main() {}
