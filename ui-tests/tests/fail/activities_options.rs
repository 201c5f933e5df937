use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

pub struct Acts;

#[openbox::governed_activities(capture_input = false)]
#[activities]
impl Acts {
    #[activity]
    pub async fn go(_ctx: ActivityContext, x: String) -> Result<String, ActivityError> {
        Ok(x)
    }
}

fn main() {}
