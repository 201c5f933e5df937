use temporalio_sdk::activities::ActivityError;

pub struct Acts;

impl Acts {
    // Shaped like a method #[activities] renamed, but without its ActivityContext.
    #[openbox::governed_activity]
    pub async fn __charge(amount: u64) -> Result<u64, ActivityError> {
        Ok(amount)
    }
}

fn main() {}
