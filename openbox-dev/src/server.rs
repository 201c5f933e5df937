//! The accept loop. Connections are served by hyper directly (not `axum::serve`) for two
//! reasons: a fault can close a connection without an answer, and stopping the dev Core
//! closes every keep-alive connection at once, like a killed process.

use std::collections::HashSet;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::Limits;
use crate::guard::Guard;

use axum::Router;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::approvals::Approvals;
use crate::event_log::EventLog;
use crate::faults::FaultInjector;
use crate::governance::{self, Endpoint};
use crate::rules::RuleSet;

/// Returned by a handler to close the connection without an answer (fault injection).
#[derive(Debug)]
pub struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by fault injection")
    }
}

impl std::error::Error for ResetConnection {}

/// Everything the handlers share.
pub struct State {
    rules: RwLock<Arc<RuleSet>>,
    /// Where `reload` reads rules from.
    pub rules_path: Option<PathBuf>,
    /// Approval requests.
    pub approvals: Approvals,
    /// The event log.
    pub log: EventLog,
    /// Fault injection.
    pub faults: FaultInjector,
    api_keys: Option<HashSet<String>>,
    /// The agent whose signatures contract requests must carry, when configured.
    pub agent: Option<crate::signatures::AgentVerifier>,
    /// The Okta agent whose assertions contract requests must carry, when configured.
    pub okta: Option<crate::okta::OktaVerifier>,
    /// The workload identity offered, when configured.
    pub workload: Option<crate::workload::WorkloadVerifier>,
    /// Which identities are active, and the transitions pending.
    pub transitions: crate::transitions::Transitions,
    approval_expires_in: Option<Duration>,
    open_connections: AtomicUsize,
    /// Checks of the dev API.
    pub guard: Guard,
    /// Bounds on what clients can make the dev Core hold.
    pub limits: Limits,
    /// Live streams open now.
    pub stream_subscribers: AtomicUsize,
    /// Evaluations answered, by event id.
    pub deliveries: crate::deliveries::Deliveries,
}

/// Counts a connection as open until it is dropped.
struct OpenConnection(Arc<State>);

impl OpenConnection {
    fn new(state: Arc<State>) -> Self {
        state.open_connections.fetch_add(1, Ordering::Relaxed);
        OpenConnection(state)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Who may call what: the API keys of the contract endpoints, the agent whose signatures they
/// must carry (if any), and the dev API's guard.
pub(crate) struct Access {
    pub api_keys: Option<HashSet<String>>,
    pub agent: Option<crate::signatures::AgentVerifier>,
    pub okta: Option<crate::okta::OktaVerifier>,
    pub workload: Option<crate::workload::WorkloadVerifier>,
    pub transitions: crate::transitions::Transitions,
    pub guard: Guard,
}

impl State {
    pub(crate) fn new(
        rules: RuleSet,
        rules_path: Option<PathBuf>,
        log: EventLog,
        faults: FaultInjector,
        access: Access,
        approval_expires_in: Option<Duration>,
        limits: Limits,
    ) -> Self {
        let Access {
            api_keys,
            agent,
            okta,
            workload,
            transitions,
            guard,
        } = access;
        State {
            rules: RwLock::new(Arc::new(rules)),
            rules_path,
            approvals: Approvals::default(),
            log,
            faults,
            api_keys,
            agent,
            okta,
            workload,
            transitions,
            approval_expires_in,
            open_connections: AtomicUsize::new(0),
            guard,
            limits,
            stream_subscribers: AtomicUsize::new(0),
            deliveries: Default::default(),
        }
    }

    /// Client connections open now.
    pub fn open_connections(&self) -> usize {
        self.open_connections.load(Ordering::Relaxed)
    }

    /// The current rules.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the rules.
    pub fn set_rules(&self, rules: RuleSet) {
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rules);
    }

    /// Approval expiry: command line first, then the rules file's default.
    pub fn approval_expires_in(&self, rules: &RuleSet) -> Option<Duration> {
        self.approval_expires_in.or(rules.approval_expires_in)
    }

    /// Accepts `Bearer obx_(live|test)_…`, and only the configured keys if there are any.
    pub fn key_accepted(&self, header: Option<&HeaderValue>) -> bool {
        let Some(key) = bearer_key(header) else {
            return false;
        };
        let rest = key
            .strip_prefix("obx_test_")
            .or_else(|| key.strip_prefix("obx_live_"));
        let well_formed = rest
            .is_some_and(|r| !r.is_empty() && r.chars().all(|c| c.is_alphanumeric() || c == '_'));
        well_formed && self.api_keys.as_ref().is_none_or(|keys| keys.contains(key))
    }
}

/// The key of an `Authorization: Bearer …` header.
pub fn bearer_key(header: Option<&HeaderValue>) -> Option<&str> {
    header
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
}

/// Serves until `stop` is cancelled; then every connection is dropped.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    admin: Router,
    stop: CancellationToken,
) {
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if state.open_connections() >= state.limits.max_connections {
            // Closing at once is cheaper than serving slowly: a client retries, a flood does not
            // grow the dev Core.
            tracing::warn!(
                limit = state.limits.max_connections,
                "connection limit reached; closing a new connection"
            );
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let open = OpenConnection::new(state.clone());
        let admin = admin.clone();
        let stop = stop.clone();
        let served = state.clone();
        tokio::spawn(async move {
            let _open = open;
            let header_read_timeout = served.limits.header_read_timeout;
            let state = served;
            let service = service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                let admin = admin.clone();
                async move { route(&state, admin, req).await }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                _ = stop.cancelled() => {}
                result = conn => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended");
                    }
                }
            }
        });
    }
}

async fn route(
    state: &State,
    admin: Router,
    req: Request<Incoming>,
) -> Result<Response<axum::body::Body>, ResetConnection> {
    match Endpoint::of(&req) {
        Some(endpoint) => governance::handle(state, endpoint, req).await,
        None => {
            let path = req.uri().path();
            let asset = path == "/" || path.starts_with("/assets/");
            if let Err(refusal) =
                state
                    .guard
                    .check(req.method(), req.headers(), req.uri().query(), asset)
            {
                tracing::warn!(
                    path,
                    status = refusal.status.as_u16(),
                    reason = refusal.message,
                    "dev API request refused"
                );
                let body = serde_json::json!({ "error": refusal.message }).to_string();
                return Ok(Response::builder()
                    .status(refusal.status)
                    .header(hyper::header::CONTENT_TYPE, "application/json")
                    .body(axum::body::Body::from(body))
                    .unwrap_or_else(|_| Response::new(axum::body::Body::empty())));
            }
            let response: Result<_, Infallible> =
                admin.oneshot(req.map(axum::body::Body::new)).await;
            Ok(response.unwrap_or_else(|never| match never {}))
        }
    }
}
