//! What the attribute macros expand to: re-exports only, no logic. Not a public API: no
//! stability promise.

pub use inventory;
pub use serde_json::Value;
pub use tracing;

pub use crate::governance::ActivitySettings;
pub use crate::temporal::codec::InputCodec;
pub use crate::temporal::gate::{ActivityGate, ActivitySpec};
pub use crate::temporal::registry::{ActivityTypeDecl, SignalDecl, WorkflowDecl};
pub use crate::temporal::typed::{
    GovernedValue, ReportedValue, activity_type_name, annotate, assert_governed_value,
    codec_of_definition, from_json, signal_json, to_json, workflow_input_check,
};

/// What `#[traced]` expands to.
pub mod traced {
    pub use crate::hooks::traced::{
        Capture, CaptureDebug, CaptureSerialize, ErrorText, ErrorTextDebug, ErrorTextDisplay,
        FromHookError, TracedCall, TracedSpec, stopped, stopped_panic,
    };
}
