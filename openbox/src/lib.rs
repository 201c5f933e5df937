#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
//! OpenBox governance for Temporal workers written with `temporalio-sdk`.
//!
//! Every workflow start, signal, completion and failure, and every activity start and
//! completion, is sent to OpenBox Core, whose verdict takes effect: ALLOW, CONSTRAIN,
//! REQUIRE_APPROVAL (a human decides), BLOCK, HALT — with guardrails that redact an activity's
//! input before it runs and its output before the workflow sees it. On the wire this crate is
//! indistinguishable from the reference Python SDK (`openbox-temporal-sdk-python` 1.1.1).
//!
//! # Zero code: the plugin
//!
//! ```no_run
//! use openbox::{OpenBoxConfig, OpenBoxPlugin};
//! use temporalio_sdk::WorkerOptions;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // OPENBOX_API_URL, OPENBOX_API_KEY, OPENBOX_TIMEOUT_SECONDS, OPENBOX_ON_API_ERROR
//! let plugin = OpenBoxPlugin::builder().config(OpenBoxConfig::builder().build()?).build().await?;
//! let options = WorkerOptions::new("payments")
//!     .worker_plugin(plugin)
//!     // .register_activities(…).register_workflow::<…>()?
//!     .build();
//! # let _ = options; Ok(()) }
//! ```
//!
//! The plugin checks the API key at start-up, registers the carrier activity
//! `send_governance_event` and two interceptors, and governs every workflow and activity of the
//! worker. Activity arguments reach its interceptor already decoded and typed; it reports common
//! types (strings, numbers, `serde_json::Value`, …) by itself, and struct arguments when the
//! activity is annotated with [`governed_activity`] or described with
//! [`OpenBoxPluginBuilder::describe_activity`].
//!
//! # Opt-in per item: the attributes
//!
//! [`governed_activity`] and [`governed_workflow`] mark single items. With
//! `OpenBoxPlugin::builder().options(|o| o.only_annotated())` only those are governed; without the plugin,
//! `#[governed_activity]` governs by itself with a [`Governor`] installed globally.
//!
//! # What verdicts do
//!
//! | Event | BLOCK | HALT |
//! |---|---|---|
//! | ActivityStarted | the body does not run; `GovernanceBlock` | the body does not run; the run fails with `GovernanceHalt` |
//! | ActivityCompleted | the result is discarded; `GovernanceBlock` | the run fails with `GovernanceHalt` |
//! | WorkflowStarted | the run fails before user code; `GovernanceBlock` | the run fails; `GovernanceHalt` |
//! | SignalReceived | the handler does not run | the run fails; `GovernanceHalt` |
//! | WorkflowCompleted | the run fails instead of completing; `GovernanceBlock` | the run fails; `GovernanceHalt` |
//!
//! HALT fails the run (non-retryable `GovernanceHalt`) rather than terminating it through the
//! client: the decision is recorded in history, so it replays identically, and workflow code
//! cannot swallow it. REQUIRE_APPROVAL on an activity fails the attempt with a retryable
//! `ApprovalPending`; the next attempt polls Core and runs once approved (see
//! [`governance::failure`] for every failure type). When Core gives no verdict, the
//! [`ErrorPolicy`] decides: `FailOpen` proceeds (and counts the lost event), `FailClosed` stops
//! the operation with `GovernanceHalt`; a 401/403 always stops it.
//!
//! # Modules
//!
//! * [`config`], [`client`], [`wire`] — talking to Core;
//! * [`governance`] — the lifecycle, verdicts, approvals, redaction, independent of Temporal;
//! * [`temporal`] — the plugin, the interceptors and the carrier activity.

mod blocking;
pub mod client;
pub mod config;
pub mod error;
pub mod governance;
pub mod hooks;
mod ids;
pub mod secrets;
pub mod temporal;
mod text;
pub mod wire;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use client::signing::AgentIdentity;
pub use client::{CoreClient, Decision, SpoolSettings, SpoolStats};
pub use config::{ApiKey, ErrorPolicy, OpenBoxConfig, OpenBoxConfigBuilder};
pub use error::{ConfigError, GovernanceApiError, OpenBoxError, SigningRejection};
pub use governance::failure::{FailureKind, GovernanceFailure};
pub use governance::options::{
    CarrierMode, Enforcement, GovernanceOptions, GovernanceOptionsBuilder, HookCompletion, HookKind,
};
pub use governance::scope::{ActivityScope, spawn};
pub use governance::{ActivitySettings, GovernanceStats, Governor, StatsSnapshot};
/// Governed files (`openbox::hooks::fs`), mirroring `tokio::fs` and `std::fs`.
pub use hooks::fs;
pub use temporal::{HandoffError, HandoffVerdict, OpenBoxPlugin, OpenBoxPluginBuilder, handoff};

#[doc = include_str!("../docs/governed_activities.md")]
pub use openbox_macros::governed_activities;
#[doc = include_str!("../docs/governed_activity.md")]
pub use openbox_macros::governed_activity;
#[doc = include_str!("../docs/governed_workflow.md")]
pub use openbox_macros::governed_workflow;
#[doc = include_str!("../docs/traced.md")]
pub use openbox_macros::traced;
