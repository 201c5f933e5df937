//! RabbitMQ through lapin: `GovernedChannel::basic_publish` takes lapin's arguments; a message
//! is evaluated before it is sent (exchange, routing key, headers and payload with secrets
//! masked) and when the broker confirmed it. Here a rule blocks the `payments.refund` routing
//! key: the queue holds only the order that was allowed.
//!
//! `cargo run -p openbox-examples --example hook_rabbitmq` (starts a Temporal dev server unless
//! `TEMPORAL_ADDRESS` is set, and RabbitMQ at 127.0.0.1:5672, guest/guest).

use std::time::Duration;

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use openbox::hooks::messaging::amqp::GovernedChannel;
use openbox_examples::Example;
use temporalio_common::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult};

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

const RULES: &str = r#"
[[rules]]
name = "no refunds"
verdict = "block"
reason = "refunds need a human"
match = { "spans.0.stage" = "started", "spans.0.attributes.messaging.rabbitmq.destination.routing_key" = "payments.refund" }
"#;

/// A credential the message carries in a header and its payload: Core sees `[REDACTED]`.
const API_KEY: &str = "sk-example-rabbit-0123456789";

pub struct Acts;

#[openbox::governed_activities]
#[activities]
impl Acts {
    /// Publishes a JSON message to the default exchange with `routing_key` (a queue's name) and
    /// waits for the broker's confirm.
    #[activity(name = "publish_message")]
    pub async fn step(_ctx: ActivityContext, routing_key: String) -> Result<String, ActivityError> {
        let conn = Connection::connect(AMQP_URL, ConnectionProperties::default())
            .await
            .map_err(anyhow::Error::from)?;
        let channel = conn.create_channel().await.map_err(anyhow::Error::from)?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(anyhow::Error::from)?;
        let channel = GovernedChannel::new(channel).server("127.0.0.1", 5672);
        let mut headers = FieldTable::default();
        headers.insert("x-api-key".into(), AMQPValue::LongString(API_KEY.into()));
        let payload = format!(r#"{{"amount": 42, "api_key": "{API_KEY}"}}"#);
        let confirmation = channel
            .basic_publish(
                "".into(),
                routing_key.as_str().into(),
                BasicPublishOptions::default(),
                payload.as_bytes(),
                BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_headers(headers),
            )
            .await
            .map_err(anyhow::Error::from)?
            .await
            .map_err(anyhow::Error::from)?;
        let _ = conn.close(200, "done".into()).await;
        Ok(format!("confirmed: {}", confirmation.is_ack()))
    }
}

#[workflow]
#[derive(Default)]
pub struct RabbitMqExample;

#[workflow_methods]
impl RabbitMqExample {
    #[run(name = "RabbitMqExample")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        keys: Vec<String>,
    ) -> WorkflowResult<Vec<String>> {
        let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
            .retry_policy(RetryPolicy::builder().maximum_attempts(1).build())
            .build();
        let mut results = Vec::new();
        for key in keys {
            results.push(
                match ctx.execute_activity(Acts::step, key, opts.clone()).await {
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
    let ex = Example::start("hook_rabbitmq", RULES).await?;
    // Two queues the example reads back with a plain channel (consuming is not governed).
    let conn = Connection::connect(AMQP_URL, ConnectionProperties::default()).await?;
    let reader = conn.create_channel().await?;
    let queues = ["orders.created", "payments.refund"];
    for queue in queues {
        reader
            .queue_declare(
                queue.into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await?;
        reader.queue_purge(queue.into(), Default::default()).await?;
    }
    let options = WorkerOptions::new(&ex.task_queue)
        .worker_plugin(ex.plugin().await?)
        .register_activities(Acts)
        .register_workflow::<RabbitMqExample>()?
        .build();
    let keys = queues.iter().map(|q| q.to_string()).collect();
    let results = ex.run_workflow(options, RabbitMqExample::run, keys).await?;
    println!("results: {results:?}");
    let mut held = Vec::new();
    for queue in queues {
        let get = BasicGetOptions { no_ack: true };
        while reader.basic_get(queue.into(), get).await?.is_some() {
            held.push(queue);
        }
    }
    println!("the queues hold: {held:?}");
    let hooks = ex.print_hooks().await?;
    anyhow::ensure!(results[0] == "confirmed: true", "the order was confirmed");
    anyhow::ensure!(results[1].starts_with("stopped"), "the refund was blocked");
    anyhow::ensure!(
        held == ["orders.created"],
        "the broker never saw the refund"
    );
    anyhow::ensure!(
        hooks.len() == 3,
        "the order at both stages, the refund at started"
    );
    anyhow::ensure!(
        !hooks.iter().any(|e| e.body.to_string().contains(API_KEY)),
        "a credential reached Core"
    );
    Ok(())
}
