//! What the attribute macros declare, collected at link time so the interceptors know about
//! annotated items before any of their code runs.
//!
//! `#[governed_activities]` sits above `#[activities]` and declares each activity by its exact
//! definition: the type name Temporal registers it under and a codec of all its arguments. (A
//! method-level `#[governed_activity]` expands after Temporal's macro has renamed the method
//! and dropped its activity name, so it cannot identify its activity exactly and declares
//! nothing: its options reach the plugin through the impl's `#[governed_activities]`.)

use serde_json::Value;
use temporalio_common::data_converters::PayloadConverter;
use temporalio_common::protos::temporal::api::common::v1::Payload;
use temporalio_sdk::interceptors::ExecuteActivityInput;
use temporalio_sdk::workflow_interceptors::HandleSignalInput;

use super::codec::InputCodec;
use crate::governance::ActivitySettings;

/// Declared by `#[governed_activities]` for each activity of the impl.
#[derive(Debug)]
pub struct ActivityTypeDecl {
    /// The activity type, as its definition names it.
    pub activity_type: fn() -> &'static str,
    /// Capture and approval choices (from the method's `#[governed_activity]`, if any).
    pub settings: ActivitySettings,
    /// Conversion of all of its arguments.
    pub codec: InputCodec,
}

inventory::collect!(ActivityTypeDecl);

/// What the macros declared about the activity being executed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Declared {
    pub settings: ActivitySettings,
    pub codec: InputCodec,
}

/// The declaration of the activity being executed, if its impl is `#[governed_activities]`:
/// matched by its exact type name (and, as a check, by the type of its arguments).
pub(crate) fn activity_decl(activity_type: &str, input: &ExecuteActivityInput) -> Option<Declared> {
    inventory::iter::<ActivityTypeDecl>
        .into_iter()
        .find(|d| (d.activity_type)() == activity_type && (d.codec.accepts)(input))
        .map(|d| Declared {
            settings: d.settings,
            codec: d.codec,
        })
}

/// Declared by `#[governed_workflow]` for each signal handler.
#[derive(Debug)]
pub struct SignalDecl {
    /// The signal's name.
    pub name: &'static str,
    /// The decoded argument as JSON, `None` on a type mismatch.
    pub to_json: fn(&HandleSignalInput) -> Option<Value>,
}

/// Declared by `#[governed_workflow]`.
#[derive(Debug)]
pub struct WorkflowDecl {
    /// The workflow type name.
    pub workflow_type: fn() -> &'static str,
    /// Its signals.
    pub signals: &'static [SignalDecl],
    /// `Ok` when these arguments decode as the workflow's input (checked before a restart with
    /// a patched input, which could not even start otherwise).
    pub input_check: fn(&PayloadConverter, &[Payload]) -> Result<(), String>,
}

inventory::collect!(WorkflowDecl);

/// The declaration of a workflow type, if it is annotated.
pub(crate) fn workflow_decl(workflow_type: &str) -> Option<&'static WorkflowDecl> {
    inventory::iter::<WorkflowDecl>
        .into_iter()
        .find(|d| (d.workflow_type)() == workflow_type)
}
