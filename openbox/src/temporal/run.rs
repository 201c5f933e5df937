//! What one governed workflow run shares between the interceptor and the workflow's own code:
//! how a workflow-side event is sent (through the carrier activity), what its recorded answer
//! means, and how the run is stopped — by a HALT, or for a restart Core asked for.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use temporalio_common::RetryPolicy;
use temporalio_sdk::workflow_interceptors::WorkflowInterceptorContext;
use temporalio_sdk::{ActivityOptions, LocalActivityOptions, WorkflowCancellationToken};
use temporalio_workflow::WorkflowContextKey;

use super::carrier::{CarrierInput, CarrierOutcome, GovernanceActivities};
use crate::config::ErrorPolicy;
use crate::governance::Governor;
use crate::governance::failure::GovernanceFailure;
use crate::governance::options::CarrierMode;
use crate::wire::time::format_timestamp;
use crate::wire::{LifecycleEvent, PatchRequest, Verdict};

/// Extra time the carrier gets beyond the Core call timeout.
const CARRIER_SLACK: Duration = Duration::from_secs(5);

/// Per-run state shared by the inbound and outbound methods of one interceptor instance, and by
/// the workflow's own calls ([`crate::handoff`]).
pub(crate) struct RunState {
    /// Cancelled when the run must stop: a HALT, or a restart Core asked for.
    pub(crate) halt: WorkflowCancellationToken,
    failure: RefCell<Option<GovernanceFailure>>,
    /// The first restart asked for (a BLOCK with a patch); a HALT still wins over it.
    restart: RefCell<Option<PatchRequest>>,
    /// Signal and update handlers of this run that have not finished (their governance round
    /// trip included).
    handlers: Cell<usize>,
    /// Cancelled when the last running handler finishes, while a restart waits for that.
    handlers_idle: RefCell<Option<WorkflowCancellationToken>>,
}

/// One running signal or update handler of a run; dropped when it finishes (or is dropped).
pub(crate) struct HandlerGuard(Rc<RunState>);

impl Drop for HandlerGuard {
    fn drop(&mut self) {
        let left = self.0.handlers.get().saturating_sub(1);
        self.0.handlers.set(left);
        if left == 0
            && let Some(idle) = self.0.handlers_idle.borrow_mut().take()
        {
            // The SDK's token wakes the waiting run as workflow code may (a waker of our own
            // would count as a nondeterministic wake).
            idle.cancel();
        }
    }
}

impl RunState {
    pub(crate) fn new() -> Self {
        RunState {
            halt: WorkflowCancellationToken::new(),
            failure: RefCell::new(None),
            restart: RefCell::new(None),
            handlers: Cell::new(0),
            handlers_idle: RefCell::new(None),
        }
    }

    /// Counts a signal or update handler as running until the guard is dropped.
    pub(crate) fn track_handler(self: &Rc<Self>) -> HandlerGuard {
        self.handlers.set(self.handlers.get() + 1);
        HandlerGuard(self.clone())
    }

    /// Returns once no signal or update handler is running. A restart waits for this, as the
    /// reference does before it continues as new: a handler cut off mid-way (its activity
    /// scheduled, its signal half applied) would be lost with the run. Handlers that start
    /// while it waits are waited for too.
    pub(crate) async fn handlers_finished(&self) {
        while self.handlers.get() > 0 {
            let idle = WorkflowCancellationToken::new();
            *self.handlers_idle.borrow_mut() = Some(idle.clone());
            idle.cancelled().await;
        }
    }

    pub(crate) fn halt(&self, failure: GovernanceFailure) {
        self.failure.borrow_mut().get_or_insert(failure);
        self.halt.cancel();
    }

    pub(crate) fn restart(&self, request: PatchRequest) {
        self.restart.borrow_mut().get_or_insert(request);
        self.halt.cancel();
    }

    pub(crate) fn halted(&self) -> bool {
        self.failure.borrow().is_some()
    }

    pub(crate) fn restart_request(&self) -> Option<PatchRequest> {
        self.restart.borrow().clone()
    }

    pub(crate) fn halt_failure(&self) -> GovernanceFailure {
        self.failure
            .borrow()
            .clone()
            .unwrap_or_else(|| GovernanceFailure::halted(None))
    }
}

/// What a workflow-side decision means for the run.
pub(crate) enum Judgement {
    Proceed,
    Block(Option<String>),
    /// Guardrails refused the event: stopped like a BLOCK, with `GuardrailsValidationFailed`.
    Refused(GovernanceFailure),
    Halt(GovernanceFailure),
    /// A BLOCK with a patch: the run continues as new with the patched input.
    Restart(PatchRequest),
}

/// The meaning of a recorded carrier answer about an `event_type` event.
pub(crate) fn judge(outcome: &CarrierOutcome, event_type: &str) -> Judgement {
    if outcome.stop {
        let error = outcome
            .core_error
            .as_deref()
            .unwrap_or("Governance API error");
        return Judgement::Halt(GovernanceFailure::halted(Some(error)));
    }
    if let (Some(Verdict::Block), Some(patch)) = (outcome.verdict, &outcome.patch) {
        return Judgement::Restart(patch.clone());
    }
    let reason = outcome.reason.as_deref();
    match outcome.verdict {
        Some(Verdict::Halt) => Judgement::Halt(GovernanceFailure::halted(reason)),
        Some(Verdict::Block) => Judgement::Block(reason.map(str::to_owned)),
        Some(_) if outcome.guardrails_failed.is_some() => {
            let reasons = outcome.guardrails_failed.as_deref().unwrap_or_default();
            let reasons: Vec<&str> = reasons.iter().map(String::as_str).collect();
            Judgement::Refused(GovernanceFailure::guardrails(&reasons, false))
        }
        Some(Verdict::RequireApproval) => {
            tracing::warn!(
                event_type,
                ?reason,
                "REQUIRE_APPROVAL on a workflow event has no approval flow; proceeding"
            );
            Judgement::Proceed
        }
        Some(Verdict::Constrain) => {
            tracing::info!(event_type, ?reason, "Governance constraint applied");
            Judgement::Proceed
        }
        Some(Verdict::Allow) | None => Judgement::Proceed,
    }
}

/// The event's time: the workflow's clock, so replays agree.
pub(crate) fn timestamp(ctx: &WorkflowInterceptorContext) -> String {
    format_timestamp(ctx.workflow_time().unwrap_or(UNIX_EPOCH))
}

/// Sends `event` through the carrier activity and returns its recorded outcome. A carrier that
/// failed altogether gives no verdict (which stops the run under `fail_closed`).
pub(crate) async fn send(
    ctx: &WorkflowInterceptorContext,
    governor: &Governor,
    event: LifecycleEvent,
) -> CarrierOutcome {
    let input = CarrierInput { payload: event };
    let timeout = governor.client().config().timeout() + CARRIER_SLACK;
    let retry = RetryPolicy::builder().maximum_attempts(3).build();
    // A detached token: the event is still sent when the workflow is being cancelled.
    let token = WorkflowCancellationToken::new();
    let result = match governor.options().carrier() {
        CarrierMode::Local => {
            let opts = LocalActivityOptions::builder()
                .start_to_close_timeout(timeout)
                .retry_policy(retry)
                .cancellation_token(token)
                .build();
            ctx.execute_local_activity(GovernanceActivities::send_governance_event, input, opts)
                .await
        }
        CarrierMode::Regular => {
            let opts = ActivityOptions::with_start_to_close_timeout(timeout)
                .retry_policy(retry)
                .cancellation_token(token)
                .build();
            ctx.execute_activity(GovernanceActivities::send_governance_event, input, opts)
                .await
        }
    };
    result.unwrap_or_else(|e| {
        let stop = governor.client().config().error_policy() == ErrorPolicy::FailClosed;
        CarrierOutcome::no_verdict(
            format!("Governance API error: the carrier activity failed: {e}"),
            stop,
        )
    })
}

/// What the workflow's own code reaches of its governed run, installed around the run body.
pub(crate) struct RunHandle {
    pub(crate) ctx: WorkflowInterceptorContext,
    pub(crate) governor: Governor,
    pub(crate) run: Rc<RunState>,
    /// Whether the run is governed (its workflow type is not skipped).
    pub(crate) governed: bool,
}

/// The key of [`RunHandle`] among the run's context values.
pub(crate) struct RunKey;

impl WorkflowContextKey for RunKey {
    type Value = RunHandle;
}
