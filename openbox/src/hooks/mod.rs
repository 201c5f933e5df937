//! Hook-level governance: operations an activity makes — HTTP requests, database statements,
//! file operations, `#[traced]` functions — are evaluated by Core at two stages.
//!
//! * `started`, before the operation: a BLOCK or HALT stops it from happening (the request is
//!   not sent, the statement does not run, the file is not opened, the function body does not
//!   run) and the caller gets a [`HookError`];
//! * `completed`, after it: a BLOCK or HALT makes the caller get a [`HookError`] and fails the
//!   activity even if the caller swallows the error.
//!
//! Each hook finds its activity through the task-local [`ActivityScope`]; outside a governed
//! activity there is no scope and no Core call. Every operation is also reported once in the
//! activity's ActivityCompleted `spans`.
//!
//! Rust has no monkey-patching, so hooks are explicit wrappers of the libraries users already
//! use: see [`http`], [`db`], [`fs`], `process`, `messaging` and [`crate::traced`].
//!
//! | Wrapper | Call form | BLOCK at `started` stops it before it happens |
//! |---|---|---|
//! | [`http::OpenBoxMiddleware`] | every request of a `reqwest_middleware::ClientWithMiddleware` | yes: the server never sees the request |
//! | `http::tower::OpenBoxLayer` (feature `tower`) | every request through the wrapped `tower::Service` (hyper-util, tonic) | yes: the inner service is never called |
//! | `http::openai::GovernedOpenAiService` (feature `async-openai`) | every request of an async-openai client built with `with_http_service` | yes: the server never sees the request |
//! | `mcp::GovernedMcpClient` (feature `mcp`) | every message rmcp's streamable-HTTP client sends; each request's answer | yes: the server never receives the message |
//! | `db::sqlx::GovernedPool` / `Governed` | `execute`, `fetch*`, `fetch_one/optional/all` | yes: the statement is not sent |
//! | `db::sqlx` | `prepare` | not governed (nothing runs) |
//! | `db::postgres::GovernedClient` | `execute`, `query*`, `batch_execute` | yes |
//! | `db::sqlite::GovernedConnection` | `execute`, `execute_batch`, `query_row`, `query_map` | yes |
//! | `db::diesel::GovernedConnection` (features `diesel-*`) | every statement diesel sends (`load`, `execute`, `batch_execute`) | yes: the statement is not sent |
//! | `db::sea_orm::GovernedConnection` (feature `sea-orm`) | every statement SeaORM sends through it (entity operations, raw statements, transactions begun through it) | yes: the statement is not sent |
//! | `db::redis::GovernedRedis` | every command and pipeline | yes: the command is not sent |
//! | [`crate::fs::File`] (async) and [`crate::fs::sync::File`] | `open`/`create`/`options` | yes: the file is not created or opened |
//! | `crate::fs` files | `read*`, `write*` | yes: nothing is read or written |
//! | `crate::fs` files | `close`, drop | `completed` only (the file is closed either way) |
//! | `process::Command` and `process::sync::Command` (feature `process`) | `spawn`, `output`, `status` | yes: the process never starts |
//! | `process` children | `wait`, `wait_with_output`, drop | `completed` only (the process ran) |
//! | `messaging::amqp::GovernedChannel` (feature `lapin`) | `basic_publish`; its confirm | yes: the broker never receives the message |
//! | `messaging::nats::GovernedNats` / `GovernedJetStream` (feature `async-nats`) | `publish*`, `request*`; JetStream `publish*` and its ack | yes: the message is never sent |
//! | `messaging::mqtt::GovernedMqttClient` (feature `rumqttc`) | `publish`, `publish_bytes`; PUBACK / PUBCOMP | yes: the event loop never gets the message |
//! | [`crate::traced`] | a function returning `Result<_, E>` | yes: the body does not run, the call returns `Err` |
//! | [`crate::traced`] | a function not returning `Result` | yes: the body does not run, the call panics (the activity fails with the verdict) |
//! | sync wrappers in a sync activity body | — | governed when the activity is `#[governed_activity]` (Temporal runs sync bodies on a blocking thread the plugin cannot reach) |

pub mod db;
pub mod fs;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
pub(crate) mod ids;
#[cfg(feature = "mcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "mcp")))]
pub mod mcp;
#[cfg(any(feature = "lapin", feature = "async-nats", feature = "rumqttc"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "lapin", feature = "async-nats", feature = "rumqttc")))
)]
pub mod messaging;
#[cfg(feature = "process")]
#[cfg_attr(docsrs, doc(cfg(feature = "process")))]
pub mod process;
pub(crate) mod traced;
#[cfg(any(
    feature = "process",
    feature = "lapin",
    feature = "async-nats",
    feature = "rumqttc"
))]
pub(crate) mod words;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde_json::{Map, Value};

use crate::client::Decision;
use crate::governance::failure::GovernanceFailure;
use crate::governance::scope::ActivityScope;
use crate::wire::time::{now_timestamp, unix_nanos};
use crate::wire::{HookEvaluation, HookSpan, HookStage, Span, SpanKind, SpanStatus, Verdict};

use ids::{SpanIds, operation_ids};

/// Why governance stopped an operation (or refused its result). The activity it belongs to fails
/// with the same verdict even if this error is swallowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{failure}")]
pub struct HookError {
    failure: GovernanceFailure,
}

impl HookError {
    pub(crate) fn new(failure: GovernanceFailure) -> Self {
        HookError { failure }
    }

    /// The verdict as a governance failure (type `GovernanceBlock`, `GovernanceHalt`, …).
    pub fn failure(&self) -> &GovernanceFailure {
        &self.failure
    }
}

impl From<HookError> for std::io::Error {
    /// `PermissionDenied`, with the [`HookError`] inside (`err.get_ref()` to downcast).
    fn from(e: HookError) -> Self {
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, e)
    }
}

/// One governed operation: its ids, its start, and the activity it belongs to.
#[derive(Clone)]
pub(crate) struct HookCall {
    scope: Arc<ActivityScope>,
    ids: SpanIds,
    name: String,
    kind: SpanKind,
    attributes: Map<String, Value>,
    started_wall: SystemTime,
    started: Instant,
}

impl std::fmt::Debug for HookCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookCall")
            .field("name", &self.name)
            .field("span_id", &self.ids.span_id)
            .finish()
    }
}

impl HookCall {
    /// The call for an operation named `name` in the current activity, or `None` outside a
    /// governed activity (then nothing is evaluated). `span` is the tracing span the operation
    /// runs in, whose OpenTelemetry ids are used when there are any.
    pub(crate) fn begin(
        name: impl Into<String>,
        kind: SpanKind,
        span: Option<&tracing::Span>,
    ) -> Option<HookCall> {
        let scope = ActivityScope::current()?;
        let ids = operation_ids(span, scope.trace_id(), scope.span_id());
        Some(HookCall {
            scope,
            ids,
            name: name.into(),
            kind,
            attributes: Map::new(),
            started_wall: SystemTime::now(),
            started: Instant::now(),
        })
    }

    /// The attributes set so far.
    #[cfg(feature = "mcp")]
    pub(crate) fn attributes(&self) -> &Map<String, Value> {
        &self.attributes
    }

    /// Attributes reported on the span.
    pub(crate) fn with_attributes(mut self, attributes: Map<String, Value>) -> Self {
        self.attributes = attributes;
        self
    }

    fn span(&self, stage: HookStage, hook: HookSpan) -> Span {
        self.span_ended(stage, hook, self.started.elapsed())
    }

    /// The span at `stage` of an operation that took `took` (for `completed`).
    fn span_ended(&self, stage: HookStage, hook: HookSpan, took: std::time::Duration) -> Span {
        let (start, end, duration) = match stage {
            HookStage::Started => (unix_nanos(self.started_wall), None, None),
            HookStage::Completed => {
                let duration = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
                let start = unix_nanos(self.started_wall);
                (start, Some(start.saturating_add(duration)), Some(duration))
            }
        };
        let mut attributes = self.attributes.clone();
        if stage == HookStage::Completed {
            hook.add_completed_attributes(&mut attributes);
        }
        Span {
            span_id: self.ids.span_id.clone(),
            trace_id: self.ids.trace_id.clone(),
            parent_span_id: self.ids.parent_span_id.clone(),
            name: self.name.clone(),
            kind: self.kind,
            stage,
            start_time: start,
            end_time: end,
            duration_ns: duration,
            attributes,
            status: SpanStatus::from_error(hook.error()),
            events: Vec::new(),
            hook,
            activity_id: self.scope.identity().activity_id.clone(),
        }
    }

    fn body(&self, span: Span) -> HookEvaluation {
        HookEvaluation::new(
            self.scope.identity().clone(),
            self.scope.input(),
            span,
            now_timestamp(),
        )
    }

    /// Whether this operation's verdicts are enforced or observed.
    fn mode(&self, body: &HookEvaluation) -> crate::governance::options::Enforcement {
        self.scope.governor().options().enforcement_for_hook(
            &self.scope.identity().activity_type,
            crate::governance::options::HookKind::of(&body.spans[0].hook),
        )
    }

    /// Judges `decision` and counts the time since `clock` as governance time.
    fn conclude(
        &self,
        decision: Decision,
        stage: HookStage,
        clock: Instant,
    ) -> Result<(), HookError> {
        let result = self.judge(decision, stage);
        self.scope
            .governor()
            .counters()
            .add_governance_time(clock.elapsed());
        result
    }

    /// Evaluates `span`; hands it back (inside the body while in flight) so that recording it
    /// needs no copy.
    async fn evaluate(&self, span: Span) -> (Result<(), HookError>, Span) {
        let clock = Instant::now();
        let body = self.body(span);
        let decision = self.scope.governor().decide(&body, self.mode(&body)).await;
        let [span] = body.spans;
        (self.conclude(decision, span.stage, clock), span)
    }

    fn judge(&self, decision: Decision, stage: HookStage) -> Result<(), HookError> {
        let failure = match decision {
            Decision::Proceed(_) => return Ok(()),
            Decision::Halt(e) => GovernanceFailure::core_unavailable(&e),
            Decision::Verdict(r) => match r.patch_request(crate::wire::ActivityStartedTag::VALUE) {
                // A BLOCK that names an input restarts the workflow with it.
                Some(request) => GovernanceFailure::patch(crate::wire::PatchRequest {
                    hook_trigger: true,
                    hook_stage: Some(stage.as_str().to_owned()),
                    ..request
                }),
                None => match self.verdict_failure(&r) {
                    Some(failure) => failure,
                    None => return Ok(()),
                },
            },
        };
        self.scope.record_hook_stop(failure.clone());
        Err(HookError::new(failure))
    }

    /// The stop a verdict without a patch means; `None`: proceed.
    fn verdict_failure(&self, r: &crate::wire::EvaluateResponse) -> Option<GovernanceFailure> {
        Some(match r.verdict {
            Verdict::Allow | Verdict::Constrain
                if r.guardrails.as_ref().is_some_and(|g| !g.validation_passed) =>
            {
                let reasons = r
                    .guardrails
                    .as_ref()
                    .map(|g| g.reason_texts())
                    .unwrap_or_default();
                GovernanceFailure::guardrails(&reasons, false)
            }
            Verdict::Allow | Verdict::Constrain => return None,
            Verdict::Block => GovernanceFailure::hook_blocked(r.reason.as_deref()),
            Verdict::Halt => GovernanceFailure::hook_halted(r.reason.as_deref()),
            Verdict::RequireApproval => match self.scope.approval_context() {
                Some(approval) => approval.request(r, &self.name),
                None => GovernanceFailure::hook_approval_unavailable(r.reason.as_deref()),
            },
        })
    }

    /// The `started` evaluation. On `Err`, the operation must not happen; its span is reported.
    pub(crate) async fn started(&self, hook: HookSpan) -> Result<(), HookError> {
        self.started_returning(hook).await.map(drop)
    }

    /// [`HookCall::started`] handing the operation's details back on `Ok`, so that a caller
    /// that goes on filling them in for `completed` needs no copy.
    pub(crate) async fn started_returning(&self, hook: HookSpan) -> Result<HookSpan, HookError> {
        let (result, span) = self.evaluate(self.span(HookStage::Started, hook)).await;
        match result {
            Ok(()) => Ok(span.hook),
            Err(e) => {
                self.scope.record_span(span);
                Err(e)
            }
        }
    }

    /// The `completed` evaluation; the span goes to ActivityCompleted.
    pub(crate) async fn completed(&self, mut hook: HookSpan) -> Result<(), HookError> {
        if self.deferred() {
            match self.complete_later(hook) {
                None => return Ok(()),
                Some(back) => hook = back,
            }
        }
        let span = self.span(HookStage::Completed, hook);
        // Recorded before the call: if the activity is cancelled while Core answers, this
        // future is dropped, and the operation still happened.
        self.scope.record_span(span.clone());
        self.evaluate(span).await.0
    }

    /// Deferred `completed`: everything but noting the operation's duration happens in the
    /// deferred evaluation — building and recording the span, the evaluation — so the caller
    /// pays only for handing it over. The attempt waits for it before ActivityCompleted (its
    /// span is recorded by then). Hands `hook` back when it cannot run (no driver, no runtime).
    fn complete_later(&self, hook: HookSpan) -> Option<HookSpan> {
        if !self.scope.can_defer() {
            return Some(hook);
        }
        let took = self.started.elapsed();
        let call = self.clone();
        self.scope.defer(async move {
            let span = call.span_ended(HookStage::Completed, hook, took);
            call.scope.record_span(span.clone());
            // Boxed: the hand-over stays small, and the evaluation's own state is allocated
            // when it first runs.
            let _ = Box::pin(call.evaluate(span)).await;
        });
        None
    }

    /// Whether `completed` evaluations run in the background ([`HookCompletion::Deferred`]).
    ///
    /// [`HookCompletion::Deferred`]: crate::HookCompletion::Deferred
    fn deferred(&self) -> bool {
        self.scope.governor().options().hook_completion()
            == crate::governance::options::HookCompletion::Deferred
    }

    /// [`HookCall::started`] from sync code.
    pub(crate) fn started_blocking(&self, hook: HookSpan) -> Result<(), HookError> {
        let (result, span) = self.evaluate_blocking(self.span(HookStage::Started, hook));
        if result.is_err() {
            self.scope.record_span(span);
        }
        result
    }

    /// [`HookCall::completed`] from sync code (which cannot be dropped halfway, so the span is
    /// recorded after the call, without a copy).
    pub(crate) fn completed_blocking(&self, mut hook: HookSpan) -> Result<(), HookError> {
        if self.deferred() {
            match self.complete_later(hook) {
                None => return Ok(()),
                Some(back) => hook = back,
            }
        }
        let (result, span) = self.evaluate_blocking(self.span(HookStage::Completed, hook));
        self.scope.record_span(span);
        result
    }

    fn evaluate_blocking(&self, span: Span) -> (Result<(), HookError>, Span) {
        let clock = Instant::now();
        let body = self.body(span);
        let governor = self.scope.governor();
        let mode = self.mode(&body);
        let decision = crate::blocking::wait(governor.decide(&body, mode)).unwrap_or_else(|e| {
            let policy = governor.client().config().error_policy();
            let error = crate::client::GovernanceApiError::Unreachable(e.to_string());
            Decision::from_result(
                Err(error),
                policy,
                "ActivityStarted",
                crate::wire::EvaluateBody::is_destructive(&body),
            )
        });
        let [span] = body.spans;
        (self.conclude(decision, span.stage, clock), span)
    }

    /// Lets a `completed` evaluation its caller stopped waiting for run to its end in the
    /// background; the activity waits for it before it reports its end, as for a deferred one.
    /// (When it cannot run, it is dropped: its span is recorded already, its verdict is lost.)
    #[cfg(feature = "http")]
    pub(crate) fn keep_running(
        &self,
        evaluation: futures::future::BoxFuture<'static, Result<(), HookError>>,
    ) {
        self.scope.defer(async move {
            let _ = evaluation.await;
        });
    }

    /// Reports a `completed` span without waiting for a verdict (a file closed by `Drop`): the
    /// evaluation is deferred when it can run (a driven body or a runtime), and the activity waits
    /// for it before it reports its end, so its verdict still counts.
    pub(crate) fn completed_detached(self, hook: HookSpan) {
        if let Some(hook) = self.complete_later(hook) {
            self.scope
                .record_span(self.span(HookStage::Completed, hook));
        }
    }
}

/// `text` cut to `max` characters with `...[truncated, <N> total chars]`, the reference's marker.
pub(crate) fn truncate_body(text: &str, max: usize) -> String {
    crate::text::truncate(text, max, crate::text::Cut::WithTotal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_error_as_io_error() {
        let e: std::io::Error = HookError::new(GovernanceFailure::hook_blocked(Some("no"))).into();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
        let inner = e.get_ref().unwrap().downcast_ref::<HookError>().unwrap();
        assert_eq!(inner.failure().type_name(), "GovernanceBlock");
    }

    #[test]
    fn outside_an_activity_there_is_no_call() {
        assert!(HookCall::begin("GET", SpanKind::Client, None).is_none());
    }
}
