//! Handoffs between the agents of a multi-agent session, reported from workflow code.

use temporalio_sdk::WorkflowContext;
use temporalio_workflow::WorkflowTermination;

use super::errors::IntoTemporal;
use super::run::{Judgement, RunKey, judge, send, timestamp};
use crate::governance::failure::GovernanceFailure;
use crate::wire::{Handoff, LifecycleEvent, Verdict, WorkflowTelemetry};

/// What Core answered a handoff with, when the workflow may go on.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HandoffVerdict {
    /// The verdict; `None` when Core gave none and the error policy (`fail_open`) let the run go
    /// on.
    pub verdict: Option<Verdict>,
    /// Core's reason.
    pub reason: Option<String>,
    /// The deciding policy.
    pub policy_id: Option<String>,
    /// Risk score.
    pub risk_score: f64,
}

/// Why a handoff did not go ahead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandoffError {
    /// An argument is empty or blank.
    #[error("handoff: {0} is required and must not be blank")]
    Missing(&'static str),
    /// The run is not governed: its worker has no `OpenBoxPlugin`, its workflow type is skipped,
    /// or the call was made outside the run method (from a signal handler, say).
    #[error(
        "handoff: this run is not governed by OpenBox (no OpenBoxPlugin on the worker, or a \
         skipped workflow type); call it from the run method of a governed workflow"
    )]
    NotGoverned,
    /// Core refused the handoff (BLOCK, or guardrails that failed): the workflow decides what
    /// to do instead.
    #[error("{0}")]
    Refused(GovernanceFailure),
    /// The run is ending — a HALT, or a restart with a patched input Core asked for. Return this
    /// error (`?`): the run stops at its next step whatever the code does.
    #[error("{0}")]
    Stopped(GovernanceFailure),
}

impl From<HandoffError> for WorkflowTermination {
    fn from(error: HandoffError) -> Self {
        let failure = match error {
            HandoffError::Refused(f) | HandoffError::Stopped(f) => f,
            other => GovernanceFailure::not_configured(&other.to_string()),
        };
        WorkflowTermination::failed_application(failure.to_application_failure())
    }
}

/// Reports that the agent `from_agent_did` hands the work of session `multi_agent_session_id`
/// to whoever runs next, and returns Core's answer. Call it from the run method of a governed
/// workflow; it is replay-safe (the answer is recorded in the history like every workflow event:
/// a replay sends nothing and gets the same answer).
///
/// The body is the reference's `Handoff` event: `from_agent_did`, `multi_agent_session_id`,
/// `source`, `timestamp` (the workflow's clock). A HALT stops the run and a BLOCK with a patch
/// restarts it (both as [`HandoffError::Stopped`]); a plain BLOCK is
/// [`HandoffError::Refused`]; without an answer, the error policy decides as for any workflow
/// event.
///
/// ```no_run
/// use temporalio_macros::{workflow, workflow_methods};
/// use temporalio_sdk::{WorkflowContext, WorkflowResult};
///
/// #[workflow]
/// #[derive(Default)]
/// pub struct Triage;
///
/// #[workflow_methods]
/// impl Triage {
///     #[run]
///     pub async fn run(ctx: &mut WorkflowContext<Self>, ticket: String) -> WorkflowResult<String> {
///         // … the triage agent's work …
///         openbox::handoff(ctx, "session-42", "did:aip:triage-agent").await?;
///         Ok(format!("{ticket} handed to billing"))
///     }
/// }
/// ```
pub async fn handoff<W>(
    ctx: &WorkflowContext<W>,
    multi_agent_session_id: &str,
    from_agent_did: &str,
) -> Result<HandoffVerdict, HandoffError> {
    if from_agent_did.trim().is_empty() {
        return Err(HandoffError::Missing("from_agent_did"));
    }
    if multi_agent_session_id.trim().is_empty() {
        return Err(HandoffError::Missing("multi_agent_session_id"));
    }
    let handle = ctx
        .context_value::<RunKey>()
        .filter(|h| h.governed)
        .ok_or(HandoffError::NotGoverned)?;
    let event = LifecycleEvent::Handoff(Handoff {
        from_agent_did: from_agent_did.to_owned(),
        multi_agent_session_id: multi_agent_session_id.to_owned(),
        source: WorkflowTelemetry,
        timestamp: timestamp(&handle.ctx),
    });
    let outcome = send(&handle.ctx, &handle.governor, event).await;
    match judge(&outcome, "Handoff") {
        Judgement::Proceed => Ok(HandoffVerdict {
            verdict: outcome.verdict,
            reason: outcome.reason,
            policy_id: outcome.policy_id,
            risk_score: outcome.risk_score,
        }),
        Judgement::Block(reason) => Err(HandoffError::Refused(GovernanceFailure::blocked(
            reason.as_deref(),
        ))),
        Judgement::Refused(failure) => Err(HandoffError::Refused(failure)),
        Judgement::Halt(failure) => {
            handle.run.halt(failure.clone());
            Err(HandoffError::Stopped(failure))
        }
        Judgement::Restart(request) => {
            handle.run.restart(request.clone());
            Err(HandoffError::Stopped(GovernanceFailure::patch(request)))
        }
    }
}
