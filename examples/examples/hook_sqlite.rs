//! rusqlite hook: a `GovernedConnection` evaluates each statement. rusqlite blocks, so the
//! activity is a sync one, annotated with `#[openbox::governed_activity]` so that its operations
//! are governed on the blocking thread Temporal runs it on.
//!
//! `cargo run -p openbox-examples --example hook_sqlite` (starts a Temporal dev server unless
//! `TEMPORAL_ADDRESS` is set).

use std::time::Duration;

use openbox::hooks::db::sqlite::GovernedConnection;
use openbox_examples::Example;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult};

pub struct Acts;

#[openbox::governed_activities]
#[activities]
impl Acts {
    /// Stores `note` in a scratch SQLite file.
    #[activity(name = "sqlite_note")]
    #[openbox::governed_activity]
    pub fn step(_ctx: ActivityContext, note: String) -> Result<String, ActivityError> {
        let path = std::env::temp_dir().join(format!("openbox-example-{}.db", std::process::id()));
        let db = GovernedConnection::open(&path).map_err(anyhow::Error::from)?;
        db.execute_batch("CREATE TABLE IF NOT EXISTS notes (note TEXT)")
            .map_err(anyhow::Error::from)?;
        let n = db
            .execute("INSERT INTO notes (note) VALUES (?1)", [&note])
            .map_err(anyhow::Error::from)?;
        drop(db);
        let _ = std::fs::remove_file(&path);
        Ok(format!("inserted {n}"))
    }
}

#[workflow]
#[derive(Default)]
pub struct SqliteExample;

#[workflow_methods]
impl SqliteExample {
    #[run(name = "SqliteExample")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: String) -> WorkflowResult<String> {
        let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30)).build();
        Ok(ctx.execute_activity(Acts::step, input, opts).await?)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let ex = Example::start("hook_sqlite", "").await?;
    let options = WorkerOptions::new(&ex.task_queue)
        .worker_plugin(ex.plugin().await?)
        .register_activities(Acts)
        .register_workflow::<SqliteExample>()?
        .build();
    let result = ex
        .run_workflow(options, SqliteExample::run, "hello".to_owned())
        .await?;
    println!("result: {result}");
    let hooks = ex.print_hooks().await?;
    anyhow::ensure!(hooks.len() == 4, "two statements, two evaluations each");
    Ok(())
}
