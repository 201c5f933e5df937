//! The governed activity an operation belongs to.
//!
//! A hook (HTTP, database, file, `#[traced]`) finds its activity through a Tokio task-local set
//! around the activity body — not through a trace-id map, which mis-attributes concurrent
//! activities sharing a trace (a trace id alone would mix them up). Tasks spawned with [`crate::spawn`] inherit it; a sync
//! activity body (run by Temporal on a blocking thread) gets it through a thread-local.
//! Outside a governed activity there is no scope, and hooks make no Core call.

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use serde_json::Value;

use crate::ids::{new_span_id, new_trace_id};
use crate::text::{Cut, truncate};
use crate::wire::{ActivityIdentity, HookSpan, Span};

use super::Governor;
use super::approval::ApprovalContext;
use super::deferred::Deferred;
use super::failure::GovernanceFailure;

/// Most spans kept for one ActivityCompleted; later ones are counted, not kept.
pub const MAX_SPANS_PER_ACTIVITY: usize = 128;
/// HTTP bodies in ActivityCompleted spans are cut to this many characters (hook evaluations
/// themselves carry up to 65 536).
pub const MAX_SPAN_BODY_CHARS: usize = 4096;

tokio::task_local! {
    static CURRENT: Arc<ActivityScope>;
}

thread_local! {
    static CURRENT_SYNC: RefCell<Option<Arc<ActivityScope>>> = const { RefCell::new(None) };
}

/// State of one governed activity attempt that its operations share.
#[derive(Debug)]
pub struct ActivityScope {
    governor: Governor,
    identity: Arc<ActivityIdentity>,
    scheduled_time: Option<SystemTime>,
    approval: bool,
    trace_id: String,
    span_id: String,
    input: RwLock<Arc<Vec<Value>>>,
    spans: Mutex<SpanBuffer>,
    hook_stop: Mutex<Option<GovernanceFailure>>,
    /// `completed` evaluations running while the attempt goes on, which it waits for before
    /// it reports its end.
    deferred: Deferred,
    /// Set when the attempt is over.
    ended: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct SpanBuffer {
    spans: Vec<Span>,
    dropped: usize,
}

impl ActivityScope {
    pub(crate) fn new(
        governor: Governor,
        identity: Arc<ActivityIdentity>,
        input: Arc<Vec<Value>>,
        scheduled_time: Option<SystemTime>,
        approval: bool,
    ) -> Self {
        governor.counters().scope_opened();
        ActivityScope {
            governor,
            identity,
            scheduled_time,
            approval,
            trace_id: new_trace_id(),
            span_id: new_span_id(),
            input: RwLock::new(input),
            spans: Mutex::new(SpanBuffer::default()),
            hook_stop: Mutex::new(None),
            deferred: Deferred::default(),
            ended: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Marks the attempt as over: its body returned (or was dropped). A client that captured
    /// this scope to govern calls made from other tasks refuses calls from then on.
    pub(crate) fn end(&self) {
        self.ended.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether the attempt is over (see [`ActivityScope::end`]).
    #[cfg_attr(not(feature = "mcp"), allow(dead_code))]
    pub(crate) fn has_ended(&self) -> bool {
        self.ended.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The governor of the worker running the activity.
    pub(crate) fn governor(&self) -> &Governor {
        &self.governor
    }

    /// The names whose values the hooks mask before anything reaches Core.
    #[cfg(any(
        feature = "http",
        feature = "mcp",
        feature = "process",
        feature = "lapin",
        feature = "async-nats",
        feature = "rumqttc"
    ))]
    pub(crate) fn sensitive_names(&self) -> &crate::secrets::SensitiveNames {
        self.governor.client().config().sensitive_names()
    }

    /// Which activity attempt this is.
    pub(crate) fn identity(&self) -> &Arc<ActivityIdentity> {
        &self.identity
    }

    /// The input as Core last saw it (redacted when guardrails redacted it: Core never sees again what it asked to hide).
    pub(crate) fn input(&self) -> Arc<Vec<Value>> {
        self.input.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The trace of this attempt's operations when no OpenTelemetry context provides one.
    pub(crate) fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The parent of this attempt's operation spans when no OpenTelemetry context provides one.
    pub(crate) fn span_id(&self) -> &str {
        &self.span_id
    }

    /// The approval settings for a hook's REQUIRE_APPROVAL, or `None` when approvals are off.
    pub(crate) fn approval_context(&self) -> Option<ApprovalContext<'_>> {
        (self
            .governor
            .options()
            .approvals_enabled_for(&self.identity.activity_type)
            && self.approval)
            .then(|| ApprovalContext::new(&self.governor, &self.identity, self.scheduled_time))
    }

    /// Records an operation's span for ActivityCompleted, bounded in count
    /// ([`MAX_SPANS_PER_ACTIVITY`]) and size ([`MAX_SPAN_BODY_CHARS`]).
    pub(crate) fn record_span(&self, mut span: Span) {
        if let HookSpan::HttpRequest(http) = &mut span.hook {
            for body in [&mut http.request_body, &mut http.response_body]
                .into_iter()
                .flatten()
            {
                if body.len() > MAX_SPAN_BODY_CHARS {
                    *body = truncate(body, MAX_SPAN_BODY_CHARS, Cut::WithTotal);
                }
            }
        }
        let mut buf = self.spans.lock().unwrap_or_else(|p| p.into_inner());
        if buf.spans.len() < MAX_SPANS_PER_ACTIVITY {
            buf.spans.push(span);
        } else {
            buf.dropped += 1;
        }
    }

    pub(crate) fn take_spans(&self) -> Vec<Span> {
        let mut buf = self.spans.lock().unwrap_or_else(|p| p.into_inner());
        if buf.dropped > 0 {
            tracing::debug!(
                dropped = buf.dropped,
                "spans beyond the per-activity limit were not reported"
            );
        }
        std::mem::take(&mut buf.spans)
    }

    /// Whether [`ActivityScope::defer`] can run an evaluation now.
    pub(crate) fn can_defer(&self) -> bool {
        self.deferred.can_run()
    }

    /// Runs `evaluation` while the attempt goes on; the attempt waits for it before
    /// ActivityCompleted (see [`ActivityScope::settle`]).
    pub(crate) fn defer(&self, evaluation: impl Future<Output = ()> + Send + 'static) {
        self.deferred.defer(evaluation);
    }

    /// Waits until every deferred evaluation answered (including ones started meanwhile), so
    /// that their verdicts and spans are in before the attempt ends.
    pub(crate) async fn settle(&self) {
        self.deferred.settle().await;
    }

    /// Remembers that a hook stopped the activity (a `completed`-stage BLOCK or HALT): the
    /// attempt fails with it even if user code swallowed the hook's error. The strictest wins.
    pub(crate) fn record_hook_stop(&self, failure: GovernanceFailure) {
        let mut stop = self.hook_stop.lock().unwrap_or_else(|p| p.into_inner());
        let replace = match &*stop {
            None => true,
            Some(existing) => existing.kind() != super::failure::FailureKind::Halt,
        };
        if replace {
            *stop = Some(failure);
        }
    }

    pub(crate) fn take_hook_stop(&self) -> Option<GovernanceFailure> {
        self.hook_stop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The scope of the code running now, if it runs inside a governed activity.
    pub fn current() -> Option<Arc<ActivityScope>> {
        CURRENT
            .try_with(Arc::clone)
            .ok()
            .or_else(|| CURRENT_SYNC.with(|c| c.borrow().clone()))
    }

    /// Runs `fut` inside this scope.
    pub async fn run<F: Future>(self: Arc<Self>, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }

    /// Runs the activity body inside this scope, and in the same task the deferred `completed`
    /// evaluations its operations hand over; returns when both are done.
    pub(crate) async fn drive<F: Future>(self: Arc<Self>, body: F) -> F::Output {
        let scoped = CURRENT.scope(self.clone(), body);
        self.deferred.drive(scoped).await
    }

    /// Runs `f` inside this scope on the current thread (sync activity bodies).
    pub fn run_sync<R>(self: Arc<Self>, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Arc<ActivityScope>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT_SYNC.with(|c| *c.borrow_mut() = previous);
            }
        }
        let previous = CURRENT_SYNC.with(|c| c.borrow_mut().replace(self));
        let _restore = Restore(previous);
        f()
    }
}

impl Drop for ActivityScope {
    fn drop(&mut self) {
        self.governor.counters().scope_closed();
    }
}

/// Spawns `fut` on the Tokio runtime so that it stays inside the current governed activity:
/// operations it makes are governed and reported like the activity's own. Outside an activity
/// it is plain `tokio::spawn`.
pub fn spawn<F>(fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match ActivityScope::current() {
        Some(scope) => tokio::spawn(scope.run(fut)),
        None => tokio::spawn(fut),
    }
}
