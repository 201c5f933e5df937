use serde::Deserialize;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{SyncWorkflowContext, WorkflowContext, WorkflowResult};

// Deserialize (Temporal needs it to decode the signal) but not Serialize (OpenBox reports it).
#[derive(Deserialize)]
pub struct Opaque {
    pub x: u8,
}

#[workflow]
#[derive(Default)]
pub struct Flow;

#[openbox::governed_workflow]
#[workflow_methods]
impl Flow {
    #[run]
    pub async fn run(_ctx: &mut WorkflowContext<Self>, input: String) -> WorkflowResult<String> {
        Ok(input)
    }

    #[signal]
    pub fn poke(&mut self, _ctx: &mut SyncWorkflowContext<Self>, value: Opaque) {
        let _ = value.x;
    }
}

fn main() {}
