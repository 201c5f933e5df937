//! NATS through async-nats: `GovernedNats` governs publishes and requests, and its
//! `jetstream()` context JetStream publishes, evaluated with the stream's ack. Here a rule
//! blocks every subject under `fleet.shutdown`: the stream stores only what was allowed.
//!
//! `cargo run -p openbox-examples --example hook_nats` (starts a Temporal dev server unless
//! `TEMPORAL_ADDRESS` is set, and NATS with JetStream at 127.0.0.1:4222).

use std::time::Duration;

use openbox::hooks::messaging::nats::GovernedNats;
use openbox_examples::Example;
use temporalio_common::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult};

const NATS_URL: &str = "nats://127.0.0.1:4222";
const STREAM: &str = "OPENBOX_EXAMPLE_FLEET";

const RULES: &str = r#"
[[rules]]
name = "no shutdowns"
verdict = "block"
reason = "shutting the fleet down needs a human"
match = { "spans.0.stage" = "started", "spans.0.attributes.messaging.destination.name" = "fleet.shutdown.all" }
"#;

/// A credential the message carries: Core sees `[REDACTED]`.
const TOKEN: &str = "example-nats-token-97531";

pub struct Acts;

#[openbox::governed_activities]
#[activities]
impl Acts {
    /// Publishes a command to `subject` through JetStream and waits for the stream's ack.
    #[activity(name = "send_command")]
    pub async fn step(_ctx: ActivityContext, subject: String) -> Result<String, ActivityError> {
        let client = async_nats::connect(NATS_URL)
            .await
            .map_err(anyhow::Error::from)?;
        let nats = GovernedNats::new(client);
        let payload = format!("run now password={TOKEN}");
        let ack = nats
            .jetstream()
            .publish(subject, payload.into())
            .await
            .map_err(anyhow::Error::from)?
            .await
            .map_err(anyhow::Error::from)?;
        Ok(format!("stored as #{}", ack.sequence))
    }
}

#[workflow]
#[derive(Default)]
pub struct NatsExample;

#[workflow_methods]
impl NatsExample {
    #[run(name = "NatsExample")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        subjects: Vec<String>,
    ) -> WorkflowResult<Vec<String>> {
        let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
            .retry_policy(RetryPolicy::builder().maximum_attempts(1).build())
            .build();
        let mut results = Vec::new();
        for subject in subjects {
            results.push(
                match ctx
                    .execute_activity(Acts::step, subject, opts.clone())
                    .await
                {
                    Ok(out) => out,
                    Err(e) => format!("stopped: {e}"),
                },
            );
        }
        Ok(results)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let ex = Example::start("hook_nats", RULES).await?;
    // A fresh stream over `fleet.>`, read back with a plain context (reading is not governed).
    let jetstream = async_nats::jetstream::new(async_nats::connect(NATS_URL).await?);
    let _ = jetstream.delete_stream(STREAM).await;
    jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: STREAM.into(),
            subjects: vec!["fleet.>".into()],
            storage: async_nats::jetstream::stream::StorageType::Memory,
            ..Default::default()
        })
        .await?;
    let options = WorkerOptions::new(&ex.task_queue)
        .worker_plugin(ex.plugin().await?)
        .register_activities(Acts)
        .register_workflow::<NatsExample>()?
        .build();
    let subjects = vec![
        "fleet.restart.web".to_owned(),
        "fleet.shutdown.all".to_owned(),
    ];
    let results = ex.run_workflow(options, NatsExample::run, subjects).await?;
    println!("results: {results:?}");
    let stored = jetstream
        .get_stream(STREAM)
        .await?
        .info()
        .await?
        .state
        .messages;
    println!("the stream stores {stored} message(s)");
    jetstream.delete_stream(STREAM).await?;
    let hooks = ex.print_hooks().await?;
    anyhow::ensure!(results[0] == "stored as #1", "the restart was stored");
    anyhow::ensure!(
        results[1].starts_with("stopped"),
        "the shutdown was blocked"
    );
    anyhow::ensure!(stored == 1, "the broker never saw the shutdown");
    anyhow::ensure!(
        hooks.len() == 3,
        "the restart at both stages, the shutdown at started"
    );
    anyhow::ensure!(
        !hooks.iter().any(|e| e.body.to_string().contains(TOKEN)),
        "a credential reached Core"
    );
    Ok(())
}
