//! Workflows and activities the Temporal tests run: a workflow that executes a plan of steps,
//! each step one activity, optionally waiting for a signal first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_common::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, SyncWorkflowContext, WorkflowContext, WorkflowResult};

/// How many times an activity body ran, by (workflow id, activity type).
static BODY_RUNS: Mutex<Option<HashMap<(String, String), usize>>> = Mutex::new(None);

fn record_run(ctx: &ActivityContext) {
    let info = ctx.info();
    let key = (
        info.workflow_id.clone().unwrap_or_default(),
        info.activity_type.clone(),
    );
    let mut runs = BODY_RUNS.lock().unwrap();
    *runs
        .get_or_insert_with(HashMap::new)
        .entry(key)
        .or_default() += 1;
}

/// How many times the body of `activity_type` ran for `workflow_id` in this process.
pub fn runs_of(workflow_id: &str, activity_type: &str) -> usize {
    let runs = BODY_RUNS.lock().unwrap();
    runs.as_ref()
        .and_then(|r| {
            r.get(&(workflow_id.to_owned(), activity_type.to_owned()))
                .copied()
        })
        .unwrap_or(0)
}

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
    /// `Shop::fetch`: a GET through the OpenBox middleware.
    Fetch(String),
    /// `Ledger::post`: three arguments, declared with `#[openbox::governed_activities]`.
    Post(String, i64, ChargeReq),
    /// Waits for one more `note` signal (no activity, no result).
    AwaitNote,
    /// `openbox::handoff(session, from)` from the workflow itself; its result is the verdict.
    Handoff {
        /// The multi-agent session.
        session: String,
        /// The agent handing off.
        from: String,
    },
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
    pub async fn echo(ctx: ActivityContext, text: String) -> Result<String, ActivityError> {
        record_run(&ctx);
        Ok(text)
    }

    /// "Charges" and returns a receipt that shows what the body saw.
    #[activity(name = "charge")]
    pub async fn charge(ctx: ActivityContext, req: ChargeReq) -> Result<String, ActivityError> {
        record_run(&ctx);
        Ok(format!(
            "charged {} {} card {}",
            req.customer, req.amount, req.card
        ))
    }

    /// Returns what it saw: input redaction must be visible here.
    #[activity(name = "summarize")]
    pub async fn summarize(ctx: ActivityContext, req: Prompt) -> Result<String, ActivityError> {
        record_run(&ctx);
        Ok(format!("saw:{}", req.prompt))
    }

    /// Needs approval in tests.
    #[activity(name = "transfer")]
    pub async fn transfer(ctx: ActivityContext, amount: u64) -> Result<String, ActivityError> {
        record_run(&ctx);
        Ok(format!(
            "transferred {amount} on attempt {}",
            ctx.info().attempt
        ))
    }

    /// Always fails.
    #[activity(name = "fail")]
    pub async fn fail(ctx: ActivityContext) -> Result<String, ActivityError> {
        record_run(&ctx);
        Err(anyhow::anyhow!("the body failed").into())
    }

    /// GETs `url` through the OpenBox middleware (redirects left to it) and returns the status.
    #[activity(name = "fetch")]
    pub async fn fetch(ctx: ActivityContext, url: String) -> Result<String, ActivityError> {
        record_run(&ctx);
        let inner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(anyhow::Error::from)?;
        let client = reqwest_middleware::ClientBuilder::new(inner)
            .with(openbox::hooks::http::OpenBoxMiddleware::default())
            .build();
        let response = client.get(&url).send().await.map_err(anyhow::Error::from)?;
        Ok(format!("fetched {}", response.status().as_u16()))
    }

    /// Two arguments.
    #[activity(name = "add")]
    pub fn add(ctx: ActivityContext, a: i64, b: i64) -> Result<i64, ActivityError> {
        record_run(&ctx);
        Ok(a + b)
    }
}

/// Activities declared with `#[openbox::governed_activities]`: every argument is reported.
pub struct Ledger;

#[openbox::governed_activities]
#[activities]
impl Ledger {
    /// Three arguments, one of them a struct; returns what the body saw.
    #[activity(name = "ledger_post")]
    pub async fn post(
        ctx: ActivityContext,
        account: String,
        amount: i64,
        req: ChargeReq,
    ) -> Result<String, ActivityError> {
        record_run(&ctx);
        Ok(format!(
            "posted {amount} to {account} for {} card {}",
            req.customer, req.card
        ))
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
        let mut awaited = usize::from(plan.wait_for_signal);
        if plan.wait_for_signal {
            let _ = ctx.wait_condition(|s| !s.notes.is_empty()).await;
        }
        let mut results = Vec::new();
        for step in plan.steps {
            let opts = activity_options();
            let result = match step {
                Step::AwaitNote => {
                    awaited += 1;
                    let _ = ctx.wait_condition(move |s| s.notes.len() >= awaited).await;
                    continue;
                }
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
                Step::Fetch(url) => ctx.execute_activity(Shop::fetch, url, opts).await,
                Step::Post(account, amount, req) => {
                    ctx.execute_activity(Ledger::post, (account, amount, req), opts)
                        .await
                }
                Step::Add(a, b) => ctx
                    .execute_activity(Shop::add, (a, b), opts)
                    .await
                    .map(|n| n.to_string()),
                Step::Handoff { session, from } => {
                    match openbox::handoff(ctx, &session, &from).await {
                        Ok(v) => results.push(format!("handoff:{:?}", v.verdict)),
                        Err(e @ openbox::HandoffError::Refused(_)) if plan.catch_errors => {
                            results.push(format!("ERR:handoff:{e}"))
                        }
                        Err(e) => return Err(e.into()),
                    }
                    continue;
                }
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

    /// Runs `Shop::echo` on `text` and records its result (or error) as a note: an async
    /// handler, still running while the workflow goes on.
    #[signal(name = "work")]
    pub async fn work(ctx: &mut WorkflowContext<Self>, text: String) {
        let note = match ctx
            .execute_activity(Shop::echo, text, activity_options())
            .await
        {
            Ok(v) => v,
            Err(e) => describe(&e),
        };
        ctx.state_mut(|s| s.notes.push(note));
    }
}

/// A struct-typed signal argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// The text.
    pub text: String,
    /// Its priority.
    pub priority: u8,
}

/// Activities governed through `#[governed_activity]`.
pub struct Bank;

#[openbox::governed_activities]
#[activities]
impl Bank {
    /// Two typed arguments, custom activity name.
    #[activity(name = "bank_pay")]
    #[openbox::governed_activity]
    pub async fn pay(
        ctx: ActivityContext,
        req: ChargeReq,
        memo: String,
    ) -> Result<String, ActivityError> {
        record_run(&ctx);
        Ok(format!(
            "paid {} {} card {} ({memo})",
            req.customer, req.amount, req.card
        ))
    }

    /// A sync body, the default activity name (`Bank::audit`), output not captured.
    #[activity]
    #[openbox::governed_activity(capture_output = false)]
    pub fn audit(ctx: ActivityContext, entry: Prompt) -> Result<Prompt, ActivityError> {
        record_run(&ctx);
        Ok(entry)
    }
}

/// A workflow declared with `#[governed_workflow]`: waits for a [`Note`], then pays and audits.
#[workflow]
#[derive(Default)]
pub struct BankWorkflow {
    notes: Vec<Note>,
}

#[openbox::governed_workflow]
#[workflow_methods]
impl BankWorkflow {
    /// Runs the two activities after the first note.
    #[run(name = "BankWorkflow")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        req: ChargeReq,
    ) -> WorkflowResult<Vec<String>> {
        let _ = ctx.wait_condition(|s| !s.notes.is_empty()).await;
        let memo = ctx.state(|s| s.notes[0].text.clone());
        let paid = ctx
            .execute_activity(Bank::pay, (req.clone(), memo.clone()), activity_options())
            .await?;
        let prompt = Prompt {
            prompt: format!("audit {}", req.customer),
            user: memo,
        };
        let audited = ctx
            .execute_activity(Bank::audit, prompt, activity_options())
            .await?;
        Ok(vec![paid, audited.prompt])
    }

    /// A struct-typed signal.
    #[signal]
    pub fn memo(&mut self, _ctx: &mut SyncWorkflowContext<Self>, note: Note) {
        self.notes.push(note);
    }
}
