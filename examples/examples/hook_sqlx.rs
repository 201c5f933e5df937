//! sqlx hook: statements through a `GovernedPool` are evaluated before they run and after;
//! bound values are never sent, only the statement with its placeholders.
//!
//! `cargo run -p openbox-examples --example hook_sqlx` (starts a Temporal dev server unless
//! `TEMPORAL_ADDRESS` is set, and PostgreSQL at 127.0.0.1:5432 with a database `test`).

use std::time::Duration;

use openbox::hooks::db::sqlx::GovernedPool;
use openbox_examples::Example;
use sqlx::AssertSqlSafe;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult};

pub struct Acts;

#[openbox::governed_activities]
#[activities]
impl Acts {
    /// Inserts `note` into a scratch table and counts the rows.
    #[activity(name = "sqlx_note")]
    pub async fn step(_ctx: ActivityContext, note: String) -> Result<String, ActivityError> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect("postgres://postgres@127.0.0.1:5432/test")
            .await
            .map_err(anyhow::Error::from)?;
        let db = GovernedPool::postgres(pool);
        let table = format!("openbox_example_{}", std::process::id());
        let run = |sql: String| sqlx::query(AssertSqlSafe(sql));
        run(format!("CREATE TABLE IF NOT EXISTS {table} (note TEXT)"))
            .execute(&db)
            .await
            .map_err(anyhow::Error::from)?;
        run(format!("INSERT INTO {table} (note) VALUES ($1)"))
            .bind(&note)
            .execute(&db)
            .await
            .map_err(anyhow::Error::from)?;
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&db)
            .await
            .map_err(anyhow::Error::from)?;
        run(format!("DROP TABLE {table}"))
            .execute(&db)
            .await
            .map_err(anyhow::Error::from)?;
        Ok(format!("{n} note(s)"))
    }
}

#[workflow]
#[derive(Default)]
pub struct SqlxExample;

#[workflow_methods]
impl SqlxExample {
    #[run(name = "SqlxExample")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: String) -> WorkflowResult<String> {
        let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30)).build();
        Ok(ctx.execute_activity(Acts::step, input, opts).await?)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let ex = Example::start("hook_sqlx", "").await?;
    let options = WorkerOptions::new(&ex.task_queue)
        .worker_plugin(ex.plugin().await?)
        .register_activities(Acts)
        .register_workflow::<SqlxExample>()?
        .build();
    let result = ex
        .run_workflow(options, SqlxExample::run, "hello".to_owned())
        .await?;
    println!("result: {result}");
    let hooks = ex.print_hooks().await?;
    anyhow::ensure!(hooks.len() >= 8, "four statements, two evaluations each");
    anyhow::ensure!(
        !hooks
            .iter()
            .any(|e| e.body["spans"].to_string().contains("hello")),
        "a bound value reached Core in a span"
    );
    Ok(())
}
