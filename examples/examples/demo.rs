//! The governed demo: a support-case workflow on a real Temporal dev server, governed by an
//! embedded dev Core, printing what Core decides as it happens.
//!
//! `cargo xtask demo` runs it (and the Temporal dev server it needs). Run alone,
//! `cargo run -p openbox-examples --example demo` uses `TEMPORAL_ADDRESS` or starts its own
//! dev server.
//!
//! The workflow waits for a priority signal, looks the customer up (allowed), summarizes the
//! ticket (guardrails redact the SSN before the activity sees it), and refunds (a human must
//! approve — the demo approves through the dev Core's HTTP API, as a reviewer would).

use std::str::FromStr;
use std::time::Duration;

use openbox::{OpenBoxConfig, OpenBoxPlugin};
use openbox_dev::{ApprovalState, DevCore, LoggedRequest, RuleSet};
use serde::{Deserialize, Serialize};
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowGetResultOptions,
    WorkflowSignalOptions, WorkflowStartOptions,
};
use temporalio_common::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{
    ActivityOptions, Runtime, SyncWorkflowContext, Worker, WorkerOptions, WorkflowContext,
    WorkflowResult,
};

/// A support ticket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ticket {
    pub subject: String,
    pub body: String,
}

/// The case the workflow handles.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Case {
    pub customer: String,
    pub ticket: Ticket,
    pub refund_eur: u64,
}

pub struct SupportActivities;

#[openbox::governed_activities]
#[activities]
impl SupportActivities {
    /// Allowed by Core.
    #[activity(name = "lookup_customer")]
    pub async fn lookup_customer(
        _ctx: ActivityContext,
        customer: String,
    ) -> Result<String, ActivityError> {
        Ok(format!("{customer} (gold tier, since 2019)"))
    }

    /// Typed input (the impl's `#[openbox::governed_activities]` reports every argument), so
    /// guardrails can redact it field by field.
    #[activity(name = "summarize_ticket")]
    pub async fn summarize_ticket(
        _ctx: ActivityContext,
        ticket: Ticket,
    ) -> Result<String, ActivityError> {
        Ok(format!(
            "{} — the activity saw: {:?}",
            ticket.subject, ticket.body
        ))
    }

    /// Needs a human's approval.
    #[activity(name = "refund")]
    pub async fn refund(
        ctx: ActivityContext,
        customer: String,
        amount_eur: u64,
    ) -> Result<String, ActivityError> {
        Ok(format!(
            "refunded {amount_eur} EUR to {customer} (attempt {})",
            ctx.info().attempt
        ))
    }
}

#[workflow]
#[derive(Default)]
pub struct SupportCase {
    priority: Option<u8>,
}

#[openbox::governed_workflow]
#[workflow_methods]
impl SupportCase {
    #[run(name = "SupportCase")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, case: Case) -> WorkflowResult<Vec<String>> {
        let _ = ctx.wait_condition(|s| s.priority.is_some()).await;
        let options = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
            .retry_policy(RetryPolicy::builder().maximum_attempts(100).build())
            .build();
        let who = ctx
            .execute_activity(
                SupportActivities::lookup_customer,
                case.customer.clone(),
                options.clone(),
            )
            .await?;
        let summary = ctx
            .execute_activity(
                SupportActivities::summarize_ticket,
                case.ticket,
                options.clone(),
            )
            .await?;
        let refund = ctx
            .execute_activity(
                SupportActivities::refund,
                (case.customer, case.refund_eur),
                options,
            )
            .await?;
        let priority = ctx.state(|s| s.priority.unwrap_or_default());
        Ok(vec![format!("priority {priority}"), who, summary, refund])
    }

    #[signal(name = "set_priority")]
    pub fn set_priority(&mut self, _ctx: &mut SyncWorkflowContext<Self>, priority: u8) {
        self.priority = Some(priority);
    }
}

fn describe(e: &LoggedRequest) -> Option<String> {
    let body = &e.body;
    let what = match (e.path.as_str(), e.event_type()) {
        ("/api/v1/auth/validate", _) => "key check".to_owned(),
        ("/api/v1/governance/approval", _) => format!(
            "approval poll for activity {}",
            body["activity_id"].as_str()?
        ),
        (_, Some(t)) => {
            let subject = body
                .get("activity_type")
                .or_else(|| body.get("signal_name"))
                .or_else(|| body.get("workflow_type"))
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let detail = match t {
                "ActivityStarted" => format!(" input={}", body["activity_input"]),
                "ActivityCompleted" => format!(" output={}", body["activity_output"]),
                "SignalReceived" => format!(" args={}", body["signal_args"]),
                _ => String::new(),
            };
            format!("{t:<18} {subject}{detail}")
        }
        _ => return None,
    };
    let decision = match (e.status, e.verdict()) {
        (200, Some(v)) => v.to_owned(),
        (200, None) => "ok".to_owned(),
        (status, _) => format!("HTTP {status}"),
    };
    let reason = e
        .response
        .get("reason")
        .and_then(|r| r.as_str())
        .map(|r| format!("  ({r})"))
        .unwrap_or_default();
    Some(format!("  Core ← {what}\n       → {decision}{reason}"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .init();

    // 1. The dev Core, with the demo's rules and a JSONL event log.
    let rules = RuleSet::from_toml_str(include_str!("demo-rules.toml"), "demo-rules.toml")?;
    let log_path = std::env::temp_dir().join(format!("openbox-demo-{}.jsonl", std::process::id()));
    let core = DevCore::builder()
        .rules(rules)
        .event_log(&log_path)
        .start()
        .await?;
    println!(
        "OpenBox dev Core at {} (event log: {})",
        core.url(),
        log_path.display()
    );
    let mut decisions = core.subscribe();
    tokio::spawn(async move {
        while let Ok(event) = decisions.recv().await {
            if let Some(line) = describe(&event) {
                println!("{line}");
            }
        }
    });

    // 2. A reviewer: approves each approval request a moment after it appears, over HTTP.
    let mut approvals = core.subscribe_approvals();
    let admin = core.url();
    tokio::spawn(async move {
        while let Ok(approval) = approvals.recv().await {
            if approval.state != ApprovalState::Pending {
                continue;
            }
            // Let Core's answer to the activity be printed first.
            tokio::time::sleep(Duration::from_millis(200)).await;
            println!(
                "  reviewer: approval {} is pending for {} — approving via POST {admin}/api/dev/approvals/{}/approve",
                approval.id,
                approval.activity_type.as_deref().unwrap_or("?"),
                approval.id
            );
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let url = format!("{admin}/api/dev/approvals/{}/approve", approval.id);
            let body = serde_json::json!({"by": "demo reviewer", "reason": "looks fine"});
            if let Err(e) = reqwest::Client::new().post(url).json(&body).send().await {
                eprintln!("  reviewer: cannot approve: {e}");
            }
        }
    });

    // 3. Temporal and a governed worker.
    let (address, _own_server) = openbox_examples::temporal_address().await?;
    println!("Temporal dev server at {address}");
    let connection = Connection::connect(
        ConnectionOptions::new(Url::from_str(&format!("http://{address}"))?).build(),
    )
    .await?;
    let client = Client::new(connection, ClientOptions::new("default").build())?;
    let plugin = OpenBoxPlugin::builder()
        .config(
            OpenBoxConfig::builder()
                .ignore_env()
                .url(core.url())
                .api_key("obx_test_demo_key")
                .build()?,
        )
        .options(|o| o.approval_poll_interval(Duration::from_secs(1)))
        .build()
        .await?;
    let task_queue = format!("openbox-demo-{}", std::process::id());
    let options = WorkerOptions::new(&task_queue)
        .worker_plugin(plugin)
        .register_activities(SupportActivities)
        .register_workflow::<SupportCase>()?
        .build();
    let runtime = Runtime::from_current_tokio(Default::default())?;
    let mut worker = Worker::new(&runtime, client.clone(), options)?;
    let shutdown = worker.shutdown_handle();

    // 4. The case.
    let scenario = async {
        let case = Case {
            customer: "ada".into(),
            ticket: Ticket {
                subject: "double charge".into(),
                body: "my SSN is 078-05-1120, please refund".into(),
            },
            refund_eur: 1500,
        };
        let workflow_id = format!("support-case-{}", std::process::id());
        println!("\nStarting workflow {workflow_id} and signalling priority 2…");
        let handle = client
            .start_workflow(
                SupportCase::run,
                case,
                WorkflowStartOptions::new(&task_queue, &workflow_id).build(),
            )
            .await?;
        handle
            .signal(
                SupportCase::set_priority,
                2u8,
                WorkflowSignalOptions::default(),
            )
            .await?;
        let result = tokio::time::timeout(
            Duration::from_secs(120),
            handle.get_result(WorkflowGetResultOptions::default()),
        )
        .await
        .map_err(|_| anyhow::anyhow!("the workflow did not finish in time"))??;
        anyhow::Ok(result)
    };
    let (run, result) = tokio::join!(worker.run(), async {
        let r = scenario.await;
        shutdown();
        r
    });
    run?;
    let result = result?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!("\nWorkflow completed:");
    for line in &result {
        println!("  {line}");
    }
    let logged = core.read_event_log().await?;
    println!(
        "\n{} requests reached Core; the API key never left the worker (the log shows it masked: {}).",
        logged.len(),
        logged
            .first()
            .map(|e| e.headers["authorization"].clone())
            .unwrap_or_default()
    );
    Ok(())
}
