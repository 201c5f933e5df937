#![warn(missing_docs)]
//! `openbox-dev`: a local development OpenBox Core.
//!
//! It speaks the three endpoints of the Core contract, answers evaluations from a rules file,
//! appends every request to a JSONL event log (API keys masked), keeps approval requests that
//! can be approved or rejected over HTTP or from the CLI, and can inject faults. It is the
//! default Core of this repository's examples and tests, embedded in-process:
//!
//! ```no_run
//! use openbox_dev::{DevCore, RuleSet};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let rules = RuleSet::from_toml_str(r#"
//!     [[rules]]
//!     verdict = "block"
//!     reason = "payments are frozen"
//!     match = { event_type = "ActivityStarted", activity_type = "charge" }
//! "#, "inline")?;
//! let core = DevCore::builder().rules(rules).event_log("events.jsonl").start().await?;
//! println!("OPENBOX_API_URL={}", core.url());
//! // … run a governed worker against core.url() …
//! for event in core.read_event_log().await? {
//!     println!("{} {:?} -> {:?}", event.path, event.event_type(), event.verdict());
//! }
//! # Ok(()) }
//! ```
//!
//! or as a program: `openbox-dev serve --port 8086 --rules rules.toml --events events.jsonl`.

mod admin;
pub mod approvals;
pub mod deliveries;
pub mod duration;
pub mod event_log;
pub mod faults;
pub mod governance;
pub mod guard;
pub mod okta;
pub mod rules;
#[cfg(test)]
mod rules_properties;
mod server;
pub mod signatures;
pub mod transitions;
mod web;
pub mod workload;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use approvals::{Approval, ApprovalKey, ApprovalState, Approvals, DecideError};
pub use event_log::{LoggedRequest, read_log_file};
pub use faults::Faults;
pub use rules::{RuleSet, RulesError};

use server::State;

/// Why the dev Core could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevCoreError {
    /// The address is taken or not available.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The event log file cannot be opened.
    #[error("cannot open event log {path}: {source}")]
    EventLog {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The rules file is unusable.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// The fault settings are out of range.
    #[error("invalid fault settings: {0}")]
    Faults(String),
    /// The agent DID or public key to verify signatures with is unusable.
    #[error("invalid agent for signature checks: {0}")]
    Agent(String),
    /// A non-loopback address without an admin key: anyone who can reach the dev Core could
    /// grant approvals and read every logged request.
    #[error(
        "refusing to listen on {addr} without an admin key: the dev API (approvals, rules, faults, events) would be open to the network; set one (--admin-key / DevCoreBuilder::admin_key) or listen on a loopback address"
    )]
    InsecureBind {
        /// The address.
        addr: SocketAddr,
    },
}

/// Bounds that keep a dev Core left running healthy whatever its clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body read (2 MiB: Temporal's own default payload limit, so any
    /// activity input Temporal accepts fits).
    pub max_body_bytes: usize,
    /// Time a client has to send a request's headers before its connection is closed.
    pub header_read_timeout: Duration,
    /// Client connections served at once; more are closed at once.
    pub max_connections: usize,
    /// Live streams (`/api/dev/stream`) served at once; more get 503.
    pub max_stream_subscribers: usize,
    /// Bytes of request and answer bodies kept in the in-memory event window.
    pub keep_event_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 2 << 20,
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_stream_subscribers: 32,
            keep_event_bytes: event_log::DEFAULT_KEEP_BYTES,
        }
    }
}

/// Settings of a dev Core; see [`DevCore::builder`].
#[derive(Debug, Clone)]
pub struct DevCoreBuilder {
    addr: SocketAddr,
    rules: RuleSet,
    rules_path: Option<PathBuf>,
    event_log: Option<PathBuf>,
    keep_events: usize,
    faults: Faults,
    api_keys: Option<HashSet<String>>,
    approval_expires_in: Option<Duration>,
    allowed_hosts: Vec<String>,
    admin_key: Option<String>,
    limits: Limits,
    agent: Option<(String, String)>,
    okta_agent: Option<okta::OktaAgentRegistration>,
    workload: Option<workload::WorkloadRegistration>,
    identities_pending: bool,
}

impl Default for DevCoreBuilder {
    fn default() -> Self {
        DevCoreBuilder {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            rules: RuleSet::allow_all(),
            rules_path: None,
            event_log: None,
            keep_events: 10_000,
            faults: Faults::default(),
            api_keys: None,
            approval_expires_in: None,
            allowed_hosts: Vec::new(),
            admin_key: None,
            limits: Limits::default(),
            agent: None,
            okta_agent: None,
            workload: None,
            identities_pending: false,
        }
    }
}

impl DevCoreBuilder {
    /// Listen address (default `127.0.0.1:0`: a free port).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Rules to answer with (default: allow everything).
    pub fn rules(mut self, rules: RuleSet) -> Self {
        self.rules = rules;
        self
    }

    /// Loads rules from a file now, and again on `POST /api/dev/rules/reload`.
    pub fn rules_file(mut self, path: impl Into<PathBuf>) -> Result<Self, RulesError> {
        let path = path.into();
        self.rules = RuleSet::load(&path)?;
        self.rules_path = Some(path);
        Ok(self)
    }

    /// Appends every request to this JSONL file.
    pub fn event_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.event_log = Some(path.into());
        self
    }

    /// How many recent requests are kept in memory (default 10 000; the file keeps all).
    pub fn keep_events(mut self, n: usize) -> Self {
        self.keep_events = n;
        self
    }

    /// Faults to inject from the start.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Accept only these API keys (default: any well-formed `obx_test_*` / `obx_live_*`).
    pub fn api_keys(mut self, keys: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.api_keys = Some(keys.into_iter().map(Into::into).collect());
        self
    }

    /// Approval requests expire after this long (overrides the rules file's default).
    pub fn approval_expires_in(mut self, d: Duration) -> Self {
        self.approval_expires_in = Some(d);
        self
    }

    /// Also answer the dev API and the web page under this host name (besides loopback names):
    /// for a dev Core reached by name from another machine.
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        self.allowed_hosts.push(host.into());
        self
    }

    /// Require this key (`X-OpenBox-Admin-Key`) on every call of the dev API. Needed to listen
    /// on a non-loopback address.
    pub fn admin_key(mut self, key: impl Into<String>) -> Self {
        self.admin_key = Some(key.into());
        self
    }

    /// Replaces the default [`Limits`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Verify signed requests: every contract request must be signed by the agent `did` whose
    /// Ed25519 public key is `public_key` (standard base64 of its 32 bytes); others are refused
    /// with 401 and Core's reason code (see the `signatures` module).
    pub fn agent(mut self, did: impl Into<String>, public_key: impl Into<String>) -> Self {
        self.agent = Some((did.into(), public_key.into()));
        self
    }

    /// Verify Okta AI-agent assertions (agent identity v2): contract requests must come on the
    /// `/api/v2` routes with an assertion of this agent that verifies; others are refused with
    /// 401 and Core's reason code (see the `okta` module).
    pub fn okta_agent(mut self, registration: okta::OktaAgentRegistration) -> Self {
        self.okta_agent = Some(registration);
        self
    }

    /// Offer the workload identity (agent identity v3) of this service account: the v3
    /// bootstrap document, a token endpoint, and the `/api/v3` routes for requests with a live
    /// token (see the `workload` module).
    pub fn workload(mut self, registration: workload::WorkloadRegistration) -> Self {
        self.workload = Some(registration);
        self
    }

    /// The Okta and workload identities registered are candidates, active only once a
    /// transition to them is proven (see the `transitions` module); until then, and after, the
    /// API key alone is accepted too, as during a rolling change of a fleet.
    pub fn identities_pending(mut self) -> Self {
        self.identities_pending = true;
        self
    }

    /// Binds and starts serving on the current Tokio runtime.
    pub async fn start(self) -> Result<DevCore, DevCoreError> {
        self.faults.validate().map_err(DevCoreError::Faults)?;
        let agent = self
            .agent
            .as_ref()
            .map(|(did, key)| signatures::AgentVerifier::new(did, key))
            .transpose()
            .map_err(DevCoreError::Agent)?;
        if self.agent.is_some() && self.okta_agent.is_some() {
            return Err(DevCoreError::Agent(
                "an agent DID and an Okta agent exclude each other: verify one identity".into(),
            ));
        }
        let okta = self
            .okta_agent
            .map(okta::OktaVerifier::new)
            .transpose()
            .map_err(DevCoreError::Agent)?;
        let workload = self
            .workload
            .map(workload::WorkloadVerifier::new)
            .transpose()
            .map_err(DevCoreError::Agent)?;
        let guard = guard::Guard::new(self.allowed_hosts, self.admin_key);
        if !self.addr.ip().is_loopback() && !guard.has_admin_key() {
            return Err(DevCoreError::InsecureBind { addr: self.addr });
        }
        let listener = TcpListener::bind(self.addr)
            .await
            .map_err(|source| DevCoreError::Bind {
                addr: self.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| DevCoreError::Bind {
            addr: self.addr,
            source,
        })?;
        let log = event_log::EventLog::bounded(
            self.event_log.as_deref(),
            self.keep_events,
            self.limits.keep_event_bytes,
        )
        .map_err(|source| DevCoreError::EventLog {
            path: self.event_log.clone().unwrap_or_default(),
            source,
        })?;
        let state = Arc::new(State::new(
            self.rules,
            self.rules_path,
            log,
            faults::FaultInjector::new(self.faults),
            server::Access {
                api_keys: self.api_keys,
                agent,
                okta,
                workload,
                transitions: transitions::Transitions::new(self.identities_pending),
                guard,
            },
            self.approval_expires_in,
            self.limits,
        ));
        let stop = CancellationToken::new();
        let router = admin::router(state.clone());
        let task = tokio::spawn(server::serve(listener, state.clone(), router, stop.clone()));
        tracing::info!(%addr, "openbox-dev listening");
        Ok(DevCore {
            addr,
            state,
            stop,
            task: Some(task),
        })
    }
}

/// A running dev Core. Dropping it stops it (every connection is closed at once).
pub struct DevCore {
    addr: SocketAddr,
    state: Arc<State>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl DevCore {
    /// Starts configuring a dev Core.
    pub fn builder() -> DevCoreBuilder {
        DevCoreBuilder::default()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`: the value for `OPENBOX_API_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Approval requests.
    pub fn approvals(&self) -> &Approvals {
        &self.state.approvals
    }

    /// The requests still in memory, oldest first.
    pub fn events(&self) -> Vec<LoggedRequest> {
        self.state.log.recent(0, usize::MAX)
    }

    /// Every request as it is logged (for live views such as the demo's decision printer).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<LoggedRequest> {
        self.state.log.subscribe()
    }

    /// Approval requests as they are opened and decided.
    pub fn subscribe_approvals(&self) -> tokio::sync::broadcast::Receiver<Approval> {
        self.state.approvals.subscribe()
    }

    /// Client connections open now (keep-alive connections included).
    pub fn open_connections(&self) -> usize {
        self.state.open_connections()
    }

    /// How many requests arrived so far.
    pub fn request_count(&self) -> u64 {
        self.state.log.len()
    }

    /// The event log as written to its file (everything), or the in-memory window when the
    /// dev Core has no file.
    pub async fn read_event_log(&self) -> std::io::Result<Vec<LoggedRequest>> {
        self.state.log.flush().await;
        match self.state.log.path() {
            Some(path) => read_log_file(path),
            None => Ok(self.events()),
        }
    }

    /// Replaces the rules.
    pub fn set_rules(&self, rules: RuleSet) {
        self.state.set_rules(rules);
    }

    /// Prepares an identity transition (as an operator does at Core): its id and challenge.
    pub fn prepare_transition(
        &self,
        to: transitions::TransitionTarget,
    ) -> transitions::PreparedTransition {
        self.state.transitions.prepare(to)
    }

    /// Workload tokens issued so far (one per exchange at the token endpoint).
    pub fn workload_token_exchanges(&self) -> u64 {
        self.state.workload.as_ref().map_or(0, |w| w.exchanges())
    }

    /// Replaces the fault settings.
    pub fn set_faults(&self, faults: Faults) -> Result<(), DevCoreError> {
        self.state.faults.set(faults).map_err(DevCoreError::Faults)
    }

    /// Stops at once, like a killed process: no more connections, open ones closed. The value
    /// stays usable for reading what was logged.
    pub fn kill(&self) {
        self.stop.cancel();
    }

    /// Stops accepting and closes every connection, like a killed process; the event log is
    /// flushed first.
    pub async fn stop(mut self) {
        self.state.log.flush().await;
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for DevCore {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
