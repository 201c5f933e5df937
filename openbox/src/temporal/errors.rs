//! Temporal errors → the `error` objects of ActivityCompleted and WorkflowFailed, and the
//! recognition of governance failures coming back from activities.

use temporalio_common::error::IncomingError;
use temporalio_common::protos::temporal::api::failure::v1::Failure;
use temporalio_sdk::activities::ActivityError;
use temporalio_sdk::{ActivityExecutionError, OutgoingWorkflowError};
use temporalio_workflow::WorkflowTermination;

use super::codec::payload_to_json;
use crate::governance::failure::{
    FailureKind, GOVERNANCE_HALT, GOVERNANCE_PATCH, GovernanceFailure,
};
use crate::wire::{ActivityFailureInfo, ErrorCause, PatchRequest, WorkflowErrorInfo};

/// A governance failure as the Temporal `ApplicationFailure` it becomes: its type, its message,
/// whether it is retried and after how long.
impl From<&GovernanceFailure> for temporalio_sdk::ApplicationFailure {
    fn from(failure: &GovernanceFailure) -> Self {
        let details = failure
            .patch_request()
            .and_then(|p| serde_json::to_value(p).ok());
        temporalio_sdk::ApplicationFailure::builder(failure.message().to_owned())
            .type_name(failure.type_name().to_owned())
            .non_retryable(!failure.kind().retryable())
            .maybe_next_retry_delay(failure.retry_after())
            .maybe_details(details)
            .build()
    }
}

/// The conversions under the names the crate uses internally. (`ActivityError` converts any
/// error type generically, as a retryable failure without its type, so a governance failure
/// becomes one explicitly: `ActivityError::Application(Box::new((&failure).into()))`.)
pub(crate) trait IntoTemporal {
    fn to_application_failure(&self) -> temporalio_sdk::ApplicationFailure;
    fn to_activity_error(&self) -> ActivityError;
}

impl IntoTemporal for GovernanceFailure {
    fn to_application_failure(&self) -> temporalio_sdk::ApplicationFailure {
        self.into()
    }

    fn to_activity_error(&self) -> ActivityError {
        ActivityError::Application(Box::new(self.into()))
    }
}

/// `{type, message}` of a failed activity attempt, or `None` when it did not fail
/// (`WillCompleteAsync`: the outcome is not known yet).
pub(crate) fn activity_failure_info(error: &ActivityError) -> Option<ActivityFailureInfo> {
    match error {
        ActivityError::Application(af) => Some(ActivityFailureInfo {
            error_type: af.type_name().unwrap_or("ApplicationError").to_owned(),
            message: af.to_string(),
        }),
        ActivityError::Cancelled { .. } => Some(ActivityFailureInfo {
            error_type: "CancelledError".into(),
            message: "Activity cancelled".into(),
        }),
        _ => None,
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}

/// A panicking activity body, as the SDK reports it (retryable).
pub(crate) fn panic_error(payload: &(dyn std::any::Any + Send)) -> ActivityError {
    ActivityError::Application(Box::new(temporalio_sdk::ApplicationFailure::new(format!(
        "Activity function panicked: {}",
        panic_message(payload)
    ))))
}

fn truncate(s: &str, max: usize) -> String {
    crate::text::truncate(s, max, crate::text::Cut::Plain)
}

fn incoming_type(e: &IncomingError) -> &'static str {
    match e {
        IncomingError::Application(_) => "ApplicationError",
        IncomingError::Timeout(_) => "TimeoutError",
        IncomingError::Cancelled(_) => "CancelledError",
        IncomingError::Terminated(_) => "TerminatedError",
        IncomingError::Server(_) => "ServerError",
        IncomingError::ResetWorkflow(_) => "ResetWorkflowError",
        IncomingError::Activity(_) => "ActivityError",
        IncomingError::ChildWorkflowExecution(_) => "ChildWorkflowError",
        _ => "Error",
    }
}

fn application_type(e: &IncomingError) -> Option<String> {
    match e {
        IncomingError::Application(af) => {
            af.type_name().filter(|t| t.len() < 200).map(str::to_owned)
        }
        _ => None,
    }
}

fn failure_message(f: &Failure) -> String {
    f.message.clone()
}

fn cause_of(e: &IncomingError, with_non_retryable: bool) -> ErrorCause {
    let non_retryable = match e {
        IncomingError::Application(af) if with_non_retryable => Some(af.is_non_retryable()),
        _ => None,
    };
    let error_type = application_type(e);
    // An application failure's text is "<type>: <message>", as the reference renders it.
    let message = match &error_type {
        Some(t) => format!("{t}: {}", failure_message(e.failure())),
        None => failure_message(e.failure()),
    };
    ErrorCause {
        error_type,
        message: truncate(&message, ErrorCause::MAX_MESSAGE_CHARS),
        non_retryable,
        cause_type: incoming_type(e).to_owned(),
    }
}

/// The `error` object of WorkflowFailed for the way a run failed.
pub(crate) fn workflow_error_info(error: &OutgoingWorkflowError) -> WorkflowErrorInfo {
    let (error_type, message, cause): (&str, String, Option<&IncomingError>) = match error {
        OutgoingWorkflowError::ActivityExecution(e) => {
            let msg = e
                .failure()
                .map(failure_message)
                .unwrap_or_else(|| e.to_string());
            ("ActivityError", msg, e.cause())
        }
        OutgoingWorkflowError::ChildWorkflowExecution(e) => {
            ("ChildWorkflowError", e.to_string(), e.cause())
        }
        OutgoingWorkflowError::Application(af) => ("ApplicationError", af.to_string(), af.cause()),
        other => ("WorkflowError", other.to_string(), None),
    };
    WorkflowErrorInfo {
        cause: cause.map(|c| cause_of(c, true)),
        message,
        root_cause: cause
            .and_then(IncomingError::cause)
            .map(|r| cause_of(r, false)),
        error_type: error_type.to_owned(),
    }
}

/// The `error` object for a workflow ended by governance (its own GovernanceBlock/Halt).
pub(crate) fn governance_error_info(kind: FailureKind, message: &str) -> WorkflowErrorInfo {
    WorkflowErrorInfo {
        cause: None,
        message: message.to_owned(),
        root_cause: None,
        error_type: kind.type_name().to_owned(),
    }
}

/// If an activity failed with `GovernanceHalt` (at any depth), its message.
pub(crate) fn halt_message(error: &ActivityExecutionError) -> Option<String> {
    let mut next = error.cause();
    while let Some(e) = next {
        if let IncomingError::Application(af) = e
            && af.type_name() == Some(GOVERNANCE_HALT)
        {
            return Some(failure_message(e.failure()));
        }
        next = e.cause();
    }
    None
}

/// The restart an activity's `GovernancePatch` failure asks for, if it failed with one whose
/// details are a valid envelope (otherwise it counts as a plain BLOCK).
pub(crate) fn patch_request_of(error: &ActivityExecutionError) -> Option<PatchRequest> {
    let mut next = error.cause();
    while let Some(e) = next {
        if let IncomingError::Application(af) = e
            && af.type_name() == Some(GOVERNANCE_PATCH)
        {
            let details = af.raw_details()?.first()?;
            return PatchRequest::from_details(&payload_to_json(details));
        }
        next = e.cause();
    }
    None
}

/// `true` when the run failed (as opposed to completing, being cancelled, continuing as new
/// or being evicted).
pub(crate) fn failed(termination: &WorkflowTermination) -> Option<&OutgoingWorkflowError> {
    match termination {
        WorkflowTermination::Failed(e) => Some(e),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn application_failure_carries_type_and_retryability() {
        let f = GovernanceFailure::approval_required(Some("big"), Duration::from_millis(300))
            .to_application_failure();
        assert_eq!(f.type_name(), Some("ApprovalPending"));
        assert!(!f.is_non_retryable());
        assert_eq!(f.next_retry_delay(), Some(Duration::from_millis(300)));
        let f = GovernanceFailure::blocked(Some("x")).to_application_failure();
        assert!(f.is_non_retryable());
        assert_eq!(f.to_string(), "Governance blocked: x");
    }

    #[test]
    fn truncation_is_by_characters() {
        assert_eq!(truncate("héllo", 2), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn activity_failures() {
        let e = crate::GovernanceFailure::blocked(Some("no")).to_activity_error();
        let info = activity_failure_info(&e).unwrap();
        assert_eq!(info.error_type, "GovernanceBlock");
        assert_eq!(info.message, "Governance blocked: no");
        assert_eq!(
            activity_failure_info(&ActivityError::cancelled())
                .unwrap()
                .error_type,
            "CancelledError"
        );
        assert!(activity_failure_info(&ActivityError::WillCompleteAsync).is_none());
    }
}
