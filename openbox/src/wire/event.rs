//! The six lifecycle event bodies of `POST /api/v1/governance/evaluate`.
//!
//! `hook_trigger` is deliberately not a field of any of these types: Core's rules match
//! lifecycle events on the key being **absent**, so it must never be sent, not even as `false`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::constant::WorkflowTelemetry;
use super::span::Span;

/// The identity of one activity attempt, shared by ActivityStarted, ActivityCompleted and every
/// hook evaluation the attempt makes (hence `Arc`: hooks copy a pointer, not seven strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityIdentity {
    /// Temporal workflow id.
    pub workflow_id: String,
    /// Temporal run id of the workflow.
    pub run_id: String,
    /// Workflow type name.
    pub workflow_type: String,
    /// Activity id, unique within the run.
    pub activity_id: String,
    /// Activity type name (the name policies are written against).
    pub activity_type: String,
    /// Task queue the activity was scheduled on.
    pub task_queue: String,
    /// 1-based Temporal attempt number.
    pub attempt: u32,
    /// The multi-agent session the workflow belongs to (omitted when it has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_agent_session_id: Option<String>,
}

/// Every lifecycle event Core evaluates. Serialized with `event_type` as the tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type")]
pub enum LifecycleEvent {
    /// Before the workflow's run function starts.
    WorkflowStarted(WorkflowStarted),
    /// After the run function returned successfully.
    WorkflowCompleted(WorkflowCompleted),
    /// After the run function failed.
    WorkflowFailed(WorkflowFailed),
    /// Before a signal handler runs.
    SignalReceived(SignalReceived),
    /// Before an activity body runs.
    ActivityStarted(ActivityStarted),
    /// After an activity body finished (successfully or not).
    ActivityCompleted(ActivityCompleted),
    /// One agent of a multi-agent session hands the work to the next (sent from workflow code).
    Handoff(Handoff),
}

impl LifecycleEvent {
    /// Every `event_type` a lifecycle event is sent with.
    pub const EVENT_TYPES: [&'static str; 7] = [
        "WorkflowStarted",
        "WorkflowCompleted",
        "WorkflowFailed",
        "SignalReceived",
        "ActivityStarted",
        "ActivityCompleted",
        "Handoff",
    ];

    /// The `event_type` string this event is sent with (one of [`Self::EVENT_TYPES`]).
    pub fn event_type(&self) -> &'static str {
        match self {
            LifecycleEvent::WorkflowStarted(_) => "WorkflowStarted",
            LifecycleEvent::WorkflowCompleted(_) => "WorkflowCompleted",
            LifecycleEvent::WorkflowFailed(_) => "WorkflowFailed",
            LifecycleEvent::SignalReceived(_) => "SignalReceived",
            LifecycleEvent::ActivityStarted(_) => "ActivityStarted",
            LifecycleEvent::ActivityCompleted(_) => "ActivityCompleted",
            LifecycleEvent::Handoff(_) => "Handoff",
        }
    }
}

/// `Handoff`: exactly the reference's body — no workflow or run id (Core groups by session) and
/// no receiving agent (Core knows it from the signed identity of whoever evaluates next).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// The DID of the agent handing off.
    pub from_agent_did: String,
    /// The session the agents share.
    pub multi_agent_session_id: String,
    /// Always `workflow-telemetry`.
    pub source: WorkflowTelemetry,
    /// When the event happened (`2026-11-24T02:58:37.635Z`).
    pub timestamp: String,
}

/// `WorkflowStarted`: the run's identity and its arguments; no parent id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowStarted {
    /// The workflow's arguments, one JSON value each (`[]` without arguments). `None` only in
    /// carrier inputs recorded before the field existed: such an event is sent as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_input: Option<Vec<Value>>,
    /// Temporal run id.
    pub run_id: String,
    /// Always `workflow-telemetry`.
    pub source: WorkflowTelemetry,
    /// Task queue of the workflow.
    pub task_queue: String,
    /// Temporal workflow id.
    pub workflow_id: String,
    /// Workflow type name.
    pub workflow_type: String,
    /// The multi-agent session the workflow belongs to (omitted when it has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_agent_session_id: Option<String>,
    /// When the event happened (`2026-11-24T02:58:37.635Z`).
    pub timestamp: String,
}

/// `WorkflowCompleted`: carries the workflow's return value; no `task_queue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowCompleted {
    /// Temporal run id.
    pub run_id: String,
    /// Always `workflow-telemetry`.
    pub source: WorkflowTelemetry,
    /// Temporal workflow id.
    pub workflow_id: String,
    /// The workflow's return value as JSON (`null` for unit).
    pub workflow_output: Value,
    /// Workflow type name.
    pub workflow_type: String,
    /// The multi-agent session the workflow belongs to (omitted when it has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_agent_session_id: Option<String>,
    /// When the event happened (`2026-11-24T02:58:37.635Z`).
    pub timestamp: String,
}

/// `WorkflowFailed`: carries the error chain; no `task_queue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowFailed {
    /// What failed, with up to two levels of causes.
    pub error: WorkflowErrorInfo,
    /// Temporal run id.
    pub run_id: String,
    /// Always `workflow-telemetry`.
    pub source: WorkflowTelemetry,
    /// Temporal workflow id.
    pub workflow_id: String,
    /// Workflow type name.
    pub workflow_type: String,
    /// The multi-agent session the workflow belongs to (omitted when it has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_agent_session_id: Option<String>,
    /// When the event happened (`2026-11-24T02:58:37.635Z`).
    pub timestamp: String,
}

/// The `error` object of WorkflowFailed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowErrorInfo {
    /// The immediate cause, present iff the error has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<ErrorCause>,
    /// Full, untruncated message.
    pub message: String,
    /// The cause's cause, present iff there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<ErrorCause>,
    /// Error class (`ActivityError`, `ApplicationError`, …).
    #[serde(rename = "type")]
    pub error_type: String,
}

/// One level of a WorkflowFailed error chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCause {
    /// The application failure's `type` string (`GovernanceBlock`, …) when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// `"<error_type>: <message>"` for an application failure (the message alone otherwise), at
    /// most [`ErrorCause::MAX_MESSAGE_CHARS`] characters.
    pub message: String,
    /// Whether the failure was non-retryable, when known (only on `cause`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_retryable: Option<bool>,
    /// Error class.
    #[serde(rename = "type")]
    pub cause_type: String,
}

impl ErrorCause {
    /// The reference truncates cause messages to 500 characters.
    pub const MAX_MESSAGE_CHARS: usize = 500;
}

/// `SignalReceived`: sent before the handler runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalReceived {
    /// Temporal run id.
    pub run_id: String,
    /// The decoded handler arguments (Rust signals take one input: a one-element array).
    pub signal_args: Vec<Value>,
    /// Signal name.
    pub signal_name: String,
    /// Always `workflow-telemetry`.
    pub source: WorkflowTelemetry,
    /// Task queue of the workflow.
    pub task_queue: String,
    /// Temporal workflow id.
    pub workflow_id: String,
    /// Workflow type name.
    pub workflow_type: String,
    /// The multi-agent session the workflow belongs to (omitted when it has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_agent_session_id: Option<String>,
    /// When the event happened (`2026-11-24T02:58:37.635Z`).
    pub timestamp: String,
}

/// `ActivityStarted`: sent before the activity body runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityStarted {
    /// Always `workflow-telemetry`.
    pub source: WorkflowTelemetry,
    /// Which activity attempt this is.
    #[serde(flatten)]
    pub activity: Arc<ActivityIdentity>,
    /// When the event happened (`2026-11-24T02:58:37.635Z`).
    pub timestamp: String,
    /// One JSON value per positional activity argument (`[]` without arguments).
    pub activity_input: Arc<Vec<Value>>,
}

/// `status` of ActivityCompleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityStatus {
    /// The activity returned a value.
    Completed,
    /// The activity failed (reported too, with `error`).
    Failed,
}

/// `error` of a failed ActivityCompleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityFailureInfo {
    /// Failure type (the application failure type, e.g. `GovernanceBlock`, or the Rust error kind).
    #[serde(rename = "type")]
    pub error_type: String,
    /// Failure message.
    pub message: String,
}

/// `ActivityCompleted`: sent after the activity body finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityCompleted {
    /// Always `workflow-telemetry`.
    pub source: WorkflowTelemetry,
    /// Which activity attempt this is.
    #[serde(flatten)]
    pub activity: Arc<ActivityIdentity>,
    /// When the event happened (`2026-11-24T02:58:37.635Z`).
    pub timestamp: String,
    /// `completed` or `failed`.
    pub status: ActivityStatus,
    /// Float Unix seconds, taken before ActivityStarted was sent.
    pub start_time: f64,
    /// Float Unix seconds, taken after the body returned.
    pub end_time: f64,
    /// `(end_time - start_time) * 1000` (includes governance overhead, as the reference does).
    pub duration_ms: f64,
    /// `spans.len()`.
    pub span_count: usize,
    /// The operations the activity made (http, db, file, function), one span each.
    pub spans: Vec<Span>,
    /// The input as Core last saw it (redacted if guardrails redacted it).
    pub activity_input: Arc<Vec<Value>>,
    /// The activity's return value (`null` when it failed).
    pub activity_output: Value,
    /// Why it failed (`null` when it completed).
    pub error: Option<ActivityFailureInfo>,
}
