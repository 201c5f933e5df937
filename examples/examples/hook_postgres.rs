//! tokio-postgres hook: a `GovernedClient` evaluates each statement; bound values are never
//! sent.
//!
//! `cargo run -p openbox-examples --example hook_postgres` (starts a Temporal dev server unless
//! `TEMPORAL_ADDRESS` is set, and PostgreSQL at 127.0.0.1:5432 with a database `test`).

use std::time::Duration;

use openbox::hooks::db::postgres::GovernedClient;
use openbox_examples::Example;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult};

pub struct Acts;

#[openbox::governed_activities]
#[activities]
impl Acts {
    /// Selects `note` back through a bound parameter.
    #[activity(name = "postgres_echo")]
    pub async fn step(_ctx: ActivityContext, note: String) -> Result<String, ActivityError> {
        let (client, connection) = tokio_postgres::connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test",
            tokio_postgres::NoTls,
        )
        .await
        .map_err(anyhow::Error::from)?;
        let driver = tokio::spawn(connection);
        let db = GovernedClient::new(client, "test", "127.0.0.1", 5432);
        let row = db
            .query_one("SELECT $1::text AS note", &[&note])
            .await
            .map_err(anyhow::Error::from)?;
        let back: String = row.get("note");
        drop(db);
        driver.abort();
        Ok(format!("echoed {back}"))
    }
}

#[workflow]
#[derive(Default)]
pub struct PostgresExample;

#[workflow_methods]
impl PostgresExample {
    #[run(name = "PostgresExample")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: String) -> WorkflowResult<String> {
        let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30)).build();
        Ok(ctx.execute_activity(Acts::step, input, opts).await?)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let ex = Example::start("hook_postgres", "").await?;
    let options = WorkerOptions::new(&ex.task_queue)
        .worker_plugin(ex.plugin().await?)
        .register_activities(Acts)
        .register_workflow::<PostgresExample>()?
        .build();
    let result = ex
        .run_workflow(options, PostgresExample::run, "hello".to_owned())
        .await?;
    println!("result: {result}");
    let hooks = ex.print_hooks().await?;
    anyhow::ensure!(hooks.len() == 2, "one statement, two evaluations");
    anyhow::ensure!(hooks[0].body["spans"][0]["db_statement"] == "SELECT $1::text AS note");
    Ok(())
}
