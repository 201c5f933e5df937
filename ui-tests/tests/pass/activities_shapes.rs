use serde::{Deserialize, Serialize};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

#[derive(Serialize, Deserialize)]
pub struct Charge {
    pub customer: String,
    pub amount_cents: u64,
}

pub struct Payments;

#[openbox::governed_activities]
#[activities]
impl Payments {
    #[activity(name = "charge")]
    pub async fn charge(
        _ctx: ActivityContext,
        req: Charge,
        memo: String,
        retries: u8,
    ) -> Result<String, ActivityError> {
        Ok(format!("{} {memo} {retries}", req.amount_cents))
    }

    #[activity]
    #[openbox::governed_activity(capture_output = false)]
    pub fn audit(_ctx: ActivityContext, line: String) -> Result<usize, ActivityError> {
        Ok(line.len())
    }

    #[activity]
    pub async fn ping(_ctx: ActivityContext) -> Result<(), ActivityError> {
        Ok(())
    }

    /// Not an activity: not declared.
    pub fn helper() {}
}

fn main() {}
