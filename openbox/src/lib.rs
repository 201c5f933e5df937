#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
//! OpenBox governance for Temporal workers written with `temporalio-sdk`.
//!
//! Every workflow start, signal, completion and failure, every activity start and completion,
//! and every operation an activity makes through a governed handle — an HTTP request, a SQL
//! statement, a redis command, a file operation, a `#[traced]` function call — is reported to
//! OpenBox Core, and Core's verdict takes effect: ALLOW, CONSTRAIN, REQUIRE_APPROVAL (a human
//! decides), BLOCK, HALT — with guardrails that redact an activity's input before it runs and its
//! output before the workflow sees it. On the wire it speaks the contract of OpenBox's Python
//! SDK (the 1.1.1 events plus the 2.x additions: a run's input, multi-agent sessions and
//! handoffs, BLOCK with a patch, signed requests); [`guide::differences`] lists where it
//! deliberately differs.
//!
//! # The plugin: every workflow and activity of a worker
//!
//! ```no_run
//! use openbox::{OpenBoxConfig, OpenBoxPlugin};
//! use temporalio_sdk::WorkerOptions;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // OPENBOX_API_URL and OPENBOX_API_KEY (and the other settings of guide::configuration)
//! let plugin = OpenBoxPlugin::builder()
//!     .config(OpenBoxConfig::builder().build()?)
//!     .build() // checks the API key with Core
//!     .await?;
//! let options = WorkerOptions::new("payments")
//!     .worker_plugin(plugin)
//!     // .register_activities(…).register_workflow::<…>()?
//!     .build();
//! # let _ = options; Ok(()) }
//! ```
//!
//! The plugin registers the carrier activity `send_governance_event` (workflow code cannot do
//! I/O, so workflow events travel through it and its recorded result replays) and two
//! interceptors. Activity arguments reach it decoded and typed: common single types (strings,
//! numbers, `serde_json::Value`, …) are reported by themselves; for any other signature, put
//! [`governed_activities`] on the `#[activities]` impl or describe the activity with
//! [`OpenBoxPluginBuilder::describe_activity`].
//!
//! # Attributes: chosen items, and functions
//!
//! [`governed_activity`], [`governed_activities`] and [`governed_workflow`] mark items; with
//! `.options(|o| o.only_annotated())` only those are governed, and without the plugin
//! `#[governed_activity]` governs by itself through a [`Governor`] installed globally.
//! [`traced`] makes any function a governed operation inside the activity that calls it.
//!
//! # Operations inside activities
//!
//! [`hooks`] wraps the libraries activities act through — `reqwest` (middleware), any tower
//! HTTP client such as hyper-util's or a tonic gRPC channel (a layer, feature `tower`), MCP
//! through rmcp's streamable-HTTP client (feature `mcp`), LLM clients (rig on the middleware
//! client; async-openai through feature `async-openai`), `sqlx`, diesel, SeaORM,
//! `tokio-postgres`, `rusqlite`, `redis`, files ([`fs`]), commands (`process`), message
//! publishes to RabbitMQ (lapin), NATS (async-nats, JetStream too) and MQTT (rumqttc) — each
//! behind a cargo feature. Each operation is evaluated at `started` (a BLOCK means it does not
//! happen) and at `completed` (a BLOCK fails the activity); SQL is judged by what it does, read
//! by a parser.
//!
//! # When Core gives no verdict
//!
//! The [`ErrorPolicy`] decides: `FailOpen` proceeds and counts the lost event, `FailClosed` stops
//! the operation with a non-retryable `GovernanceHalt`, `FailClosedDestructive` stops only what
//! can change something; a 401/403 always stops it. A circuit breaker keeps a dead Core from
//! costing every operation a timeout, and an optional spool delivers what Core missed once it is
//! back ([`guide::outages`]).
//!
//! # The manual
//!
//! [`guide`] has a page per topic — settings, verdicts, hooks, what is governed, outages, observe
//! mode, signed requests, differences from the reference — and [`metrics`] the metrics.

mod blocking;
mod client;
mod config;
mod governance;
pub mod guide;
pub mod hooks;
mod ids;
pub mod metrics;
mod secrets;
mod temporal;
mod text;
mod wire;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

#[cfg(any(feature = "okta-identity", feature = "workload-identity"))]
pub use client::IdentityTransition;
pub use client::{
    BreakerState, GovernanceApiError, OpenBoxError, SigningRejection, SpoolError, SpoolStats,
};
#[cfg(feature = "okta-identity")]
pub use config::OktaAgentIdentity;
pub use config::{
    AgentIdentity, BreakerSettings, ConfigError, ErrorPolicy, IdentityMethod, OpenBoxConfig,
    OpenBoxConfigBuilder, SpoolSettings,
};
pub use governance::failure::{FailureKind, GovernanceFailure};
pub use governance::options::{
    CarrierMode, Enforcement, GovernanceOptions, GovernanceOptionsBuilder, HookCompletion, HookKind,
};
pub use governance::scope::{ActivityScope, spawn};
pub use governance::{Governor, StatsSnapshot};
pub use hooks::HookError;
/// Governed files, mirroring `tokio::fs` and `std::fs` (also at `openbox::hooks::fs`).
pub use hooks::fs;
#[cfg(feature = "process")]
#[cfg_attr(docsrs, doc(cfg(feature = "process")))]
/// Governed commands, mirroring `tokio::process` and `std::process` (also at
/// `openbox::hooks::process`).
pub use hooks::process;
pub use temporal::{HandoffError, HandoffVerdict, OpenBoxPlugin, OpenBoxPluginBuilder, handoff};
pub use wire::ResponseError;

#[doc = include_str!("../docs/governed_activities.md")]
pub use openbox_macros::governed_activities;
#[doc = include_str!("../docs/governed_activity.md")]
pub use openbox_macros::governed_activity;
#[doc = include_str!("../docs/governed_workflow.md")]
pub use openbox_macros::governed_workflow;
#[doc = include_str!("../docs/traced.md")]
pub use openbox_macros::traced;
