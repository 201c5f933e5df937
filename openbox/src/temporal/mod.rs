//! Wiring into Temporal: the plugin, the interceptors, the carrier activity.

pub(crate) mod activity_interceptor;
pub(crate) mod carrier;
pub(crate) mod codec;
pub(crate) mod errors;
pub(crate) mod gate;
mod handoff;
mod plugin;
pub(crate) mod registry;
pub(crate) mod run;
pub(crate) mod session;
mod signal_codec;
pub(crate) mod typed;
pub(crate) mod workflow_interceptor;

pub use handoff::{HandoffError, HandoffVerdict, handoff};
pub use plugin::{OpenBoxPlugin, OpenBoxPluginBuilder};
