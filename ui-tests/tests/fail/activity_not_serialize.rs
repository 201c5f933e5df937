use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

pub struct Secret(pub String);

pub struct Acts;

#[activities]
impl Acts {
    #[activity]
    #[openbox::governed_activity]
    pub async fn leak(_ctx: ActivityContext, secret: Secret) -> Result<String, ActivityError> {
        Ok(secret.0)
    }
}

fn main() {}
