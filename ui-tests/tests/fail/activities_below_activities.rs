use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

pub struct Acts;

#[activities]
#[openbox::governed_activities]
impl Acts {
    #[activity]
    pub async fn go(_ctx: ActivityContext, x: String) -> Result<String, ActivityError> {
        Ok(x)
    }
}

fn main() {}
