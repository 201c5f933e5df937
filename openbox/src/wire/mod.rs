//! Serde types for every request and response of the OpenBox Core HTTP API, exactly as the
//! reference SDK 1.1.1 puts them on the wire.
//!
//! | Endpoint | Request | Response |
//! |---|---|---|
//! | `GET /api/v1/auth/validate` | — | status only |
//! | `POST /api/v1/governance/evaluate` | [`LifecycleEvent`] or [`HookEvaluation`] | [`EvaluateResponse`] |
//! | `POST /api/v1/governance/approval` | [`ApprovalRequest`] | [`ApprovalStatus`] |

mod constant;
mod event;
mod patch;
mod response;
mod span;
pub mod time;
mod verdict;

#[cfg(test)]
mod contract_examples;
#[cfg(test)]
mod properties;

pub use constant::{ActivityStartedTag, AlwaysNull, HookTrigger, WorkflowTelemetry};
pub use event::{
    ActivityCompleted, ActivityFailureInfo, ActivityIdentity, ActivityStarted, ActivityStatus,
    ErrorCause, Handoff, LifecycleEvent, SignalReceived, WorkflowCompleted, WorkflowErrorInfo,
    WorkflowFailed, WorkflowStarted,
};
pub use patch::{PATCH_SCHEMA_VERSION, Patch, PatchRequest};
pub use response::{
    ApprovalAnswer, ApprovalRequest, ApprovalStatus, EvaluateResponse, GuardrailReason,
    GuardrailsResult, GuardrailsTarget, ResponseError,
};
#[cfg(test)]
pub(crate) use span::SQL_READ_OPERATIONS;
pub use span::{
    DbQuerySpan, FileOperationSpan, FunctionCallSpan, HeaderMap, HookEvaluation, HookSpan,
    HookStage, HttpRequestSpan, Span, SpanCountOne, SpanKind, SpanStatus, StatusCode,
};
pub use verdict::{UnknownVerdict, Verdict};

/// A body that `POST /api/v1/governance/evaluate` accepts: a lifecycle event or a hook
/// evaluation. Sealed: Core understands nothing else.
pub trait EvaluateBody: serde::Serialize + Send + Sync + sealed::Sealed {
    /// `event_type` of the body, for logs.
    fn event_type(&self) -> &'static str;

    /// `true` for a hook evaluation (`hook_trigger: true`), for metrics.
    fn is_hook(&self) -> bool {
        false
    }

    /// Whether the operation evaluated can change something (see
    /// [`HookSpan::is_destructive`]); lifecycle events are not: the operations inside an
    /// activity are judged one by one.
    fn is_destructive(&self) -> bool {
        false
    }
}

impl EvaluateBody for LifecycleEvent {
    fn event_type(&self) -> &'static str {
        LifecycleEvent::event_type(self)
    }
}

impl EvaluateBody for HookEvaluation {
    fn event_type(&self) -> &'static str {
        ActivityStartedTag::VALUE
    }

    fn is_hook(&self) -> bool {
        true
    }

    fn is_destructive(&self) -> bool {
        self.spans[0].hook.is_destructive()
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::LifecycleEvent {}
    impl Sealed for super::HookEvaluation {}
}
