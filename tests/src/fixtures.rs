//! Workflows and activities the Temporal tests run: a workflow that executes a plan of steps,
//! each step one activity, optionally waiting for a signal first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_common::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, SyncWorkflowContext, WorkflowContext, WorkflowResult};

/// How many times an activity body ran, by activity, process-wide.
pub static BODY_RUNS: AtomicUsize = AtomicUsize::new(0);

/// A payment request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargeReq {
    /// Customer.
    pub customer: String,
    /// Amount in cents.
    pub amount: u64,
    /// Card number (redacted by guardrails in tests).
    pub card: String,
}

/// A prompt for the summarizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    /// The text.
    pub prompt: String,
    /// Who asks.
    pub user: String,
}

/// One step of a [`Plan`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Step {
    /// `Shop::echo`
    Echo(String),
    /// `Shop::charge`
    Charge(ChargeReq),
    /// `Shop::summarize`
    Summarize(Prompt),
    /// `Shop::transfer`
    Transfer(u64),
    /// `Shop::fail`: always fails (retryable, one attempt).
    Fail,
    /// `Shop::add`: two arguments.
    Add(i64, i64),
}

/// What the workflow runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Activities to run in order.
    pub steps: Vec<Step>,
    /// Wait for one `note` signal before the first step.
    pub wait_for_signal: bool,
    /// Record activity errors as results instead of failing the workflow.
    pub catch_errors: bool,
}

/// What the workflow returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// One entry per step: the activity's result, or `ERR:<type>:<message>`.
    pub results: Vec<String>,
    /// The signals received.
    pub notes: Vec<String>,
}

/// The activities.
pub struct Shop;

#[activities]
impl Shop {
    /// Returns its input.
    #[activity(name = "echo")]
    pub async fn echo(_ctx: ActivityContext, text: String) -> Result<String, ActivityError> {
        BODY_RUNS.fetch_add(1, Ordering::SeqCst);
        Ok(text)
    }

    /// "Charges" and returns a receipt that shows what the body saw.
    #[activity(name = "charge")]
    pub async fn charge(_ctx: ActivityContext, req: ChargeReq) -> Result<String, ActivityError> {
        BODY_RUNS.fetch_add(1, Ordering::SeqCst);
        Ok(format!(
            "charged {} {} card {}",
            req.customer, req.amount, req.card
        ))
    }

    /// Returns what it saw: input redaction must be visible here.
    #[activity(name = "summarize")]
    pub async fn summarize(_ctx: ActivityContext, req: Prompt) -> Result<String, ActivityError> {
        BODY_RUNS.fetch_add(1, Ordering::SeqCst);
        Ok(format!("saw:{}", req.prompt))
    }

    /// Needs approval in tests.
    #[activity(name = "transfer")]
    pub async fn transfer(ctx: ActivityContext, amount: u64) -> Result<String, ActivityError> {
        BODY_RUNS.fetch_add(1, Ordering::SeqCst);
        Ok(format!(
            "transferred {amount} on attempt {}",
            ctx.info().attempt
        ))
    }

    /// Always fails.
    #[activity(name = "fail")]
    pub async fn fail(_ctx: ActivityContext) -> Result<String, ActivityError> {
        BODY_RUNS.fetch_add(1, Ordering::SeqCst);
        Err(anyhow::anyhow!("the body failed").into())
    }

    /// Two arguments.
    #[activity(name = "add")]
    pub fn add(_ctx: ActivityContext, a: i64, b: i64) -> Result<i64, ActivityError> {
        BODY_RUNS.fetch_add(1, Ordering::SeqCst);
        Ok(a + b)
    }
}

/// Runs a [`Plan`].
#[workflow]
#[derive(Default)]
pub struct PlanWorkflow {
    notes: Vec<String>,
}

fn activity_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_millis(200))
                .backoff_coefficient(1.0)
                .maximum_attempts(20)
                .build(),
        )
        .build()
}

fn describe(e: &temporalio_sdk::ActivityExecutionError) -> String {
    use temporalio_common::error::IncomingError;
    match e.cause() {
        Some(IncomingError::Application(af)) => {
            format!(
                "ERR:{}:{}",
                af.type_name().unwrap_or("?"),
                e.cause()
                    .map(|c| c.failure().message.clone())
                    .unwrap_or_default()
            )
        }
        Some(other) => format!("ERR:{}", other.failure().message),
        None => format!("ERR:{e}"),
    }
}

#[workflow_methods]
impl PlanWorkflow {
    /// Runs the steps.
    #[run(name = "PlanWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, plan: Plan) -> WorkflowResult<Outcome> {
        if plan.wait_for_signal {
            let _ = ctx.wait_condition(|s| !s.notes.is_empty()).await;
        }
        let mut results = Vec::new();
        for step in plan.steps {
            let opts = activity_options();
            let result = match step {
                Step::Echo(t) => ctx.execute_activity(Shop::echo, t, opts).await,
                Step::Charge(r) => ctx.execute_activity(Shop::charge, r, opts).await,
                Step::Summarize(p) => ctx.execute_activity(Shop::summarize, p, opts).await,
                Step::Transfer(a) => ctx.execute_activity(Shop::transfer, a, opts).await,
                Step::Fail => {
                    let once =
                        ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
                            .retry_policy(RetryPolicy::builder().maximum_attempts(1).build())
                            .build();
                    ctx.execute_activity(Shop::fail, (), once).await
                }
                Step::Add(a, b) => ctx
                    .execute_activity(Shop::add, (a, b), opts)
                    .await
                    .map(|n| n.to_string()),
            };
            match result {
                Ok(v) => results.push(v),
                Err(e) if plan.catch_errors => results.push(describe(&e)),
                Err(e) => return Err(e.into()),
            }
        }
        let notes = ctx.state(|s| s.notes.clone());
        Ok(Outcome { results, notes })
    }

    /// Records a note.
    #[signal(name = "note")]
    pub fn note(&mut self, _ctx: &mut SyncWorkflowContext<Self>, text: String) {
        self.notes.push(text);
    }
}
