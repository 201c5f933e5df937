//! redis hook: a `GovernedRedis` evaluates every command; Core sees the command and its key,
//! never its value.
//!
//! `cargo run -p openbox-examples --example hook_redis` (starts a Temporal dev server unless
//! `TEMPORAL_ADDRESS` is set, and Redis at 127.0.0.1:6379).

use std::time::Duration;

use openbox::hooks::db::redis::GovernedRedis;
use openbox_examples::Example;
use redis::AsyncCommands;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult};

pub struct Acts;

#[openbox::governed_activities]
#[activities]
impl Acts {
    /// Stores `value` under a scratch key and reads it back.
    #[activity(name = "redis_roundtrip")]
    pub async fn step(_ctx: ActivityContext, value: String) -> Result<String, ActivityError> {
        let conn = redis::Client::open("redis://127.0.0.1:6379/")
            .map_err(anyhow::Error::from)?
            .get_multiplexed_async_connection()
            .await
            .map_err(anyhow::Error::from)?;
        let mut db = GovernedRedis::new(conn, "127.0.0.1", 6379);
        let key = format!("openbox-example:{}", std::process::id());
        let _: () = db
            .set_ex(&key, &value, 60)
            .await
            .map_err(anyhow::Error::from)?;
        let back: String = db.get(&key).await.map_err(anyhow::Error::from)?;
        Ok(format!("read back {} bytes", back.len()))
    }
}

#[workflow]
#[derive(Default)]
pub struct RedisExample;

#[workflow_methods]
impl RedisExample {
    #[run(name = "RedisExample")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: String) -> WorkflowResult<String> {
        let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30)).build();
        Ok(ctx.execute_activity(Acts::step, input, opts).await?)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let ex = Example::start("hook_redis", "").await?;
    let options = WorkerOptions::new(&ex.task_queue)
        .worker_plugin(ex.plugin().await?)
        .register_activities(Acts)
        .register_workflow::<RedisExample>()?
        .build();
    let result = ex
        .run_workflow(options, RedisExample::run, "secret-value".to_owned())
        .await?;
    println!("result: {result}");
    let hooks = ex.print_hooks().await?;
    anyhow::ensure!(hooks.len() == 4, "two commands, two evaluations each");
    anyhow::ensure!(
        !hooks
            .iter()
            .any(|e| e.body["spans"].to_string().contains("secret-value")),
        "a value reached Core in a span"
    );
    Ok(())
}
