//! Wiring into Temporal: the plugin, the interceptors, the carrier activity.

pub mod activity_interceptor;
pub mod carrier;
pub mod codec;
pub(crate) mod errors;
pub mod plugin;
pub mod registry;
mod signal_codec;
pub mod workflow_interceptor;

pub use activity_interceptor::OpenBoxActivityInterceptor;
pub use carrier::{CarrierInput, CarrierOutcome, GovernanceActivities};
pub use plugin::{OpenBoxPlugin, OpenBoxPluginBuilder};
pub use workflow_interceptor::OpenBoxWorkflowInterceptor;
