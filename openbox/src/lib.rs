//! OpenBox governance for Temporal workers.

pub mod client;
pub mod config;
pub mod error;
pub mod wire;

pub use client::{CoreClient, Decision};
pub use config::{ApiKey, ErrorPolicy, OpenBoxConfig, OpenBoxConfigBuilder};
pub use error::{ConfigError, GovernanceApiError, OpenBoxError};
