//! Why governance stopped an operation, and the Temporal failure it becomes.
//!
//! The `type` strings and messages are the reference SDK's, so workflow code and Core see the
//! same failures whichever SDK ran the activity; [`FailureKind::type_name`] gives the string
//! to compare an `ApplicationFailure`'s type with.

use std::fmt;
use std::time::Duration;

use crate::client::GovernanceApiError;
use crate::wire::{ActivityIdentity, PatchRequest};

/// `GovernanceBlock`: a BLOCK verdict (non-retryable).
pub(crate) const GOVERNANCE_BLOCK: &str = "GovernanceBlock";
/// `GovernanceHalt`: a HALT verdict, or no verdict under `fail_closed` (non-retryable).
pub(crate) const GOVERNANCE_HALT: &str = "GovernanceHalt";
/// `ApprovalPending`: waiting for a human (retryable; the retry is the next poll).
pub(crate) const APPROVAL_PENDING: &str = "ApprovalPending";
/// `ApprovalExpired`: Core's or the SDK's approval deadline passed (non-retryable).
pub(crate) const APPROVAL_EXPIRED: &str = "ApprovalExpired";
/// `ApprovalRejected`: a human rejected (non-retryable).
pub(crate) const APPROVAL_REJECTED: &str = "ApprovalRejected";
/// `GuardrailsValidationFailed`: guardrails refused the input or output (non-retryable).
pub(crate) const GUARDRAILS_VALIDATION_FAILED: &str = "GuardrailsValidationFailed";
/// `GovernanceAPIError`: OpenBox is not usable on this worker (non-retryable).
pub(crate) const GOVERNANCE_API_ERROR: &str = "GovernanceAPIError";

/// `GovernancePatch`: a BLOCK that names the input to restart with (non-retryable); the workflow
/// continues as new with it.
pub(crate) const GOVERNANCE_PATCH: &str = "GovernancePatch";
/// `GovernancePatchLimitExceeded`: a patch asked for more restarts than `max_patch_restarts`
/// allows, or the restart counter in the memo is not one (non-retryable).
pub(crate) const GOVERNANCE_PATCH_LIMIT_EXCEEDED: &str = "GovernancePatchLimitExceeded";
/// `GovernancePatchInputInvalid`: the patched input is not an input of the workflow
/// (non-retryable): a restart with it could not even start.
pub(crate) const GOVERNANCE_PATCH_INPUT_INVALID: &str = "GovernancePatchInputInvalid";

/// The kind of a [`GovernanceFailure`]; each maps to one Temporal failure type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// `GovernanceBlock`: a BLOCK verdict (non-retryable).
    Block,
    /// `GovernanceHalt`: a HALT verdict, or no verdict under `fail_closed` (non-retryable).
    Halt,
    /// `ApprovalPending`: waiting for a human (retryable; the retry is the next poll).
    ApprovalPending,
    /// `ApprovalExpired`: Core's or the SDK's approval deadline passed (non-retryable).
    ApprovalExpired,
    /// `ApprovalRejected`: a human rejected (non-retryable).
    ApprovalRejected,
    /// `GuardrailsValidationFailed`: guardrails refused the input or output (non-retryable).
    GuardrailsValidationFailed,
    /// `GovernanceAPIError`: OpenBox is not usable on this worker (non-retryable).
    ApiError,
    /// `GovernancePatch`: a BLOCK that names the input to restart with (non-retryable); the workflow
    /// continues as new with it.
    Patch,
    /// `GovernancePatchLimitExceeded`: a patch asked for more restarts than `max_patch_restarts`
    /// allows, or the restart counter in the memo is not one (non-retryable).
    PatchLimitExceeded,
    /// `GovernancePatchInputInvalid`: the patched input is not an input of the workflow
    /// (non-retryable): a restart with it could not even start.
    PatchInputInvalid,
}

impl FailureKind {
    /// The Temporal `ApplicationFailure` type.
    pub const fn type_name(self) -> &'static str {
        match self {
            FailureKind::Block => GOVERNANCE_BLOCK,
            FailureKind::Halt => GOVERNANCE_HALT,
            FailureKind::ApprovalPending => APPROVAL_PENDING,
            FailureKind::ApprovalExpired => APPROVAL_EXPIRED,
            FailureKind::ApprovalRejected => APPROVAL_REJECTED,
            FailureKind::GuardrailsValidationFailed => GUARDRAILS_VALIDATION_FAILED,
            FailureKind::ApiError => GOVERNANCE_API_ERROR,
            FailureKind::Patch => GOVERNANCE_PATCH,
            FailureKind::PatchLimitExceeded => GOVERNANCE_PATCH_LIMIT_EXCEEDED,
            FailureKind::PatchInputInvalid => GOVERNANCE_PATCH_INPUT_INVALID,
        }
    }

    /// Only a pending approval is retried.
    pub const fn retryable(self) -> bool {
        matches!(self, FailureKind::ApprovalPending)
    }

    /// The kind whose type string is `type_name`, if any.
    pub fn from_type_name(type_name: &str) -> Option<Self> {
        [
            FailureKind::Block,
            FailureKind::Halt,
            FailureKind::ApprovalPending,
            FailureKind::ApprovalExpired,
            FailureKind::ApprovalRejected,
            FailureKind::GuardrailsValidationFailed,
            FailureKind::ApiError,
            FailureKind::Patch,
            FailureKind::PatchLimitExceeded,
            FailureKind::PatchInputInvalid,
        ]
        .into_iter()
        .find(|k| k.type_name() == type_name)
    }
}

/// Governance stopped an activity or a workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GovernanceFailure {
    kind: FailureKind,
    message: String,
    retry_after: Option<Duration>,
    patch: Option<Box<PatchRequest>>,
}

impl fmt::Display for GovernanceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GovernanceFailure {}

fn or<'a>(reason: Option<&'a str>, default: &'a str) -> &'a str {
    reason.filter(|r| !r.is_empty()).unwrap_or(default)
}

impl GovernanceFailure {
    fn new(kind: FailureKind, message: String) -> Self {
        GovernanceFailure {
            kind,
            message,
            retry_after: None,
            patch: None,
        }
    }

    /// A BLOCK with a patch: the run restarts with `request.new_input` (the reference's message).
    pub(crate) fn patch(request: PatchRequest) -> Self {
        GovernanceFailure {
            patch: Some(Box::new(request)),
            ..Self::new(
                FailureKind::Patch,
                "Governance requested workflow restart".to_owned(),
            )
        }
    }

    pub(crate) fn patch_limit_exceeded(max_restarts: u32) -> Self {
        Self::new(
            FailureKind::PatchLimitExceeded,
            format!("Patch restart limit ({max_restarts}) exceeded"),
        )
    }

    pub(crate) fn patch_counter_invalid() -> Self {
        Self::new(
            FailureKind::PatchLimitExceeded,
            "Invalid patch restart counter in workflow memo".to_owned(),
        )
    }

    pub(crate) fn patch_input_invalid(detail: &str) -> Self {
        Self::new(
            FailureKind::PatchInputInvalid,
            format!("Governance patch input is not an input of this workflow: {detail}"),
        )
    }

    /// A BLOCK verdict on a lifecycle event.
    pub(crate) fn blocked(reason: Option<&str>) -> Self {
        Self::new(
            FailureKind::Block,
            format!(
                "Governance blocked: {}",
                or(reason, "Action blocked by governance policy")
            ),
        )
    }

    /// A BLOCK verdict on a signal.
    pub(crate) fn signal_blocked(reason: Option<&str>) -> Self {
        Self::new(
            FailureKind::Block,
            format!(
                "Governance blocked: {}",
                or(reason, "Workflow blocked by governance")
            ),
        )
    }

    /// A HALT verdict.
    pub(crate) fn halted(reason: Option<&str>) -> Self {
        Self::new(
            FailureKind::Halt,
            format!(
                "Governance HALT: {}",
                or(reason, "Workflow halted by governance policy")
            ),
        )
    }

    /// No verdict under `fail_closed` (or 401/403): a HALT naming the Core failure: `fail_closed` means one thing everywhere.
    pub(crate) fn core_unavailable(error: &GovernanceApiError) -> Self {
        Self::new(FailureKind::Halt, format!("Governance HALT: {error}"))
    }

    /// REQUIRE_APPROVAL: retried after `retry_after`, when the approval is polled.
    pub(crate) fn approval_required(reason: Option<&str>, retry_after: Duration) -> Self {
        GovernanceFailure {
            retry_after: Some(retry_after),
            ..Self::new(
                FailureKind::ApprovalPending,
                format!(
                    "Approval required: {}",
                    or(reason, "Activity requires human approval")
                ),
            )
        }
    }

    /// A poll said the approval is still pending.
    pub(crate) fn awaiting_approval(activity_type: &str, retry_after: Duration) -> Self {
        GovernanceFailure {
            retry_after: Some(retry_after),
            ..Self::new(
                FailureKind::ApprovalPending,
                format!("Awaiting approval for activity {activity_type}"),
            )
        }
    }

    /// A poll could not be made; the approval is treated as pending.
    pub(crate) fn approval_check_failed(retry_after: Duration) -> Self {
        GovernanceFailure {
            retry_after: Some(retry_after),
            ..Self::new(
                FailureKind::ApprovalPending,
                "Failed to check approval status, retrying...".to_owned(),
            )
        }
    }

    /// Core says the approval expired.
    pub(crate) fn approval_expired(activity: &ActivityIdentity) -> Self {
        Self::new(
            FailureKind::ApprovalExpired,
            format!(
                "Approval expired for activity {} (workflow_id={}, run_id={}, activity_id={})",
                activity.activity_type, activity.workflow_id, activity.run_id, activity.activity_id
            ),
        )
    }

    /// The SDK-side approval timeout passed.
    pub(crate) fn approval_timed_out(activity: &ActivityIdentity, waited: Duration) -> Self {
        Self::new(
            FailureKind::ApprovalExpired,
            format!(
                "Approval expired for activity {} (workflow_id={}, run_id={}, activity_id={}): no decision within {}s",
                activity.activity_type,
                activity.workflow_id,
                activity.run_id,
                activity.activity_id,
                waited.as_secs()
            ),
        )
    }

    /// A human rejected the activity.
    pub(crate) fn approval_rejected(reason: Option<&str>) -> Self {
        Self::new(
            FailureKind::ApprovalRejected,
            format!("Activity rejected: {}", or(reason, "Activity rejected")),
        )
    }

    /// REQUIRE_APPROVAL when approvals are off: blocked rather than silently allowed.
    pub(crate) fn approval_unavailable(reason: Option<&str>) -> Self {
        Self::new(
            FailureKind::Block,
            format!(
                "Governance blocked: approval required but human approval is disabled for this activity: {}",
                or(reason, "Activity requires human approval")
            ),
        )
    }

    /// Guardrails validation failed on the input (`output == false`) or the output.
    pub(crate) fn guardrails(reasons: &[&str], output: bool) -> Self {
        let text = if reasons.is_empty() {
            if output {
                "Guardrails output validation failed"
            } else {
                "Guardrails validation failed"
            }
            .to_owned()
        } else {
            reasons.join("; ")
        };
        Self::new(
            FailureKind::GuardrailsValidationFailed,
            format!("Guardrails validation failed: {text}"),
        )
    }

    /// Redacted values that do not fit the activity's types: the activity cannot run with them.
    pub(crate) fn redaction_unusable(detail: &str) -> Self {
        Self::new(
            FailureKind::GuardrailsValidationFailed,
            format!("Guardrails validation failed: the redacted value cannot be used: {detail}"),
        )
    }

    /// A hook's BLOCK (the operation did not happen, or its result is discarded).
    pub(crate) fn hook_blocked(reason: Option<&str>) -> Self {
        Self::new(
            FailureKind::Block,
            format!(
                "Hook governance block: {}",
                or(reason, "Blocked by governance")
            ),
        )
    }

    /// A hook's HALT.
    pub(crate) fn hook_halted(reason: Option<&str>) -> Self {
        Self::new(
            FailureKind::Halt,
            format!(
                "Hook governance halt: {}",
                or(reason, "Halted by governance")
            ),
        )
    }

    /// A hook's REQUIRE_APPROVAL where approvals are off: a block, as in the reference.
    pub(crate) fn hook_approval_unavailable(reason: Option<&str>) -> Self {
        Self::new(
            FailureKind::Block,
            format!(
                "Hook governance require_approval: {}",
                or(reason, "Approval required - blocked at hook level")
            ),
        )
    }

    /// An HTTP client followed a redirect itself, so the next hop was sent without a verdict.
    #[cfg(feature = "http")]
    pub(crate) fn ungoverned_redirect(from: &str, to: &str) -> Self {
        Self::new(
            FailureKind::ApiError,
            format!(
                "Governance API error: the HTTP client followed a redirect from {from} to {to} \
                 that OpenBox could not govern; build the reqwest client with \
                 redirect(reqwest::redirect::Policy::none()) (openbox::hooks::http::client does) \
                 so that the middleware governs every hop"
            ),
        )
    }

    /// The arguments of an activity cannot be reported and the options require them.
    pub(crate) fn input_not_captured(activity_type: &str) -> Self {
        Self::new(
            FailureKind::ApiError,
            format!(
                "OpenBox cannot report the arguments of activity {activity_type} and \
                 require_input_capture is on: put #[openbox::governed_activities] above its \
                 #[activities] impl, or describe it with OpenBoxPluginBuilder::describe_activity"
            ),
        )
    }

    /// OpenBox is not configured where a governed item runs.
    pub(crate) fn not_configured(detail: &str) -> Self {
        Self::new(
            FailureKind::ApiError,
            format!("OpenBox is not configured: {detail}"),
        )
    }

    /// The kind.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// The message (also the `Display`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The Temporal failure type.
    pub fn type_name(&self) -> &'static str {
        self.kind.type_name()
    }

    /// Delay before the retry, for `ApprovalPending`.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The restart a [`FailureKind::Patch`] failure asks for (its Temporal failure's details).
    pub(crate) fn patch_request(&self) -> Option<&PatchRequest> {
        self.patch.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_messages_and_types() {
        assert_eq!(
            GovernanceFailure::blocked(None).message(),
            "Governance blocked: Action blocked by governance policy"
        );
        assert_eq!(
            GovernanceFailure::blocked(Some("frozen")).to_string(),
            "Governance blocked: frozen"
        );
        assert_eq!(
            GovernanceFailure::halted(None).message(),
            "Governance HALT: Workflow halted by governance policy"
        );
        let api = GovernanceApiError::Status {
            status: 500,
            body: String::new(),
        };
        assert_eq!(
            GovernanceFailure::core_unavailable(&api).message(),
            "Governance HALT: Governance API error: HTTP 500"
        );
        assert_eq!(
            GovernanceFailure::core_unavailable(&api).type_name(),
            "GovernanceHalt"
        );
        let p = GovernanceFailure::approval_required(None, Duration::from_secs(2));
        assert_eq!(
            p.message(),
            "Approval required: Activity requires human approval"
        );
        assert_eq!(
            (p.type_name(), p.kind().retryable(), p.retry_after()),
            ("ApprovalPending", true, Some(Duration::from_secs(2)))
        );
        assert_eq!(
            GovernanceFailure::approval_rejected(None).message(),
            "Activity rejected: Activity rejected"
        );
        assert_eq!(
            GovernanceFailure::guardrails(&["a", "b"], false).message(),
            "Guardrails validation failed: a; b"
        );
        assert_eq!(
            GovernanceFailure::guardrails(&[], true).message(),
            "Guardrails validation failed: Guardrails output validation failed"
        );
        for kind in [
            FailureKind::Block,
            FailureKind::Halt,
            FailureKind::ApprovalExpired,
            FailureKind::ApiError,
        ] {
            assert!(!kind.retryable());
            assert_eq!(FailureKind::from_type_name(kind.type_name()), Some(kind));
        }
    }
}
