//! The workflow interceptor: WorkflowStarted before the run body, WorkflowCompleted /
//! WorkflowFailed after it, SignalReceived before each signal handler — each sent through the
//! carrier activity and decided deterministically from its recorded result, so a replay decides the same:
//!
//! | Verdict | WorkflowStarted | SignalReceived | WorkflowCompleted |
//! |---|---|---|---|
//! | BLOCK | the run fails with `GovernanceBlock` before user code | the handler does not run | the run fails with `GovernanceBlock` instead of completing |
//! | HALT | the run fails with `GovernanceHalt` | the run fails with `GovernanceHalt` | the run fails with `GovernanceHalt` |
//!
//! HALT always *fails the run* (non-retryable `GovernanceHalt`) rather than terminating it
//! through the client: the decision comes from history, so replays agree, no client is needed
//! and the run's failure names the reason. An activity that fails with `GovernanceHalt` (a HALT
//! on ActivityStarted/ActivityCompleted, a hook HALT, fail_closed) ends the run the same way,
//! even if the workflow code catches the activity error. WorkflowFailed never masks the original
//! error. REQUIRE_APPROVAL on workflow events is logged and proceeds, as in the reference.
//!
//! A BLOCK with a patch, answered to any of these events, to an activity or an operation inside
//! one, or to a handoff, stops the run the same way and continues it as new with the patched
//! input (see [`OpenBoxWorkflowInterceptor`]'s restart rules in the README); a HALT wins over it.
//!
//! A signal delivered together with the start is handled in the same activation as the run,
//! so its SignalReceived and the WorkflowStarted are sent concurrently and may reach Core in
//! either order (as with the reference SDK). A signal handler cannot wait for WorkflowStarted:
//! the SDK fails a workflow task whose interceptor waits on anything but a Temporal operation.

use std::collections::HashMap;
use std::rc::Rc;
use std::task::Poll;

use serde_json::Value;
use temporalio_common::protos::coresdk::workflow_commands::ContinueAsNewWorkflowExecution;
use temporalio_common::protos::temporal::api::common::v1::Payload;
use temporalio_sdk::WorkflowContextView;
use temporalio_sdk::workflow_interceptors::{
    CancellableWorkflowOutboundFuture, ExecuteWorkflowInput, ExecuteWorkflowResult,
    HandleSignalInput, HandleSignalResult, HandleUpdateInput, HandleUpdateResult,
    ScheduleActivityInput, ScheduleActivityResult, ScheduleLocalActivityInput, WorkflowInterceptor,
    WorkflowInterceptorConstructor, WorkflowInterceptorContext, WorkflowInterceptorFuture,
    WorkflowNext,
};
use temporalio_workflow::WorkflowTermination;

use super::carrier::CarrierOutcome;
use super::codec::{json_payload, payload_to_json};
use super::errors::{
    IntoTemporal, failed, governance_error_info, halt_message, patch_request_of,
    workflow_error_info,
};
use super::registry::{WorkflowDecl, workflow_decl};
use super::run::{Judgement, RunHandle, RunKey, RunState, judge, send, timestamp};
use super::session::{session_from_memo, stamp};
use super::signal_codec::signal_args;
use crate::governance::Governor;
use crate::governance::failure::GovernanceFailure;
use crate::governance::options::CARRIER_ACTIVITY;
use crate::wire::{
    LifecycleEvent, PatchRequest, SignalReceived, WorkflowCompleted, WorkflowFailed,
    WorkflowStarted, WorkflowTelemetry,
};

/// The memo key of a chain's restart count: the reference's, so a chain keeps its count
/// whichever SDK's worker restarts it.
pub const PATCH_RESTART_COUNT_MEMO_KEY: &str = "openbox_retryable_block_restart_count";

/// Governs the workflow runs of a worker. Created per run by
/// [`OpenBoxWorkflowInterceptor::constructor`].
pub struct OpenBoxWorkflowInterceptor {
    governor: Governor,
    governed: bool,
    decl: Option<&'static WorkflowDecl>,
    run: Rc<RunState>,
    /// The run's arguments as recorded at its start (what a restart without new input reuses).
    arguments: Vec<Payload>,
    /// The run's memo as recorded at its start (copied into a restart, with the count).
    memo: HashMap<String, Payload>,
    /// The multi-agent session named in the memo, stamped on every event and activity.
    session: Option<String>,
}

impl OpenBoxWorkflowInterceptor {
    /// The constructor to register with `WorkerOptions::workflow_interceptor` (done by
    /// [`crate::OpenBoxPlugin`]).
    pub fn constructor(governor: Governor) -> WorkflowInterceptorConstructor {
        WorkflowInterceptorConstructor::new(move |view: &WorkflowContextView| {
            OpenBoxWorkflowInterceptor::new(governor.clone(), view)
        })
    }

    /// The interceptor of one run. Whether the run is governed is decided here, from data that
    /// is the same on every replay: its type and its start time.
    pub fn new(governor: Governor, view: &WorkflowContextView) -> Self {
        let options = governor.options();
        let decl = workflow_decl(view.workflow_type());
        let started_in_scope = match options.workflows_started_after() {
            None => true,
            Some(cutoff) => view.start_time().is_some_and(|t| t >= cutoff),
        };
        let governed = options.governs_workflow_type(view.workflow_type())
            && options.governs_task_queue(view.task_queue())
            && (!options.only_annotated() || decl.is_some())
            && started_in_scope;
        let memo: HashMap<String, Payload> = view
            .raw()
            .memo
            .as_ref()
            .map(|m| m.fields.clone())
            .unwrap_or_default();
        OpenBoxWorkflowInterceptor {
            session: session_from_memo(&memo),
            memo,
            governor,
            governed,
            decl,
            run: Rc::new(RunState::new()),
            arguments: view.raw().arguments.clone(),
        }
    }

    async fn send(
        &self,
        ctx: &WorkflowInterceptorContext,
        event: LifecycleEvent,
    ) -> CarrierOutcome {
        send(ctx, &self.governor, event).await
    }

    fn fail(failure: &GovernanceFailure) -> WorkflowTermination {
        WorkflowTermination::failed_application(failure.to_application_failure())
    }

    /// WorkflowFailed for a run that failed with `error`. Whatever Core says stands aside for
    /// the original error, except a BLOCK with a patch: that restarts the run instead.
    async fn report_failure(
        &self,
        ctx: &WorkflowInterceptorContext,
        error: crate::wire::WorkflowErrorInfo,
    ) -> Option<PatchRequest> {
        let event = LifecycleEvent::WorkflowFailed(WorkflowFailed {
            multi_agent_session_id: self.session.clone(),
            error,
            run_id: ctx.run_id().to_owned(),
            source: WorkflowTelemetry,
            workflow_id: ctx.workflow_id().to_owned(),
            workflow_type: ctx.workflow_type().to_owned(),
            timestamp: timestamp(ctx),
        });
        match judge(&self.send(ctx, event).await, "WorkflowFailed") {
            Judgement::Restart(request) => Some(request),
            _ => None,
        }
    }

    /// Ends the run with `failure`, reported to Core first (a patch in the answer restarts it).
    async fn stop_with(
        &self,
        ctx: &WorkflowInterceptorContext,
        failure: &GovernanceFailure,
    ) -> ExecuteWorkflowResult {
        let info = governance_error_info(failure.kind(), failure.message());
        match self.report_failure(ctx, info).await {
            Some(request) => self.continue_as_new(ctx, &request).await,
            None => Err(Self::fail(failure)),
        }
    }

    /// The Continue-As-New a patch asks for: the same workflow type and task queue, the patched
    /// input as its one argument (`null`: this run's arguments), this run's memo with the restart
    /// count one higher. Fails the run instead when the chain has used up `max_patch_restarts`,
    /// or when the workflow declares its input type and the patched input is not one.
    ///
    /// Running signal and update handlers finish first (continuing as new would drop them
    /// mid-way); a HALT that comes meanwhile ends the run instead.
    async fn continue_as_new(
        &self,
        ctx: &WorkflowInterceptorContext,
        request: &PatchRequest,
    ) -> ExecuteWorkflowResult {
        self.run.handlers_finished().await;
        if self.run.halted() {
            let halt = self.run.halt_failure();
            if self.governed {
                let info = governance_error_info(halt.kind(), halt.message());
                let _ = self.report_failure(ctx, info).await;
            }
            return Err(Self::fail(&halt));
        }
        match self.restart_command(ctx, request) {
            Ok(command) => {
                tracing::info!(
                    workflow_id = ctx.workflow_id(),
                    event_type = request.event_type.as_str(),
                    reason = request.reason.as_deref(),
                    "Governance requested a restart with a patched input; continuing as new"
                );
                Err(WorkflowTermination::continue_as_new(command))
            }
            Err(failure) => {
                let info = governance_error_info(failure.kind(), failure.message());
                // Core hears why; a second patch in its answer cannot restart past the limit.
                if self.governed {
                    let _ = self.report_failure(ctx, info).await;
                }
                Err(Self::fail(&failure))
            }
        }
    }

    fn restart_command(
        &self,
        ctx: &WorkflowInterceptorContext,
        request: &PatchRequest,
    ) -> Result<ContinueAsNewWorkflowExecution, GovernanceFailure> {
        let max = self.governor.options().max_patch_restarts();
        let count = match self.memo.get(PATCH_RESTART_COUNT_MEMO_KEY) {
            None => 0,
            Some(payload) => payload_to_json(payload)
                .as_u64()
                .ok_or_else(GovernanceFailure::patch_counter_invalid)?,
        };
        let next = count.saturating_add(1);
        if next > u64::from(max) {
            return Err(GovernanceFailure::patch_limit_exceeded(max));
        }
        let arguments = if request.new_input.is_null() {
            self.arguments.clone()
        } else {
            vec![json_payload(&request.new_input)]
        };
        if let Some(check) = self.decl.map(|d| d.input_check) {
            check(ctx.payload_converter(), &arguments)
                .map_err(|why| GovernanceFailure::patch_input_invalid(&why))?;
        }
        let mut memo = self.memo.clone();
        memo.insert(
            PATCH_RESTART_COUNT_MEMO_KEY.to_owned(),
            json_payload(&Value::from(next)),
        );
        Ok(ContinueAsNewWorkflowExecution {
            workflow_type: ctx.workflow_type().to_owned(),
            arguments,
            memo,
            ..Default::default()
        })
    }

    /// How a run stopped by [`RunState`] ends: a HALT fails it, a restart continues it as new.
    async fn stopped(&self, ctx: &WorkflowInterceptorContext) -> ExecuteWorkflowResult {
        match self.run.restart_request() {
            Some(request) if !self.run.halted() => self.continue_as_new(ctx, &request).await,
            _ => Err(Self::fail(&self.run.halt_failure())),
        }
    }

    async fn execute_governed(
        &self,
        ctx: WorkflowInterceptorContext,
        input: ExecuteWorkflowInput,
        next: WorkflowNext<
            '_,
            ExecuteWorkflowInput,
            WorkflowInterceptorFuture<'_, ExecuteWorkflowResult>,
        >,
    ) -> ExecuteWorkflowResult {
        if self.governor.options().send_start_event() {
            let event = LifecycleEvent::WorkflowStarted(WorkflowStarted {
                multi_agent_session_id: self.session.clone(),
                activity_input: Some(self.arguments.iter().map(payload_to_json).collect()),
                run_id: ctx.run_id().to_owned(),
                source: WorkflowTelemetry,
                task_queue: ctx.task_queue().to_owned(),
                workflow_id: ctx.workflow_id().to_owned(),
                workflow_type: ctx.workflow_type().to_owned(),
                timestamp: timestamp(&ctx),
            });
            let outcome = self.send(&ctx, event).await;
            let stop = match judge(&outcome, "WorkflowStarted") {
                Judgement::Proceed => None,
                Judgement::Restart(request) => return self.continue_as_new(&ctx, &request).await,
                Judgement::Block(reason) => Some(GovernanceFailure::blocked(reason.as_deref())),
                Judgement::Refused(failure) | Judgement::Halt(failure) => Some(failure),
            };
            if let Some(failure) = stop {
                return self.stop_with(&ctx, &failure).await;
            }
        }
        let result = match self.run_until_halt(self.body(&ctx, next.run(input))).await {
            Some(result) => result,
            None => {
                if self.run.halted() {
                    let halt = self.run.halt_failure();
                    let info = governance_error_info(halt.kind(), halt.message());
                    let _ = self.report_failure(&ctx, info).await;
                }
                return self.stopped(&ctx).await;
            }
        };
        match &result {
            Ok(output) => {
                let workflow_output = output
                    .as_serde()
                    .ok()
                    .and_then(|s| serde_json::to_value(s).ok())
                    .unwrap_or(Value::Null);
                let event = LifecycleEvent::WorkflowCompleted(WorkflowCompleted {
                    multi_agent_session_id: self.session.clone(),
                    run_id: ctx.run_id().to_owned(),
                    source: WorkflowTelemetry,
                    workflow_id: ctx.workflow_id().to_owned(),
                    workflow_output,
                    workflow_type: ctx.workflow_type().to_owned(),
                    timestamp: timestamp(&ctx),
                });
                let outcome = self.send(&ctx, event).await;
                match judge(&outcome, "WorkflowCompleted") {
                    Judgement::Proceed => result,
                    Judgement::Restart(request) => self.continue_as_new(&ctx, &request).await,
                    Judgement::Block(reason) => {
                        Err(Self::fail(&GovernanceFailure::blocked(reason.as_deref())))
                    }
                    Judgement::Refused(failure) | Judgement::Halt(failure) => {
                        Err(Self::fail(&failure))
                    }
                }
            }
            Err(termination) => {
                if let Some(error) = failed(termination)
                    && let Some(request) =
                        self.report_failure(&ctx, workflow_error_info(error)).await
                {
                    return self.continue_as_new(&ctx, &request).await;
                }
                result
            }
        }
    }

    /// The run body with this run reachable from the workflow's own code ([`crate::handoff`]).
    fn body<F: Future<Output = ExecuteWorkflowResult>>(
        &self,
        ctx: &WorkflowInterceptorContext,
        run: F,
    ) -> impl Future<Output = ExecuteWorkflowResult> {
        let handle = RunHandle {
            ctx: ctx.clone(),
            governor: self.governor.clone(),
            run: self.run.clone(),
            governed: self.governed,
        };
        ctx.with_context_value::<RunKey, F>(handle, run)
    }

    /// Runs the workflow body until it finishes (`Some`) or the run is stopped (`None`: a HALT
    /// or a restart, see [`RunState`]).
    ///
    /// The halt token is asked to wake this run once, not on every poll: the token's
    /// `cancelled()` future keeps every waker it is polled with until the token is cancelled, so
    /// selecting on it would grow by one waker per activation for the whole life of the run.
    /// One waker is enough because the run is always polled by the same executor task.
    async fn run_until_halt(
        &self,
        run: impl Future<Output = ExecuteWorkflowResult>,
    ) -> Option<ExecuteWorkflowResult> {
        let halt = &self.run.halt;
        let mut run = std::pin::pin!(run);
        let mut waker_registered = false;
        std::future::poll_fn(|cx| {
            let finished = run.as_mut().poll(cx);
            // A stop seen while the body was finishing still wins: the run must not complete.
            if halt.is_cancelled() {
                return Poll::Ready(None);
            }
            if let Poll::Ready(result) = finished {
                return Poll::Ready(Some(result));
            }
            if !waker_registered {
                waker_registered = true;
                let halted = std::pin::pin!(halt.cancelled());
                if halted.poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
            }
            Poll::Pending
        })
        .await
    }

    fn watch_for_halt(
        &self,
        activity_type: &str,
        future: CancellableWorkflowOutboundFuture<ScheduleActivityResult>,
    ) -> CancellableWorkflowOutboundFuture<ScheduleActivityResult> {
        if activity_type == CARRIER_ACTIVITY {
            return future;
        }
        let run = self.run.clone();
        // The result type is the SDK's; its size is not ours to change.
        #[allow(clippy::result_large_err)]
        future.map(move |result| {
            if let Err(e) = &result {
                if let Some(message) = halt_message(e) {
                    let reason = message
                        .strip_prefix("Governance HALT: ")
                        .unwrap_or(&message)
                        .to_owned();
                    run.halt(GovernanceFailure::halted(Some(&reason)));
                } else if let Some(request) = patch_request_of(e) {
                    // The run restarts even if its code would catch the error: Core refused
                    // to let it go on with the input it has.
                    run.restart(request);
                }
            }
            result
        })
    }
}

impl WorkflowInterceptor for OpenBoxWorkflowInterceptor {
    fn execute<'a>(
        &'a self,
        ctx: WorkflowInterceptorContext,
        input: ExecuteWorkflowInput,
        next: WorkflowNext<
            'a,
            ExecuteWorkflowInput,
            WorkflowInterceptorFuture<'a, ExecuteWorkflowResult>,
        >,
    ) -> WorkflowInterceptorFuture<'a, ExecuteWorkflowResult> {
        if !self.governed {
            // Not reported to Core, but a HALT or a restart from its activities still applies.
            return WorkflowInterceptorFuture::new(async move {
                match self.run_until_halt(self.body(&ctx, next.run(input))).await {
                    Some(result) => result,
                    None => self.stopped(&ctx).await,
                }
            });
        }
        WorkflowInterceptorFuture::new(self.execute_governed(ctx, input, next))
    }

    fn handle_signal<'a>(
        &'a self,
        ctx: WorkflowInterceptorContext,
        input: HandleSignalInput,
        next: WorkflowNext<
            'a,
            HandleSignalInput,
            WorkflowInterceptorFuture<'a, HandleSignalResult>,
        >,
    ) -> WorkflowInterceptorFuture<'a, HandleSignalResult> {
        if !self.governed || !self.governor.options().governs_signal(input.name()) {
            return tracked(&self.run, next, input);
        }
        let running = self.run.track_handler();
        WorkflowInterceptorFuture::new(async move {
            let _running = running;
            let event = LifecycleEvent::SignalReceived(SignalReceived {
                multi_agent_session_id: self.session.clone(),
                run_id: ctx.run_id().to_owned(),
                signal_args: signal_args(self.decl, &input),
                signal_name: input.name().to_owned(),
                source: WorkflowTelemetry,
                task_queue: ctx.task_queue().to_owned(),
                workflow_id: ctx.workflow_id().to_owned(),
                workflow_type: ctx.workflow_type().to_owned(),
                timestamp: timestamp(&ctx),
            });
            let outcome = self.send(&ctx, event).await;
            match judge(&outcome, "SignalReceived") {
                Judgement::Proceed => next.run(input).await,
                Judgement::Block(reason) => {
                    let failure = GovernanceFailure::signal_blocked(reason.as_deref());
                    tracing::warn!(signal = input.name(), "{failure}; the handler does not run");
                    Ok(())
                }
                Judgement::Refused(failure) => {
                    tracing::warn!(signal = input.name(), "{failure}; the handler does not run");
                    Ok(())
                }
                Judgement::Halt(failure) => {
                    tracing::warn!(signal = input.name(), "{failure}; the run ends");
                    self.run.halt(failure);
                    Ok(())
                }
                Judgement::Restart(request) => {
                    tracing::warn!(
                        signal = input.name(),
                        "Governance requested a restart with a patched input; the handler does not run"
                    );
                    self.run.restart(request);
                    Ok(())
                }
            }
        })
    }

    fn handle_update<'a>(
        &'a self,
        _ctx: WorkflowInterceptorContext,
        input: HandleUpdateInput,
        next: WorkflowNext<
            'a,
            HandleUpdateInput,
            WorkflowInterceptorFuture<'a, HandleUpdateResult>,
        >,
    ) -> WorkflowInterceptorFuture<'a, HandleUpdateResult> {
        // Updates are not reported to Core, but a restart waits for them like for signals.
        tracked(&self.run, next, input)
    }

    fn schedule_activity(
        &self,
        _ctx: WorkflowInterceptorContext,
        mut input: ScheduleActivityInput,
        next: WorkflowNext<
            'static,
            ScheduleActivityInput,
            CancellableWorkflowOutboundFuture<ScheduleActivityResult>,
        >,
    ) -> CancellableWorkflowOutboundFuture<ScheduleActivityResult> {
        if let Some(session) = &self.session {
            stamp(input.headers_mut(), session);
        }
        let activity_type = input.activity_type().to_owned();
        self.watch_for_halt(&activity_type, next.run(input))
    }

    fn schedule_local_activity(
        &self,
        _ctx: WorkflowInterceptorContext,
        mut input: ScheduleLocalActivityInput,
        next: WorkflowNext<
            'static,
            ScheduleLocalActivityInput,
            CancellableWorkflowOutboundFuture<ScheduleActivityResult>,
        >,
    ) -> CancellableWorkflowOutboundFuture<ScheduleActivityResult> {
        if let Some(session) = &self.session {
            stamp(input.headers_mut(), session);
        }
        let activity_type = input.activity_type().to_owned();
        self.watch_for_halt(&activity_type, next.run(input))
    }
}

/// `next` run on `input`, counted as a running handler of `run` until it finishes.
fn tracked<'a, I: 'a, O: 'a>(
    run: &Rc<RunState>,
    next: WorkflowNext<'a, I, WorkflowInterceptorFuture<'a, O>>,
    input: I,
) -> WorkflowInterceptorFuture<'a, O> {
    let running = run.track_handler();
    WorkflowInterceptorFuture::new(async move {
        let _running = running;
        next.run(input).await
    })
}
