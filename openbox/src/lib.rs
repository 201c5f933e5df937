//! OpenBox governance for Temporal workers.

pub mod client;
pub mod config;
pub mod error;
pub mod governance;
pub mod temporal;
pub mod wire;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use client::{CoreClient, Decision};
pub use config::{ApiKey, ErrorPolicy, OpenBoxConfig, OpenBoxConfigBuilder};
pub use error::{ConfigError, GovernanceApiError, OpenBoxError};
pub use governance::failure::{FailureKind, GovernanceFailure};
pub use governance::options::{CarrierMode, GovernanceOptions, GovernanceOptionsBuilder};
pub use governance::scope::{ActivityScope, spawn};
pub use governance::{ActivitySettings, Governor};
pub use temporal::{OpenBoxPlugin, OpenBoxPluginBuilder};

#[doc = include_str!("../docs/governed_activity.md")]
pub use openbox_macros::governed_activity;
#[doc = include_str!("../docs/governed_workflow.md")]
pub use openbox_macros::governed_workflow;
