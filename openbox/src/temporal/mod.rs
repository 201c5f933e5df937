//! Wiring into Temporal: the plugin, the interceptors, the carrier activity.

pub mod activity_interceptor;
pub mod carrier;
pub(crate) mod codec;
pub(crate) mod errors;
pub(crate) mod gate;
mod handoff;
pub mod plugin;
pub(crate) mod registry;
pub(crate) mod run;
pub mod session;
mod signal_codec;
pub(crate) mod typed;
pub mod workflow_interceptor;

pub use activity_interceptor::OpenBoxActivityInterceptor;
pub use carrier::{CarrierInput, CarrierOutcome, GovernanceActivities};
pub use handoff::{HandoffError, HandoffVerdict, handoff};
pub use plugin::{OpenBoxPlugin, OpenBoxPluginBuilder};
pub use workflow_interceptor::OpenBoxWorkflowInterceptor;
