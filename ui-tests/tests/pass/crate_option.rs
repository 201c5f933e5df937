// `crate = "…"` names where `openbox` is, for code that renamed the dependency.
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

mod renamed {
    pub use openbox::*;
}

#[openbox::traced(crate = "crate::renamed")]
fn score(text: &str) -> usize {
    text.len()
}

pub struct Acts;

#[openbox::governed_activities(crate = "crate::renamed")]
#[activities]
impl Acts {
    #[activity]
    #[openbox::governed_activity(crate = "crate::renamed")]
    pub async fn go(_ctx: ActivityContext, x: String) -> Result<usize, ActivityError> {
        Ok(score(&x))
    }
}

fn main() {}
