use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

pub struct Acts<T>(T);

#[openbox::governed_activities]
#[activities]
impl<T: Send + Sync + 'static> Acts<T> {
    #[activity]
    pub async fn go(_ctx: ActivityContext, x: String) -> Result<String, ActivityError> {
        Ok(x)
    }
}

fn main() {}
