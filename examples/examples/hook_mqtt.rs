//! MQTT through rumqttc: `GovernedMqttClient` and `GovernedEventLoop` replace `AsyncClient` and
//! `EventLoop`; a publish is evaluated before the event loop gets it and when the broker's
//! PUBACK arrives. Here a rule blocks the valve topic: a subscriber sees only the reading.
//!
//! `cargo run -p openbox-examples --example hook_mqtt` (starts a Temporal dev server unless
//! `TEMPORAL_ADDRESS` is set, and an MQTT broker at 127.0.0.1:1883).

use std::time::Duration;

use openbox::hooks::messaging::mqtt::GovernedMqttClient;
use openbox_examples::Example;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use temporalio_common::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult};

const RULES: &str = r#"
[[rules]]
name = "no valve commands"
verdict = "block"
reason = "valves are operated by people"
match = { "spans.0.stage" = "started", "spans.0.attributes.messaging.destination.name" = "openbox-example/valve/3" }
"#;

pub struct Acts;

#[openbox::governed_activities]
#[activities]
impl Acts {
    /// Publishes `text` to `topic` at QoS 1 and waits for the broker's PUBACK.
    #[activity(name = "publish_mqtt")]
    pub async fn step(
        _ctx: ActivityContext,
        (topic, text): (String, String),
    ) -> Result<String, ActivityError> {
        let id = format!("openbox-example-{}", std::process::id());
        let (client, mut events) =
            GovernedMqttClient::new(MqttOptions::new(id, "127.0.0.1", 1883), 16);
        let driver = tokio::spawn(async move { while events.poll().await.is_ok() {} });
        let acked = client
            .publish(topic, QoS::AtLeastOnce, false, text)
            .await
            .map_err(anyhow::Error::from)?
            .await;
        let _ = client.disconnect().await;
        driver.abort();
        Ok(format!("{:?}", acked.map_err(anyhow::Error::from)?))
    }
}

#[workflow]
#[derive(Default)]
pub struct MqttExample;

#[workflow_methods]
impl MqttExample {
    #[run(name = "MqttExample")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        messages: Vec<(String, String)>,
    ) -> WorkflowResult<Vec<String>> {
        let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
            .retry_policy(RetryPolicy::builder().maximum_attempts(1).build())
            .build();
        let mut results = Vec::new();
        for message in messages {
            results.push(
                match ctx
                    .execute_activity(Acts::step, message, opts.clone())
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
    let ex = Example::start("hook_mqtt", RULES).await?;
    // A plain subscriber (consuming is not governed) that collects what the broker delivers.
    let id = format!("openbox-example-sub-{}", std::process::id());
    let (subscriber, mut events) = AsyncClient::new(MqttOptions::new(id, "127.0.0.1", 1883), 16);
    subscriber
        .subscribe("openbox-example/#", QoS::AtLeastOnce)
        .await?;
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut ready_tx = Some(ready_tx);
        while let Ok(event) = events.poll().await {
            match event {
                Event::Incoming(Packet::SubAck(_)) => {
                    ready_tx.take().map(|r| r.send(()));
                }
                Event::Incoming(Packet::Publish(p)) => {
                    let _ = seen_tx.send(p.topic);
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), ready).await??;
    let options = WorkerOptions::new(&ex.task_queue)
        .worker_plugin(ex.plugin().await?)
        .register_activities(Acts)
        .register_workflow::<MqttExample>()?
        .build();
    let messages = vec![
        ("openbox-example/temperature".to_owned(), "21.5".to_owned()),
        ("openbox-example/valve/3".to_owned(), "close".to_owned()),
    ];
    let results = ex.run_workflow(options, MqttExample::run, messages).await?;
    println!("results: {results:?}");
    // A marker published last: everything before it has been delivered when it arrives.
    subscriber
        .publish("openbox-example/end", QoS::AtLeastOnce, false, "end")
        .await?;
    let mut delivered = Vec::new();
    while let Some(topic) = tokio::time::timeout(Duration::from_secs(30), seen.recv()).await? {
        if topic == "openbox-example/end" {
            break;
        }
        delivered.push(topic);
    }
    println!("the subscriber received: {delivered:?}");
    let hooks = ex.print_hooks().await?;
    anyhow::ensure!(results[0] == "PubAck(1)", "the reading was acknowledged");
    anyhow::ensure!(
        results[1].starts_with("stopped"),
        "the valve command was blocked"
    );
    anyhow::ensure!(
        delivered == ["openbox-example/temperature"],
        "the broker never saw the valve command"
    );
    anyhow::ensure!(
        hooks.len() == 3,
        "the reading at both stages, the command at started"
    );
    Ok(())
}
