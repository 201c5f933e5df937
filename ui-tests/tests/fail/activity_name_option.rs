use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

pub struct Acts;

#[openbox::governed_activities]
#[activities]
impl Acts {
    #[activity(name = "go")]
    #[openbox::governed_activity(name = "go")]
    pub async fn go(_ctx: ActivityContext, x: String) -> Result<String, ActivityError> {
        Ok(x)
    }
}

fn main() {}
