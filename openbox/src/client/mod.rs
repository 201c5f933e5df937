//! The OpenBox Core client: the three endpoints over one pooled connection, and the error
//! policy that turns a failed call into a decision.

#[cfg(any(feature = "okta-identity", feature = "workload-identity"))]
mod assertions;
mod breaker;
mod error;
#[cfg(feature = "okta-identity")]
mod okta_bootstrap;
mod policy;
mod replay;
mod signing;
mod spool;
#[cfg(any(feature = "okta-identity", feature = "workload-identity"))]
mod transition;
mod transport;
mod wire_log;
#[cfg(feature = "workload-identity")]
mod workload;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};

#[cfg(feature = "okta-identity")]
pub use assertions::HEADER_ASSERTION;
pub use breaker::BreakerState;
pub use error::{GovernanceApiError, OpenBoxError, SigningRejection};
pub use policy::Decision;
pub use spool::{SpoolError, SpoolStats};
#[cfg(any(feature = "okta-identity", feature = "workload-identity"))]
pub use transition::IdentityTransition;
pub(crate) use transport::error_chain;
#[cfg(feature = "workload-identity")]
pub use workload::HEADER_WORKLOAD_TOKEN;

use crate::config::{ConfigError, OpenBoxConfig};
use crate::secrets::SensitiveNames;
use crate::wire::{
    ApprovalAnswer, ApprovalRequest, ApprovalStatus, EvaluateBody, EvaluateResponse, ResponseError,
};

/// Version sent in `User-Agent` and `X-OpenBox-SDK-Version`.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Path of the key check.
pub const VALIDATE_PATH: &str = "/api/v1/auth/validate";
/// Path of evaluations.
pub const EVALUATE_PATH: &str = "/api/v1/governance/evaluate";
/// Path of approval polls.
pub const APPROVAL_PATH: &str = "/api/v1/governance/approval";
/// Path of the key check with the Okta agent identity (agent identity v2).
pub const V2_VALIDATE_PATH: &str = "/api/v2/auth/validate";
/// Path of evaluations with the Okta agent identity.
pub const V2_EVALUATE_PATH: &str = "/api/v2/governance/evaluate";
/// Path of approval polls with the Okta agent identity.
pub const V2_APPROVAL_PATH: &str = "/api/v2/governance/approval";
/// Path of the key check with the workload identity (agent identity v3).
#[cfg(feature = "workload-identity")]
pub const V3_VALIDATE_PATH: &str = "/api/v3/auth/validate";
/// Path of evaluations with the workload identity.
#[cfg(feature = "workload-identity")]
pub const V3_EVALUATE_PATH: &str = "/api/v3/governance/evaluate";
/// Path of approval polls with the workload identity.
#[cfg(feature = "workload-identity")]
pub const V3_APPROVAL_PATH: &str = "/api/v3/governance/approval";

/// A contract endpoint, whose path depends on the identity a request is sent as.
#[derive(Debug, Clone, Copy)]
enum Route {
    Validate = 0,
    Evaluate = 1,
    Approval = 2,
}

/// The endpoints' URLs of one contract version, parsed once.
#[derive(Debug)]
struct Routes([reqwest::Url; 3]);

impl Routes {
    fn new(base: &str, paths: [&str; 3]) -> Result<Self, ConfigError> {
        let parse = |path: &str| {
            let url = format!("{base}{path}");
            reqwest::Url::parse(&url).map_err(|e| ConfigError::InvalidUrl {
                reason: e.to_string(),
                url,
            })
        };
        Ok(Routes([
            parse(paths[0])?,
            parse(paths[1])?,
            parse(paths[2])?,
        ]))
    }

    fn url(&self, route: Route) -> &reqwest::Url {
        &self.0[route as usize]
    }
}

/// The header marking an evaluation whose verdict the SDK observes but does not enforce.
pub const ENFORCEMENT_HEADER: &str = "x-openbox-enforcement";
/// The header naming an evaluation uniquely, sent when a spool is configured, so that Core can
/// tell a late delivery from a first one it already received (a timeout after Core answered).
pub const EVENT_ID_HEADER: &str = "x-openbox-event-id";
/// The header marking a spooled evaluation delivered after an outage: its verdict is recorded,
/// never enforced.
pub const DELIVERY_HEADER: &str = "x-openbox-delivery";

/// Larger answers are not a verdict; reading stops there instead of buffering them.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// How much of an error body is kept for logs.
const ERROR_BODY_CHARS: usize = 200;

/// A client of OpenBox Core. Cheap to clone: clones share one connection pool.
#[derive(Clone, Debug)]
pub struct CoreClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: OpenBoxConfig,
    http: reqwest::Client,
    breaker: breaker::Breaker,
    spool: Option<Arc<spool::Spool>>,
    replay: Arc<replay::Replay>,
    // Parsed once: a `&str` would be parsed again on every request.
    #[cfg(feature = "http")]
    base_url: reqwest::Url,
    /// The routes of requests sent with the API key alone or the DID signature (v1), and with
    /// the Okta identity (v2).
    routes: Routes,
    /// The routes while Core offers the workload identity.
    #[cfg(feature = "workload-identity")]
    v3_routes: Routes,
    #[cfg(feature = "workload-identity")]
    workload: Option<workload::Workload>,
    /// The Okta identity once known: configured, or fetched from Core once (single flight).
    #[cfg(feature = "okta-identity")]
    okta: tokio::sync::OnceCell<Arc<crate::config::OktaAgentIdentity>>,
}

impl CoreClient {
    /// Builds the client (no network traffic; see [`CoreClient::validate`]).
    pub fn new(config: OpenBoxConfig) -> Result<Self, OpenBoxError> {
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::try_from(format!("Bearer {}", config.api_key().expose()))
            .map_err(|_| ConfigError::InvalidApiKey)?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("OpenBox-SDK/", env!("CARGO_PKG_VERSION"))),
        );
        headers.insert(
            "x-openbox-sdk-version",
            HeaderValue::from_static(SDK_VERSION),
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let http = transport::build_http_client(&config, headers)?;
        #[cfg(feature = "http")]
        let base_url = reqwest::Url::parse(config.url()).map_err(|e| ConfigError::InvalidUrl {
            reason: e.to_string(),
            url: config.url().to_owned(),
        })?;
        // The identity picks the routes: Core refuses an assertion on a route of another version.
        #[cfg(feature = "okta-identity")]
        let (okta, okta_identity) = match config.okta() {
            Some(crate::config::OktaSource::Configured(identity)) => (
                true,
                tokio::sync::OnceCell::new_with(Some(identity.clone())),
            ),
            Some(crate::config::OktaSource::Bootstrap(_)) => (true, tokio::sync::OnceCell::new()),
            None => (false, tokio::sync::OnceCell::new()),
        };
        #[cfg(not(feature = "okta-identity"))]
        let okta = false;
        let paths = if okta {
            [V2_VALIDATE_PATH, V2_EVALUATE_PATH, V2_APPROVAL_PATH]
        } else {
            [VALIDATE_PATH, EVALUATE_PATH, APPROVAL_PATH]
        };
        #[cfg(feature = "workload-identity")]
        let workload = match config.workload_key() {
            // Its own client without default headers: the API key never reaches the identity
            // provider's token endpoint.
            Some(key) => Some(workload::Workload::new(
                key.clone(),
                transport::build_http_client(&config, HeaderMap::new())?,
            )),
            None => None,
        };
        Ok(CoreClient {
            inner: Arc::new(Inner {
                #[cfg(feature = "http")]
                base_url,
                routes: Routes::new(config.url(), paths)?,
                #[cfg(feature = "workload-identity")]
                v3_routes: Routes::new(
                    config.url(),
                    [V3_VALIDATE_PATH, V3_EVALUATE_PATH, V3_APPROVAL_PATH],
                )?,
                #[cfg(feature = "workload-identity")]
                workload,
                #[cfg(feature = "okta-identity")]
                okta: okta_identity,
                http,
                breaker: breaker::Breaker::new(config.circuit_breaker()),
                spool: match config.spool() {
                    Some(settings) => Some(Arc::new(spool::Spool::open(settings.clone())?)),
                    None => None,
                },
                replay: Arc::default(),
                config,
            }),
        })
    }

    /// Where the circuit breaker stands (see [`BreakerSettings`]).
    pub fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.state()
    }

    /// How many times the circuit breaker changed state.
    pub fn breaker_transitions(&self) -> u64 {
        self.inner.breaker.transitions()
    }

    /// What the spool holds and has done, when one is configured.
    pub fn spool_stats(&self) -> Option<SpoolStats> {
        self.inner.spool.as_ref().map(|s| {
            let (oldest_pending_age, drain_per_second) = self.inner.replay.backlog();
            SpoolStats {
                oldest_pending_age: oldest_pending_age.filter(|_| s.pending() > 0),
                drain_per_second,
                ..s.stats()
            }
        })
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &OpenBoxConfig {
        &self.inner.config
    }

    /// Core's URL, parsed once (the HTTP hook compares every request against it).
    #[cfg(feature = "http")]
    pub(crate) fn base_url(&self) -> &reqwest::Url {
        &self.inner.base_url
    }

    /// Checks the API key with `GET /api/v1/auth/validate` — `/api/v2/…`, signed, with the Okta
    /// agent identity (done once at worker start-up).
    ///
    /// 200 → `Ok`; 401/403 → [`OpenBoxError::Auth`]; anything else → [`OpenBoxError::Network`].
    pub async fn validate(&self) -> Result<(), OpenBoxError> {
        let url = self.config().url().to_owned();
        let (route_url, headers) = match self.signed("GET", Route::Validate, b"").await {
            Ok(signed) => signed,
            Err(GovernanceApiError::IdentityBootstrap(reason)) => {
                let option = if self.config().workload_identity() {
                    "workload_private_key"
                } else {
                    "okta_agent_private_key"
                };
                return Err(OpenBoxError::Config(ConfigError::InvalidOption {
                    option,
                    reason: format!("Core's identity bootstrap failed: {reason}"),
                }));
            }
            Err(source) => return Err(OpenBoxError::Network { url, source }),
        };
        let mut request = self.inner.http.get(route_url.clone());
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        let path = route_url.path();
        let answer = self.send_logged(path, Marks::default(), b"", request).await;
        self.after_answer(&answer, &headers).await;
        match answer {
            Ok((200, _)) => Ok(()),
            Ok((status @ (401 | 403), body)) => match self.signing_rejection(&body) {
                Some(rejection) => Err(OpenBoxError::SignatureRejected {
                    url,
                    status,
                    rejection,
                }),
                None => Err(OpenBoxError::Auth { url, status }),
            },
            Ok((status, body)) => Err(OpenBoxError::Network {
                url,
                source: self.status_error(status, &body),
            }),
            Err(source) => Err(OpenBoxError::Network { url, source }),
        }
    }

    /// Sends one evaluation and parses the verdict. Every failure — transport, timeout, HTTP
    /// status, garbage, unknown verdict — is a [`GovernanceApiError`]; see
    /// [`CoreClient::decide`] for applying the error policy.
    pub async fn evaluate<B: EvaluateBody + ?Sized>(
        &self,
        body: &B,
    ) -> Result<EvaluateResponse, GovernanceApiError> {
        self.evaluate_marked(body, false).await
    }

    /// [`CoreClient::evaluate`], marked `X-OpenBox-Enforcement: observe` when `observe`.
    async fn evaluate_marked<B: EvaluateBody + ?Sized>(
        &self,
        body: &B,
        observe: bool,
    ) -> Result<EvaluateResponse, GovernanceApiError> {
        let json = self.encode(body)?;
        let marks = Marks {
            observe,
            event_id: None,
            late: false,
        };
        self.evaluate_encoded(json.into(), marks).await
    }

    async fn evaluate_encoded(
        &self,
        json: Bytes,
        marks: Marks<'_>,
    ) -> Result<EvaluateResponse, GovernanceApiError> {
        let (status, bytes) = self.post(Route::Evaluate, json, marks).await?;
        self.check_status(status, &bytes)?;
        Ok(EvaluateResponse::from_slice(&bytes)?)
    }

    /// The body as sent: compact JSON with every `redact_keys` value masked.
    fn encode<B: EvaluateBody + ?Sized>(&self, body: &B) -> Result<Vec<u8>, GovernanceApiError> {
        let encode = |e: serde_json::Error| GovernanceApiError::Encode(e.to_string());
        let names = self.config().sensitive_names();
        if names.keys().next().is_none() {
            return serde_json::to_vec(body).map_err(encode);
        }
        let mut value = serde_json::to_value(body).map_err(encode)?;
        SensitiveNames::mask_json(&mut value, &|key| names.is_listed(key));
        serde_json::to_vec(&value).map_err(encode)
    }

    /// [`CoreClient::evaluate`], then the error policy: a verdict, or what to do without one.
    pub async fn decide<B: EvaluateBody + ?Sized>(&self, body: &B) -> Decision {
        self.decide_marked(body, false).await
    }

    /// [`CoreClient::decide`], of an evaluation whose verdict will only be observed when
    /// `observe`. With a spool, an event that goes ahead without Core's answer because Core is
    /// unavailable is spooled before the decision is returned.
    pub(crate) async fn decide_marked<B: EvaluateBody + ?Sized>(
        &self,
        body: &B,
        observe: bool,
    ) -> Decision {
        let decide = |result| {
            Decision::from_result(
                result,
                self.config().error_policy(),
                body.event_type(),
                body.is_destructive(),
            )
        };
        let Some(spool) = &self.inner.spool else {
            return decide(self.evaluate_marked(body, observe).await);
        };
        replay::ensure_started(self);
        let json = match self.encode(body) {
            Ok(json) => Bytes::from(json),
            Err(e) => return decide(Err(e)),
        };
        let event_id = crate::ids::new_trace_id();
        let marks = Marks {
            observe,
            event_id: Some(&event_id),
            late: false,
        };
        let result = self.evaluate_encoded(json.clone(), marks).await;
        let unanswered = matches!(&result, Err(e) if breaker::is_outage(e));
        let decision = decide(result);
        if unanswered && (observe || matches!(decision, Decision::Proceed(_))) {
            self.spool(spool, event_id, json, body.event_type()).await;
        }
        decision
    }

    /// Appends an event to the spool, off the async worker threads.
    async fn spool(
        &self,
        spool: &Arc<spool::Spool>,
        event_id: String,
        json: Bytes,
        event_type: &str,
    ) {
        let writer = spool.clone();
        let written = tokio::task::spawn_blocking(move || writer.append(&event_id, &json))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        match written {
            Ok(()) => self.inner.replay.spooled(),
            Err(e) => {
                tracing::warn!(event_type, error = %e, "OpenBox spool write failed; the event is lost")
            }
        }
    }

    /// Polls `POST /api/v1/governance/approval` for one activity.
    ///
    /// Unlike evaluation, an unreadable answer or missing verdict means *still pending*
    /// (an unknown verdict never approves); only transport and HTTP errors are errors, and the
    /// caller treats those as pending too, except 401/403.
    pub async fn poll_approval(
        &self,
        request: &ApprovalRequest,
    ) -> Result<ApprovalAnswer, GovernanceApiError> {
        let json =
            serde_json::to_vec(request).map_err(|e| GovernanceApiError::Encode(e.to_string()))?;
        let (status, bytes) = self
            .post(Route::Approval, json.into(), Marks::default())
            .await?;
        self.check_status(status, &bytes)?;
        match ApprovalAnswer::from_slice(&bytes, SystemTime::now()) {
            Ok(answer) => Ok(answer),
            Err(e) => {
                tracing::warn!(error = %e, "unreadable approval response; treating the approval as pending");
                Ok(ApprovalAnswer::of(ApprovalStatus::Pending { reason: None }))
            }
        }
    }

    /// A governance call, through the circuit breaker: while it is open, no call is made.
    async fn post(
        &self,
        route: Route,
        json: Bytes,
        marks: Marks<'_>,
    ) -> Result<(u16, Bytes), GovernanceApiError> {
        let admitted = Admitted {
            breaker: &self.inner.breaker,
            admission: Some(self.inner.breaker.admit()?),
        };
        // Signed now, so that a retry or a late delivery carries a fresh nonce (or `jti`), time
        // or token.
        let (url, headers) = match self.signed("POST", route, &json).await {
            Ok(signed) => signed,
            Err(e) => {
                admitted.record(Err(&e));
                return Err(e);
            }
        };
        let mut request = self.inner.http.post(url.clone());
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        let mut request = request.body(json.clone());
        if marks.observe {
            request = request.header(ENFORCEMENT_HEADER, "observe");
        }
        if let Some(id) = marks.event_id {
            request = request.header(EVENT_ID_HEADER, id);
        }
        if marks.late {
            request = request.header(DELIVERY_HEADER, "late");
        }
        let result = self.send_logged(url.path(), marks, &json, request).await;
        self.after_answer(&result, &headers).await;
        let outcome = match &result {
            Ok((status, body)) => self.check_status(*status, body).map(|_| ()),
            Err(e) => Err(e.clone()),
        };
        if outcome.is_ok() && !marks.late {
            self.inner.replay.core_answered();
        }
        admitted.record(outcome.as_ref().map(|_| ()));
        result
    }

    /// Where a request `method route` with `body` goes and the headers that sign it as the
    /// configured identity: the workload token on `/api/v3` while Core offers it; else the Okta
    /// identity's assertion on `/api/v2` (whose ids may first have to come from Core); else the
    /// v1 DID signature's five headers, or none.
    async fn signed(
        &self,
        method: &str,
        route: Route,
        body: &[u8],
    ) -> Result<(&reqwest::Url, Vec<(&'static str, String)>), GovernanceApiError> {
        #[cfg(feature = "workload-identity")]
        if let Some(workload) = &self.inner.workload {
            let bootstrap = || self.get_document(workload::BOOTSTRAP_PATH);
            if let Some(token) = workload.token(bootstrap, self.config().timeout()).await? {
                let header = (HEADER_WORKLOAD_TOKEN, token);
                return Ok((self.inner.v3_routes.url(route), vec![header]));
            }
        }
        let url = self.inner.routes.url(route);
        Ok((url, self.identity_headers(method, url.path(), body).await?))
    }

    /// What an answer means for the identity a request was sent as: a workload token Core
    /// refused (401/403) is dropped, so that the next request exchanges a new one instead of
    /// presenting it again until it would have expired.
    async fn after_answer(
        &self,
        answer: &Result<(u16, Bytes), GovernanceApiError>,
        headers: &[(&'static str, String)],
    ) {
        #[cfg(feature = "workload-identity")]
        if let (Ok((401 | 403, _)), Some(workload)) = (answer, &self.inner.workload)
            && let Some((_, token)) = headers.iter().find(|(n, _)| *n == HEADER_WORKLOAD_TOKEN)
        {
            workload.forget(token).await;
        }
        #[cfg(not(feature = "workload-identity"))]
        let _ = (answer, headers);
    }

    /// The headers that sign a request `method path` with `body` on the v1 or v2 route.
    async fn identity_headers(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Vec<(&'static str, String)>, GovernanceApiError> {
        #[cfg(feature = "okta-identity")]
        if let Some(source) = self.config().okta() {
            let identity = self
                .inner
                .okta
                .get_or_try_init(|| self.bootstrap_okta(source))
                .await?;
            let request = assertions::SignedRequest {
                api_key: self.config().api_key().expose(),
                method,
                path,
                body,
            };
            return Ok(vec![(
                HEADER_ASSERTION,
                assertions::assertion_now(identity, request),
            )]);
        }
        Ok(match self.config().agent_identity() {
            Some(identity) => identity.sign(method, path, body).into(),
            None => Vec::new(),
        })
    }

    /// The Okta identity of `source`: with the key alone, its ids from Core's bootstrap
    /// document (`GET /api/v2/auth/bootstrap`, the API key only).
    #[cfg(feature = "okta-identity")]
    async fn bootstrap_okta(
        &self,
        source: &crate::config::OktaSource,
    ) -> Result<Arc<crate::config::OktaAgentIdentity>, GovernanceApiError> {
        let key = match source {
            crate::config::OktaSource::Configured(identity) => return Ok(identity.clone()),
            crate::config::OktaSource::Bootstrap(key) => key,
        };
        let (status, body) = self.get_document(okta_bootstrap::BOOTSTRAP_PATH).await?;
        let ids = okta_bootstrap::ids_from_answer(status, &body, &key.jwk_thumbprint())?;
        tracing::info!(
            agent = %ids.openbox_agent_id,
            kid = %ids.key_id,
            "Okta agent identity bootstrapped from OpenBox Core"
        );
        Ok(Arc::new(crate::config::OktaAgentIdentity {
            ids,
            key: key.clone(),
        }))
    }

    /// `GET path` with the API key alone, asking for JSON: an identity bootstrap document.
    #[cfg(any(feature = "okta-identity", feature = "workload-identity"))]
    async fn get_document(&self, path: &'static str) -> Result<(u16, Bytes), GovernanceApiError> {
        let url = format!("{}{path}", self.config().url());
        let request = self
            .inner
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json");
        self.send_logged(path, Marks::default(), b"", request).await
    }

    fn check_status(&self, status: u16, body: &[u8]) -> Result<(), GovernanceApiError> {
        match status {
            200..=299 => Ok(()),
            _ => Err(self.status_error(status, body)),
        }
    }

    /// The error of a non-2xx answer: a refused key or signature for 401/403.
    fn status_error(&self, status: u16, body: &[u8]) -> GovernanceApiError {
        match status {
            401 | 403 => match self.signing_rejection(body) {
                Some(rejection) => GovernanceApiError::SignatureRejected { status, rejection },
                None => GovernanceApiError::Unauthorized { status },
            },
            _ => GovernanceApiError::Status {
                status,
                body: String::from_utf8_lossy(body)
                    .chars()
                    .take(ERROR_BODY_CHARS)
                    .collect(),
            },
        }
    }

    /// The reason a 401/403 body gives for refusing a signed request (`reason_code`, `code` or
    /// `reason`); `None` when requests are not signed or the body names none.
    fn signing_rejection(&self, body: &[u8]) -> Option<SigningRejection> {
        if !self.config().signs_requests() {
            return None;
        }
        reason_code_of(body).map(|code| SigningRejection::from_code(&code))
    }

    /// [`send`](Self::send), with the request and its answer in the debug log when it is on.
    async fn send_logged(
        &self,
        path: &str,
        marks: Marks<'_>,
        body: &[u8],
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, Bytes), GovernanceApiError> {
        if !self.config().debug() {
            return self.send(request).await;
        }
        let names = self.config().sensitive_names();
        wire_log::request(path, &marks.describe(), body, names);
        let started = std::time::Instant::now();
        let result = self.send(request).await;
        wire_log::answer(path, started.elapsed(), &result, names);
        result
    }

    /// Sends with the per-call timeout covering connect, request and the whole body.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, Bytes), GovernanceApiError> {
        let timeout = self.config().timeout();
        let exchange = async {
            let mut response = request
                .send()
                .await
                .map_err(|e| transport_error(&e, timeout))?;
            let status = response.status().as_u16();
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| transport_error(&e, timeout))?
            {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(GovernanceApiError::InvalidResponse(ResponseError::NotJson(
                        format!("response larger than {MAX_RESPONSE_BYTES} bytes"),
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok((status, Bytes::from(body)))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(GovernanceApiError::Timeout(timeout)))
    }
}

/// The reason code of a refusal's body: `reason_code`, `code` or `reason`.
fn reason_code_of(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["reason_code", "code", "reason"]
        .iter()
        .find_map(|k| value.get(*k)?.as_str().filter(|c| !c.is_empty()))
        .map(str::to_owned)
}

/// How a governance call is marked in its headers.
#[derive(Debug, Default, Clone, Copy)]
struct Marks<'a> {
    /// The verdict will be recorded, not enforced (observe mode).
    observe: bool,
    /// The event's id, with a spool.
    event_id: Option<&'a str>,
    /// A spooled event delivered after an outage.
    late: bool,
}

impl Marks<'_> {
    /// For the debug log: which marks the request carries.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.observe {
            parts.push("observe".to_owned());
        }
        if let Some(id) = self.event_id {
            parts.push(format!("event_id={id}"));
        }
        if self.late {
            parts.push("late".to_owned());
        }
        parts.join(",")
    }
}

/// An admitted call; a probe dropped before its answer (a cancelled activity) gives the next
/// call the probe.
struct Admitted<'a> {
    breaker: &'a breaker::Breaker,
    admission: Option<breaker::Admission>,
}

impl Admitted<'_> {
    fn record(mut self, outcome: Result<(), &GovernanceApiError>) {
        if let Some(admission) = self.admission.take() {
            self.breaker.record(admission, outcome);
        }
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        if let Some(admission) = self.admission.take() {
            self.breaker.abandon(admission);
        }
    }
}

fn transport_error(e: &reqwest::Error, timeout: Duration) -> GovernanceApiError {
    if e.is_timeout() {
        GovernanceApiError::Timeout(timeout)
    } else {
        GovernanceApiError::Unreachable(error_chain(e))
    }
}
