//! What the attribute macros expand to: re-exports only, no logic. Not a public API: no
//! stability promise.

/// The wire types and the raw Core client, for the workspace's own tests and benchmarks.
pub mod core {
    pub use crate::client::{CoreClient, Decision};
    pub use crate::wire::time;
    pub use crate::wire::*;
}

/// The attribute of a streamed response body the caller stopped reading (for the tests).
#[cfg(feature = "http")]
pub use crate::hooks::http::stream::PARTIAL_ATTRIBUTE;

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
