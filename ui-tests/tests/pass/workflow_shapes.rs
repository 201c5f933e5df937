//! #[governed_workflow] on a workflow with sync and async signals, named and not.
use openbox::governed_workflow;
use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{SyncWorkflowContext, WorkflowContext, WorkflowResult};

#[derive(Serialize, Deserialize, Clone)]
pub struct Memo {
    pub text: String,
}

const RENAMED: &str = "renamed_signal";

#[workflow]
#[derive(Default)]
pub struct Flow {
    memos: Vec<Memo>,
}

#[governed_workflow]
#[workflow_methods]
impl Flow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: String) -> WorkflowResult<String> {
        let _ = ctx.wait_condition(|s| !s.memos.is_empty()).await;
        Ok(input)
    }

    #[signal]
    pub fn memo(&mut self, _ctx: &mut SyncWorkflowContext<Self>, memo: Memo) {
        self.memos.push(memo);
    }

    #[signal(name = RENAMED)]
    pub async fn later(ctx: &mut WorkflowContext<Self>, text: String) {
        ctx.state_mut(|s| s.memos.push(Memo { text }));
    }

    #[signal(name = "ping")]
    pub fn ping(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {}
}

fn main() {
    let _ = Flow::run;
}
