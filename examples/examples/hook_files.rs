//! File hook: `openbox::fs` mirrors `tokio::fs`; opening, reading, writing and closing are
//! evaluated, with paths and byte counts, never content.
//!
//! `cargo run -p openbox-examples --example hook_files` (starts a Temporal dev server unless
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
    /// Writes `text` to a scratch file and reads it back.
    #[activity(name = "files_roundtrip")]
    pub async fn step(_ctx: ActivityContext, text: String) -> Result<String, ActivityError> {
        let path = std::env::temp_dir().join(format!("openbox-example-{}.txt", std::process::id()));
        openbox::fs::write(&path, text.as_bytes())
            .await
            .map_err(anyhow::Error::from)?;
        let back = openbox::fs::read_to_string(&path)
            .await
            .map_err(anyhow::Error::from)?;
        let _ = std::fs::remove_file(&path);
        Ok(format!("read back {} bytes", back.len()))
    }
}

#[workflow]
#[derive(Default)]
pub struct FilesExample;

#[workflow_methods]
impl FilesExample {
    #[run(name = "FilesExample")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: String) -> WorkflowResult<String> {
        let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30)).build();
        Ok(ctx.execute_activity(Acts::step, input, opts).await?)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let ex = Example::start("hook_files", "").await?;
    let options = WorkerOptions::new(&ex.task_queue)
        .worker_plugin(ex.plugin().await?)
        .register_activities(Acts)
        .register_workflow::<FilesExample>()?
        .build();
    let result = ex
        .run_workflow(options, FilesExample::run, "draft text".to_owned())
        .await?;
    println!("result: {result}");
    let hooks = ex.print_hooks().await?;
    anyhow::ensure!(
        !hooks
            .iter()
            .any(|e| e.body["spans"].to_string().contains("draft text")),
        "file content reached Core"
    );
    Ok(())
}
