//! `#[traced]`: any function becomes a governed operation inside an activity — Core sees its
//! name, arguments and result, and a BLOCK at `started` means the body does not run.
//!
//! `cargo run -p openbox-examples --example hook_traced` (starts a Temporal dev server unless
//! `TEMPORAL_ADDRESS` is set).

use std::time::Duration;

use openbox_examples::Example;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult};

pub struct Acts;

#[openbox::governed_activities]
#[activities]
impl Acts {
    /// Scores `text` with a traced function.
    #[activity(name = "score_text")]
    pub async fn step(_ctx: ActivityContext, text: String) -> Result<String, ActivityError> {
        let score = score(&text, 3).await.map_err(anyhow::Error::from)?;
        Ok(format!("score {score}"))
    }
}

/// A traced function: outside an activity it is a plain function.
#[openbox::traced]
async fn score(text: &str, weight: u32) -> Result<u32, std::io::Error> {
    Ok(text.split_whitespace().count() as u32 * weight)
}

#[workflow]
#[derive(Default)]
pub struct TracedExample;

#[workflow_methods]
impl TracedExample {
    #[run(name = "TracedExample")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: String) -> WorkflowResult<String> {
        let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30)).build();
        Ok(ctx.execute_activity(Acts::step, input, opts).await?)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let ex = Example::start("hook_traced", "").await?;
    let options = WorkerOptions::new(&ex.task_queue)
        .worker_plugin(ex.plugin().await?)
        .register_activities(Acts)
        .register_workflow::<TracedExample>()?
        .build();
    let result = ex
        .run_workflow(
            options,
            TracedExample::run,
            "the quick brown fox".to_owned(),
        )
        .await?;
    println!("result: {result}");
    let hooks = ex.print_hooks().await?;
    anyhow::ensure!(hooks.len() == 2, "one call, two evaluations");
    anyhow::ensure!(hooks[0].body["spans"][0]["function"] == "score");
    Ok(())
}
