//! Connection settings for OpenBox Core: URL, API key, timeout, error policy, TLS roots.
//!
//! Each setting is read from this SDK's own environment layer (`OPENBOX_TEMPORAL_…`) first, then
//! from the global `OPENBOX_…` one; explicit builder values win. The variables are listed in
//! `guide::configuration`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

mod breaker;
mod env;
mod error;
mod identity;
mod identity_method;
// The Okta agent identity (v2). Its settings are read in every build, so that one set without
// the `okta-identity` feature is refused rather than ignored.
pub(crate) mod okta;
// The RS256 key the Okta identity and the workload identity sign with.
#[cfg(any(feature = "okta-identity", feature = "workload-identity"))]
pub(crate) mod rsa_key;
mod spool;
mod workload;

pub use breaker::BreakerSettings;
use env::DEFAULT_ENV_PREFIX;
pub use error::ConfigError;
pub use identity::AgentIdentity;
pub use identity_method::IdentityMethod;
#[cfg(feature = "okta-identity")]
pub use okta::OktaAgentIdentity;
#[cfg(feature = "okta-identity")]
pub(crate) use okta::OktaSource;
#[cfg(test)]
pub(crate) use spool::MIN_SPOOL_MAX_BYTES;
pub use spool::SpoolSettings;

use crate::secrets::SensitiveNames;

/// Default per-call timeout (the reference's `governance_timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time an idle keep-alive connection to Core stays open.
pub const DEFAULT_IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(90);

/// What to do when Core cannot give a verdict (down, slow, HTTP error, garbage, unknown verdict).
///
/// Whatever the policy, a 401/403 from Core is a configuration error and always
/// stops the governed operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorPolicy {
    /// Proceed as if Core had allowed, log a warning and count the lost event.
    #[default]
    FailOpen,
    /// Stop the governed operation with a non-retryable `GovernanceHalt` naming the failure.
    FailClosed,
    /// Stop only operations that can change something — HTTP methods other than `GET`,
    /// `HEAD`, `OPTIONS`, `TRACE`; SQL other than `SELECT`/`EXPLAIN`/`SHOW` and transaction
    /// control; redis write commands; file writes, creations and deletions; `#[traced]` calls,
    /// whose effect is unknown — and let reads and lifecycle events proceed as `FailOpen` does.
    FailClosedDestructive,
}

impl ErrorPolicy {
    /// The spelling used by the reference SDK and `OPENBOX_GOVERNANCE_POLICY`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorPolicy::FailOpen => "fail_open",
            ErrorPolicy::FailClosed => "fail_closed",
            ErrorPolicy::FailClosedDestructive => "fail_closed_destructive",
        }
    }
}

impl fmt::Display for ErrorPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorPolicy {
    type Err = ConfigError;
    /// Accepts `fail_open` / `fail_closed` / `fail_closed_destructive` (also with `-`, any case). Anything else is an error:
    /// the reference silently treats a typo as fail_open.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "fail_open" => Ok(ErrorPolicy::FailOpen),
            "fail_closed" => Ok(ErrorPolicy::FailClosed),
            "fail_closed_destructive" => Ok(ErrorPolicy::FailClosedDestructive),
            _ => Err(ConfigError::InvalidErrorPolicy {
                value: s.to_owned(),
            }),
        }
    }
}

/// An OpenBox API key. Its `Debug` and `Display` never show more than the `obx_live_` /
/// `obx_test_` prefix, so that a key never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ApiKey(Arc<str>);

impl ApiKey {
    /// Checks the format `^obx_(live|test)_\w+$`. The error does not echo the key.
    pub fn new(key: impl Into<String>) -> Result<Self, ConfigError> {
        let key = key.into();
        let rest = key
            .strip_prefix("obx_live_")
            .or_else(|| key.strip_prefix("obx_test_"));
        match rest {
            Some(rest)
                if !rest.is_empty() && rest.chars().all(|c| c.is_alphanumeric() || c == '_') =>
            {
                Ok(ApiKey(key.into()))
            }
            _ => Err(ConfigError::InvalidApiKey),
        }
    }

    /// The key itself, for the `Authorization` header. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `obx_live_****` or `obx_test_****`: safe to log.
    pub fn masked(&self) -> String {
        format!("{}****", &self.0[..9])
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({})", self.masked())
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Validated settings for talking to OpenBox Core. Cheap to clone.
///
/// Built with [`OpenBoxConfig::builder`]; anything not set explicitly is read from the
/// environment (`OPENBOX_TEMPORAL_…`, then `OPENBOX_…`: `OPENBOX_API_URL`, `OPENBOX_API_KEY`,
/// `OPENBOX_TIMEOUT_SECONDS`, `OPENBOX_ON_API_ERROR`, …; every variable and default is in
/// [`guide::configuration`](crate::guide::configuration)), and explicit values win.
///
/// ```
/// use std::time::Duration;
/// use openbox::{ErrorPolicy, OpenBoxConfig};
///
/// let config = OpenBoxConfig::builder()
///     .url("http://localhost:8086")
///     .api_key("obx_test_key_1")
///     .timeout(Duration::from_secs(5))
///     .error_policy(ErrorPolicy::FailClosed)
///     .build()?;
/// assert_eq!(config.url(), "http://localhost:8086");
/// # Ok::<(), openbox::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct OpenBoxConfig {
    url: Arc<str>,
    api_key: ApiKey,
    timeout: Duration,
    error_policy: ErrorPolicy,
    ca_bundle_pem: Option<Arc<[u8]>>,
    idle_connection_timeout: Duration,
    sensitive_names: SensitiveNames,
    circuit_breaker: BreakerSettings,
    spool: Option<SpoolSettings>,
    agent_identity: Option<AgentIdentity>,
    #[cfg(feature = "okta-identity")]
    okta: Option<OktaSource>,
    #[cfg(feature = "workload-identity")]
    workload_key: Option<Arc<rsa_key::RsaSigningKey>>,
    debug: bool,
}

impl OpenBoxConfig {
    /// Starts a builder that falls back to the `OPENBOX_TEMPORAL_*` and `OPENBOX_*`
    /// environment variables.
    pub fn builder() -> OpenBoxConfigBuilder {
        OpenBoxConfigBuilder::default()
    }

    /// Core base URL, without a trailing `/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The API key.
    pub(crate) fn api_key(&self) -> &ApiKey {
        &self.api_key
    }

    /// Per-call timeout: the whole request, from connect to the last body byte.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// What happens when Core cannot give a verdict.
    pub fn error_policy(&self) -> ErrorPolicy {
        self.error_policy
    }

    /// PEM roots that replace the platform's trust store, if set.
    pub fn ca_bundle_pem(&self) -> Option<&[u8]> {
        self.ca_bundle_pem.as_deref()
    }

    /// How long an idle keep-alive connection to Core stays open.
    pub fn idle_connection_timeout(&self) -> Duration {
        self.idle_connection_timeout
    }

    /// The circuit breaker's settings.
    pub fn circuit_breaker(&self) -> BreakerSettings {
        self.circuit_breaker
    }

    /// The spool, when one is configured.
    pub fn spool(&self) -> Option<&SpoolSettings> {
        self.spool.as_ref()
    }

    /// The identity requests are signed with, when one is configured.
    pub fn agent_identity(&self) -> Option<&AgentIdentity> {
        self.agent_identity.as_ref()
    }

    /// The Okta AI-agent identity (agent identity v2) requests are signed with, when it is
    /// configured in full: then every request goes to the `/api/v2` routes with an assertion.
    /// `None` too when only its private key is set: the client then asks Core for the rest.
    #[cfg(feature = "okta-identity")]
    pub fn okta_agent_identity(&self) -> Option<&OktaAgentIdentity> {
        match &self.okta {
            Some(OktaSource::Configured(identity)) => Some(identity),
            _ => None,
        }
    }

    /// The Okta identity's settings, configured or to bootstrap.
    #[cfg(feature = "okta-identity")]
    pub(crate) fn okta(&self) -> Option<&OktaSource> {
        self.okta.as_ref()
    }

    /// The workload identity's key, when configured (agent identity v3).
    #[cfg(feature = "workload-identity")]
    pub(crate) fn workload_key(&self) -> Option<&Arc<rsa_key::RsaSigningKey>> {
        self.workload_key.as_ref()
    }

    /// Whether a workload identity is configured: requests then go to the `/api/v3` routes with
    /// a token from Core's identity provider whenever Core offers them.
    pub fn workload_identity(&self) -> bool {
        #[cfg(feature = "workload-identity")]
        if self.workload_key.is_some() {
            return true;
        }
        false
    }

    /// Whether requests are signed (with either identity): Core's 401/403 reason codes are
    /// then read as signing rejections.
    pub(crate) fn signs_requests(&self) -> bool {
        #[cfg(feature = "okta-identity")]
        if self.okta.is_some() {
            return true;
        }
        self.agent_identity.is_some() || self.workload_identity()
    }

    /// Which names carry secrets: the built-in rule plus
    /// [`redact_keys`](OpenBoxConfigBuilder::redact_keys).
    pub(crate) fn sensitive_names(&self) -> &SensitiveNames {
        &self.sensitive_names
    }

    /// Whether every Core request and answer is logged at debug level.
    pub fn debug(&self) -> bool {
        self.debug
    }
}

type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Builder of [`OpenBoxConfig`]; what it reads from the environment is in
/// [`guide::configuration`](crate::guide::configuration).
#[derive(Clone, Default)]
pub struct OpenBoxConfigBuilder {
    url: Option<String>,
    api_key: Option<String>,
    timeout: Option<Duration>,
    error_policy: Option<ErrorPolicy>,
    ca_bundle_pem: Option<Vec<u8>>,
    idle_connection_timeout: Option<Duration>,
    redact_keys: Vec<String>,
    circuit_breaker: Option<BreakerSettings>,
    spool: Option<SpoolSettings>,
    agent_identity: Option<(String, String)>,
    identity_method: Option<IdentityMethod>,
    #[cfg(feature = "okta-identity")]
    okta: okta::OktaSettings,
    #[cfg(feature = "workload-identity")]
    workload_private_key: Option<String>,
    debug: Option<bool>,
    ignore_env: bool,
    env_prefix: Option<String>,
    env: Option<EnvLookup>,
}

impl fmt::Debug for OpenBoxConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("OpenBoxConfigBuilder");
        s.field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "****"))
            .field("timeout", &self.timeout)
            .field("error_policy", &self.error_policy)
            .field("idle_connection_timeout", &self.idle_connection_timeout)
            .field("redact_keys", &self.redact_keys)
            .field("circuit_breaker", &self.circuit_breaker)
            .field("spool", &self.spool)
            .field(
                "agent_identity",
                &self.agent_identity.as_ref().map(|(did, _)| (did, "****")),
            )
            .field("identity_method", &self.identity_method)
            .field("debug", &self.debug)
            .field("ignore_env", &self.ignore_env)
            .field("env_prefix", &self.env_prefix);
        #[cfg(feature = "okta-identity")]
        s.field("okta", &self.okta);
        #[cfg(feature = "workload-identity")]
        s.field(
            "workload_private_key",
            &self.workload_private_key.as_ref().map(|_| "****"),
        );
        s.finish_non_exhaustive()
    }
}

impl OpenBoxConfigBuilder {
    /// Core base URL. `http://` is only accepted for `localhost` and loopback addresses.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The API key (`obx_live_…` or `obx_test_…`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Per-call timeout (default 30 s). Must be greater than zero.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Error policy (default [`ErrorPolicy::FailOpen`]).
    pub fn error_policy(mut self, policy: ErrorPolicy) -> Self {
        self.error_policy = Some(policy);
        self
    }

    /// Trust only the certificates of this PEM bundle for HTTPS to Core (for a private CA),
    /// instead of the platform's trust store.
    pub fn ca_bundle_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_bundle_pem = Some(pem.into());
        self
    }

    /// How long an idle keep-alive connection to Core stays open (default 90 s). Set it below
    /// the idle timeout of a load balancer or NAT between the worker and Core, so that the
    /// worker closes a connection before the network drops it silently; a burst of evaluations
    /// opens connections that are then closed after this long without traffic.
    pub fn idle_connection_timeout(mut self, timeout: Duration) -> Self {
        self.idle_connection_timeout = Some(timeout);
        self
    }

    /// Names whose values never reach Core (case-insensitive; extends the built-in rule of
    /// names with `token`, `secret`, `password`, `key`, `auth`, … in them). A listed key is masked everywhere in every body sent to Core —
    /// activity input and output, signal arguments, span attributes, traced arguments — and is
    /// also treated as sensitive in HTTP headers, query parameters and form or JSON bodies.
    /// Guardrails then see `[REDACTED]` in its place: list what Core must not see, not what it
    /// must check.
    pub fn redact_keys(mut self, keys: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.redact_keys.extend(keys.into_iter().map(Into::into));
        self
    }

    /// The circuit breaker (default: open after 5 consecutive failures, probe after 10 s; a
    /// threshold of 0 disables it). While it is open, governed operations get no verdict at
    /// once instead of each waiting for the timeout: `fail_open` proceeds, `fail_closed` stops.
    pub fn circuit_breaker(mut self, settings: BreakerSettings) -> Self {
        self.circuit_breaker = Some(settings);
        self
    }

    /// Keep every event that goes ahead without Core's answer because Core is unavailable
    /// (`fail_open`, reads under `fail_closed_destructive`, observe mode) in an on-disk spool,
    /// and deliver it to Core late, in order, once Core answers again; its verdict is then
    /// recorded and counted, never enforced. Off by default: the spool writes event bodies —
    /// activity inputs and outputs, after `redact_keys` — to a directory of the worker's disk,
    /// and where such data may rest is the deployment's decision, as is a directory that
    /// outlives the worker's container.
    pub fn spool(mut self, settings: SpoolSettings) -> Self {
        self.spool = Some(settings);
        self
    }

    /// Signs every request with this agent identity (agent identity v1): `did` is
    /// `did:aip:<uuid>`, `private_key` the standard base64 of the agent's raw 32-byte Ed25519
    /// seed. Validated by [`build`](Self::build); the key never appears in `Debug` output, logs,
    /// errors or workflow histories. Environment: `OPENBOX_AGENT_DID` and
    /// `OPENBOX_AGENT_PRIVATE_KEY`, both or neither.
    pub fn agent_identity(
        mut self,
        did: impl Into<String>,
        private_key: impl Into<String>,
    ) -> Self {
        self.agent_identity = Some((did.into(), private_key.into()));
        self
    }

    /// Signs every request with the Okta AI-agent identity (agent identity v2) and sends it to
    /// the `/api/v2` routes: `pem` is the agent's unencrypted PKCS#8 PEM RSA private key
    /// (`-----BEGIN PRIVATE KEY-----`, at least 2048 bits). Alone, the ids come from Core
    /// (`GET /api/v2/auth/bootstrap`, before the first signed request; Core's selected key must
    /// be this one); or set together with the five ids and the audience below; environment `OPENBOX_OKTA_AGENT_PRIVATE_KEY`,
    /// `OPENBOX_AGENT_ID`, `OPENBOX_ORGANIZATION_ID`, `OPENBOX_DEPLOYMENT_ID`,
    /// `OPENBOX_OKTA_AGENT_ID`, `OPENBOX_OKTA_AGENT_KEY_ID`, `OPENBOX_AGENT_PROOF_AUDIENCE`.
    /// Validated by [`build`](Self::build), whose errors never show the key; the key never
    /// appears in `Debug` output, logs or workflow histories. Not with
    /// [`agent_identity`](Self::agent_identity).
    #[cfg(feature = "okta-identity")]
    pub fn okta_agent_private_key(mut self, pem: impl Into<String>) -> Self {
        self.okta.private_key = Some(pem.into());
        self
    }

    /// The OpenBox agent id of the Okta identity (see
    /// [`okta_agent_private_key`](Self::okta_agent_private_key)).
    #[cfg(feature = "okta-identity")]
    pub fn openbox_agent_id(mut self, id: impl Into<String>) -> Self {
        self.okta.set_id("openbox_agent_id", id.into());
        self
    }

    /// The organization id of the Okta identity.
    #[cfg(feature = "okta-identity")]
    pub fn organization_id(mut self, id: impl Into<String>) -> Self {
        self.okta.set_id("organization_id", id.into());
        self
    }

    /// The deployment id of the Okta identity.
    #[cfg(feature = "okta-identity")]
    pub fn deployment_id(mut self, id: impl Into<String>) -> Self {
        self.okta.set_id("deployment_id", id.into());
        self
    }

    /// Okta's id of the agent (the assertions' `iss` and `sub`).
    #[cfg(feature = "okta-identity")]
    pub fn okta_agent_id(mut self, id: impl Into<String>) -> Self {
        self.okta.set_id("okta_agent_id", id.into());
        self
    }

    /// The key id of the agent's Okta credential (the assertions' `kid`).
    #[cfg(feature = "okta-identity")]
    pub fn okta_agent_key_id(mut self, id: impl Into<String>) -> Self {
        self.okta.set_id("okta_agent_key_id", id.into());
        self
    }

    /// The signing algorithm; `RS256`, the default, is the only one Core accepts (environment
    /// `OPENBOX_OKTA_AGENT_ALGORITHM`).
    #[cfg(feature = "okta-identity")]
    pub fn okta_agent_algorithm(mut self, algorithm: impl Into<String>) -> Self {
        self.okta.algorithm = Some(algorithm.into());
        self
    }

    /// The audience of the assertions, as Core issued it.
    #[cfg(feature = "okta-identity")]
    pub fn agent_proof_audience(mut self, audience: impl Into<String>) -> Self {
        self.okta.set_id("agent_proof_audience", audience.into());
        self
    }

    /// The workload identity (agent identity v3): `pem` is the unencrypted PKCS#8 PEM RSA key
    /// (at least 2048 bits) of the service account Core advertises at
    /// `GET /api/v3/auth/bootstrap`. While Core offers the `/api/v3` routes, every request goes
    /// there with a short-lived token exchanged for an RS256 client assertion at Core's token
    /// endpoint (cached while fresh, one exchange at a time); while it does not (404), requests
    /// keep their `/api/v2` or `/api/v1` route and Core is asked again after a minute. Once
    /// offered, v3 is never given up: a token that cannot be had stops the operation.
    /// Environment `OPENBOX_WORKLOAD_PRIVATE_KEY`; the key never appears in `Debug` output,
    /// errors, logs or histories.
    #[cfg(feature = "workload-identity")]
    pub fn workload_private_key(mut self, pem: impl Into<String>) -> Self {
        self.workload_private_key = Some(pem.into());
        self
    }

    /// Names the identity requests must be signed with, so that a missing setting is an error
    /// at start-up rather than unsigned requests (environment `OPENBOX_AGENT_IDENTITY_METHOD`:
    /// `openbox_did` or `okta_ai_agent`). Without it the identity follows from the settings
    /// present.
    pub fn agent_identity_method(mut self, method: IdentityMethod) -> Self {
        self.identity_method = Some(method);
        self
    }

    /// Logs every Core request and answer at debug level, target `openbox::wire` (default
    /// off; environment `OPENBOX_DEBUG=1`). Bodies are logged with the values of sensitive
    /// names masked (the built-in rule plus `redact_keys`) and cut at 4 KiB; the
    /// API key and signature headers never appear.
    pub fn debug(mut self, on: bool) -> Self {
        self.debug = Some(on);
        self
    }

    /// Do not read environment variables at all.
    pub fn ignore_env(mut self) -> Self {
        self.ignore_env = true;
        self
    }

    /// The prefix of this SDK's own environment layer, read before the global `OPENBOX_*`
    /// one (default `OPENBOX_TEMPORAL`): with `"OPENBOX_PAYMENTS"`,
    /// `OPENBOX_PAYMENTS_API_KEY` wins over `OPENBOX_API_KEY`. Upper-case letters, digits and
    /// `_`; checked by [`build`](Self::build).
    pub fn env_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.env_prefix = Some(prefix.into());
        self
    }

    /// Reads fallbacks from `lookup` instead of the process environment (for tests and for
    /// configuration systems that are not the environment).
    pub fn env_lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = Some(Arc::new(lookup));
        self
    }

    fn env_var(&self, name: &str) -> Option<String> {
        if self.ignore_env {
            return None;
        }
        match &self.env {
            Some(lookup) => lookup(name),
            None => std::env::var(name).ok(),
        }
    }

    /// Validates everything and returns the config. Errors name the setting at fault (and the
    /// environment variable it came from) and never contain the API key.
    pub fn build(self) -> Result<OpenBoxConfig, ConfigError> {
        let prefix = self.env_prefix.as_deref().unwrap_or(DEFAULT_ENV_PREFIX);
        env::validate_prefix(prefix)?;
        let lookup = |name: &str| self.env_var(name);
        let layers = env::EnvLayers::new(prefix, &lookup);
        let url = match &self.url {
            Some(url) => validate_url(url)?,
            None => match layers.get(env::URL)? {
                Some(v) => validate_url(&v.value).map_err(|e| v.error(e))?,
                None => return Err(ConfigError::MissingUrl),
            },
        };
        let api_key = match &self.api_key {
            Some(key) => ApiKey::new(key.trim())?,
            None => match layers.get(env::API_KEY)? {
                Some(v) => ApiKey::new(v.value.trim()).map_err(|e| v.error(e))?,
                None => return Err(ConfigError::MissingApiKey),
            },
        };
        let timeout = match self.timeout {
            Some(t) => t,
            None => match layers.get(env::TIMEOUT)? {
                Some(v) => parse_timeout_secs(&v.value).map_err(|e| v.error(e))?,
                None => DEFAULT_TIMEOUT,
            },
        };
        if timeout.is_zero() {
            return Err(ConfigError::InvalidTimeout {
                value: format!("{timeout:?}"),
            });
        }
        let error_policy = match self.error_policy {
            Some(p) => p,
            None => match layers.get(env::ERROR_POLICY)? {
                Some(v) => v.value.parse().map_err(|e| v.error(e))?,
                None => ErrorPolicy::default(),
            },
        };
        let debug = match self.debug {
            Some(on) => on,
            None => match layers.get(env::DEBUG)? {
                Some(v) => env::parse_flag(&v.value).map_err(|e| v.error(e))?,
                None => false,
            },
        };
        let idle_connection_timeout = self
            .idle_connection_timeout
            .unwrap_or(DEFAULT_IDLE_CONNECTION_TIMEOUT);
        if idle_connection_timeout.is_zero() {
            return Err(ConfigError::InvalidOption {
                option: "idle_connection_timeout",
                reason: "must be greater than zero".into(),
            });
        }
        if let Some(problem) = self.spool.as_ref().and_then(SpoolSettings::problem) {
            return Err(ConfigError::InvalidOption {
                option: "spool",
                reason: problem,
            });
        }
        let agent_identity = match self.agent_identity.clone() {
            Some((did, key)) => Some(AgentIdentity::new(&did, &key)?),
            None => match (
                layers.get(env::AGENT_DID)?,
                layers.get(env::AGENT_PRIVATE_KEY)?,
            ) {
                (Some(did), Some(key)) => {
                    Some(AgentIdentity::new(&did.value, &key.value).map_err(|e| did.error(e))?)
                }
                (None, None) => None,
                (Some(set), None) | (None, Some(set)) => {
                    return Err(ConfigError::InvalidOption {
                        option: "agent_identity",
                        reason: format!(
                            "{} is set without its pair: the agent DID and private key (`…_{}`, `…_{}`) are set together or not at all",
                            set.variable,
                            env::AGENT_DID.suffix,
                            env::AGENT_PRIVATE_KEY.suffix
                        ),
                    });
                }
            },
        };
        #[cfg(feature = "okta-identity")]
        let okta = self.okta.resolve(&layers)?;
        #[cfg(not(feature = "okta-identity"))]
        okta::refuse_without_feature(&layers)?;
        #[cfg(feature = "okta-identity")]
        if okta.is_some() && agent_identity.is_some() {
            return Err(ConfigError::InvalidOption {
                option: "okta_agent_private_key",
                reason: "the Okta agent identity and the agent DID identity (agent_identity) \
                         exclude each other: set one"
                    .into(),
            });
        }
        #[cfg(feature = "workload-identity")]
        let workload_key = workload::resolve(self.workload_private_key.as_deref(), &layers)?;
        #[cfg(not(feature = "workload-identity"))]
        workload::refuse_without_feature(&layers)?;
        let method = match self.identity_method {
            Some(method) => Some(method),
            None => match layers.get(identity_method::ENV)? {
                Some(v) => Some(v.value.parse().map_err(|e| v.error(e))?),
                None => None,
            },
        };
        if let Some(method) = method {
            #[cfg(feature = "okta-identity")]
            let okta_present = okta.is_some();
            #[cfg(not(feature = "okta-identity"))]
            let okta_present = false;
            method.require(agent_identity.is_some(), okta_present)?;
        }
        Ok(OpenBoxConfig {
            #[cfg(feature = "workload-identity")]
            workload_key,
            agent_identity,
            #[cfg(feature = "okta-identity")]
            okta,
            url: url.into(),
            api_key,
            timeout,
            error_policy,
            ca_bundle_pem: self.ca_bundle_pem.map(Into::into),
            idle_connection_timeout,
            sensitive_names: SensitiveNames::with_keys(self.redact_keys),
            circuit_breaker: self.circuit_breaker.unwrap_or_default(),
            spool: self.spool,
            debug,
        })
    }
}

fn parse_timeout_secs(raw: &str) -> Result<Duration, ConfigError> {
    let invalid = || ConfigError::InvalidTimeout {
        value: raw.to_owned(),
    };
    let secs: f64 = raw.trim().parse().map_err(|_| invalid())?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(invalid());
    }
    Duration::try_from_secs_f64(secs).map_err(|_| invalid())
}

/// Applies the URL rule: `https://` anywhere, `http://` only for `localhost` and
/// loopback addresses (an API key must not cross a network in clear). Returns the URL without
/// a trailing `/`.
pub(crate) fn validate_url(raw: &str) -> Result<String, ConfigError> {
    let trimmed = raw.trim().trim_end_matches('/');
    let invalid = |reason: &str| ConfigError::InvalidUrl {
        url: raw.to_owned(),
        reason: reason.to_owned(),
    };
    let url = reqwest::Url::parse(trimmed).map_err(|e| invalid(&e.to_string()))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a Core URL has no query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("credentials belong in the API key, not in the URL"));
    }
    match url.scheme() {
        "https" => {}
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
                Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
                None => false,
            };
            if !loopback {
                return Err(ConfigError::InsecureUrl {
                    url: trimmed.to_owned(),
                });
            }
        }
        other => {
            return Err(invalid(&format!(
                "unsupported scheme {other:?} (use https)"
            )));
        }
    }
    if url.host().is_none() {
        return Err(invalid("no host"));
    }
    Ok(trimmed.to_owned())
}

/// The global variables, as users set them (for the tests).
#[cfg(test)]
mod env_names {
    pub(super) const ENV_URL: &str = "OPENBOX_API_URL";
    pub(super) const ENV_API_KEY: &str = "OPENBOX_API_KEY";
    pub(super) const ENV_TIMEOUT: &str = "OPENBOX_TIMEOUT_SECONDS";
    pub(super) const ENV_POLICY: &str = "OPENBOX_ON_API_ERROR";
    pub(super) const ENV_DEBUG: &str = "OPENBOX_DEBUG";
}
#[cfg(test)]
use env_names::*;

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn env_supplies_defaults_and_explicit_values_win() {
        let vars = [
            (ENV_URL, "https://core.example.com/"),
            (ENV_API_KEY, "obx_live_abc"),
            (ENV_TIMEOUT, "2.5"),
            (ENV_POLICY, "fail_closed"),
        ];
        let c = OpenBoxConfig::builder()
            .env_lookup(env(&vars))
            .build()
            .unwrap();
        assert_eq!(c.url(), "https://core.example.com");
        assert_eq!(c.api_key().expose(), "obx_live_abc");
        assert_eq!(c.timeout(), Duration::from_millis(2500));
        assert_eq!(c.error_policy(), ErrorPolicy::FailClosed);

        let c = OpenBoxConfig::builder()
            .env_lookup(env(&vars))
            .url("http://127.0.0.1:8086")
            .api_key("obx_test_k")
            .timeout(Duration::from_secs(1))
            .error_policy(ErrorPolicy::FailOpen)
            .build()
            .unwrap();
        assert_eq!(c.url(), "http://127.0.0.1:8086");
        assert_eq!(c.api_key().expose(), "obx_test_k");
        assert_eq!(c.timeout(), Duration::from_secs(1));
        assert_eq!(c.error_policy(), ErrorPolicy::FailOpen);

        let c = OpenBoxConfig::builder()
            .env_lookup(env(&vars))
            .ignore_env()
            .url("http://localhost:1")
            .api_key("obx_test_k")
            .build()
            .unwrap();
        assert_eq!(c.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(c.error_policy(), ErrorPolicy::FailOpen);
    }

    #[test]
    fn older_names_and_the_sdk_layer_are_read() {
        let legacy = [
            ("OPENBOX_URL", "https://core.example.com"),
            ("OPENBOX_API_KEY", "obx_live_abc"),
            ("OPENBOX_GOVERNANCE_TIMEOUT", "3"),
            ("OPENBOX_GOVERNANCE_POLICY", "fail_closed"),
        ];
        let c = OpenBoxConfig::builder()
            .env_lookup(env(&legacy))
            .build()
            .unwrap();
        assert_eq!(c.url(), "https://core.example.com");
        assert_eq!(c.timeout(), Duration::from_secs(3));
        assert_eq!(c.error_policy(), ErrorPolicy::FailClosed);
        assert!(!c.debug());

        let mut layered = legacy.to_vec();
        layered.extend([
            ("OPENBOX_TEMPORAL_API_URL", "https://temporal.example.com"),
            ("OPENBOX_TEMPORAL_TIMEOUT_SECONDS", "4"),
            ("OPENBOX_TEMPORAL_DEBUG", "1"),
        ]);
        let c = OpenBoxConfig::builder()
            .env_lookup(env(&layered))
            .build()
            .unwrap();
        assert_eq!(c.url(), "https://temporal.example.com");
        assert_eq!(c.timeout(), Duration::from_secs(4));
        assert!(c.debug());
        assert!(
            !OpenBoxConfig::builder()
                .env_lookup(env(&layered))
                .debug(false)
                .build()
                .unwrap()
                .debug()
        );
        // Another prefix: the Temporal layer is not read, the global one is.
        let c = OpenBoxConfig::builder()
            .env_lookup(env(&layered))
            .env_prefix("OPENBOX_PAYMENTS")
            .build()
            .unwrap();
        assert_eq!(c.url(), "https://core.example.com");
        assert!(matches!(
            OpenBoxConfig::builder().env_prefix("openbox").build(),
            Err(ConfigError::InvalidOption {
                option: "env_prefix",
                ..
            })
        ));

        let mut conflicting = legacy.to_vec();
        conflicting.push((ENV_POLICY, "fail_open"));
        let r = OpenBoxConfig::builder()
            .env_lookup(env(&conflicting))
            .build();
        assert!(
            matches!(&r, Err(ConfigError::ConflictingEnv { first, second })
                if first == ENV_POLICY && second == "OPENBOX_GOVERNANCE_POLICY"),
            "{r:?}"
        );
        let r = OpenBoxConfig::builder()
            .env_lookup(env(&[("OPENBOX_DEBUG", "maybe")]))
            .url("http://localhost")
            .api_key("obx_test_1")
            .build();
        assert!(
            matches!(&r, Err(ConfigError::InvalidEnv { variable, .. }) if variable == ENV_DEBUG)
        );
    }

    #[test]
    fn missing_and_malformed_settings_are_named() {
        let b = || OpenBoxConfig::builder().env_lookup(env(&[]));
        assert!(matches!(b().build(), Err(ConfigError::MissingUrl)));
        assert!(matches!(
            b().url("http://localhost").build(),
            Err(ConfigError::MissingApiKey)
        ));
        let ok = || b().url("http://localhost").api_key("obx_test_1");
        for bad in ["0", "-1", "abc", "inf", "NaN"] {
            let r = b()
                .env_lookup(env(&[(ENV_TIMEOUT, bad)]))
                .url("http://localhost")
                .api_key("obx_test_1")
                .build();
            assert!(
                matches!(&r, Err(ConfigError::InvalidEnv { variable, source })
                    if variable == ENV_TIMEOUT && matches!(**source, ConfigError::InvalidTimeout { .. })),
                "{bad}: {r:?}"
            );
        }
        assert!(matches!(
            ok().timeout(Duration::ZERO).build(),
            Err(ConfigError::InvalidTimeout { .. })
        ));
        assert!(matches!(
            ok().idle_connection_timeout(Duration::ZERO).build(),
            Err(ConfigError::InvalidOption {
                option: "idle_connection_timeout",
                ..
            })
        ));
        assert_eq!(
            ok().build().unwrap().idle_connection_timeout(),
            DEFAULT_IDLE_CONNECTION_TIMEOUT
        );
        let r = b()
            .env_lookup(env(&[(ENV_POLICY, "fail_sideways")]))
            .url("http://localhost")
            .api_key("obx_test_1")
            .build();
        assert!(matches!(&r, Err(ConfigError::InvalidEnv { source, .. })
            if matches!(**source, ConfigError::InvalidErrorPolicy { .. })));
        assert_eq!(
            "FAIL-CLOSED".parse::<ErrorPolicy>().unwrap(),
            ErrorPolicy::FailClosed
        );
    }

    #[test]
    fn http_only_for_loopback() {
        for ok in [
            "http://localhost:8086",
            "http://LOCALHOST",
            "http://127.0.0.1:8086/",
            "http://[::1]:8086",
            "https://core.openbox.ai",
            "https://10.0.0.1/prefix",
        ] {
            assert!(validate_url(ok).is_ok(), "{ok}");
        }
        let err = validate_url("http://core.openbox.ai").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Insecure HTTP URL detected: http://core.openbox.ai. Use HTTPS for non-localhost URLs to protect API keys in transit."
        );
        assert!(matches!(
            validate_url("http://10.0.0.1:8086"),
            Err(ConfigError::InsecureUrl { .. })
        ));
        assert!(matches!(
            validate_url("http://localhost.evil.com"),
            Err(ConfigError::InsecureUrl { .. })
        ));
        for bad in [
            "core.openbox.ai",
            "ftp://x",
            "https://x?y=1",
            "https://u:p@x",
            "",
        ] {
            assert!(
                matches!(validate_url(bad), Err(ConfigError::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn api_key_format_and_no_echo() {
        for ok in ["obx_test_key_1", "obx_live_ABC123", "obx_test_x"] {
            assert!(ApiKey::new(ok).is_ok(), "{ok}");
        }
        let secret = "obx_prod_SuperSecretValue123";
        for bad in [
            secret,
            "obx_test_",
            "obx_test_has space",
            "obx_test_dash-x",
            "sk_live_abc",
            "",
        ] {
            let err = ApiKey::new(bad).unwrap_err();
            assert!(matches!(err, ConfigError::InvalidApiKey));
            let text = format!("{err} {err:?}");
            assert!(!text.contains("SuperSecret"), "{text}");
        }
        let key = ApiKey::new("obx_test_SuperSecretValue123").unwrap();
        assert_eq!(format!("{key:?}"), "ApiKey(obx_test_****)");
        assert_eq!(key.to_string(), "obx_test_****");
        let cfg = OpenBoxConfig::builder()
            .ignore_env()
            .url("http://localhost")
            .api_key(key.expose())
            .build()
            .unwrap();
        assert!(!format!("{cfg:?}").contains("SuperSecret"));
        let builder = OpenBoxConfig::builder().api_key("obx_test_SuperSecretValue123");
        assert!(!format!("{builder:?}").contains("SuperSecret"));
    }
}

#[cfg(test)]
mod properties {
    //! Property tests of configuration parsing: any URL, key, timeout and policy text, from the
    //! builder or the environment, gives a config or a typed error, never a panic, and an error
    //! never repeats a rejected key in full. `PROPTEST_CASES` sets the number of cases.

    use super::*;
    use proptest::prelude::*;

    fn urlish() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("http://localhost:8086".to_owned()),
            Just("https://core.example.com/".to_owned()),
            Just("http://[::1]:1".to_owned()),
            "(https?|ftp)://[a-z0-9.:@?#\\[\\]/-]{0,24}",
            ".{0,32}",
        ]
    }

    fn keyish() -> impl Strategy<Value = String> {
        prop_oneof!["obx_(live|test)_[A-Za-z0-9_]{1,24}", ".{0,40}"]
    }

    fn timeoutish() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("30".to_owned()),
            Just("0".to_owned()),
            Just("-1".to_owned()),
            Just("NaN".to_owned()),
            Just("inf".to_owned()),
            Just("1e300".to_owned()),
            Just("0.0000000001".to_owned()),
            any::<f64>().prop_map(|f| f.to_string()),
            ".{0,12}",
        ]
    }

    proptest! {
        #[test]
        fn config_from_the_environment_parses_or_fails_typed(
            url in urlish(),
            key in keyish(),
            timeout in timeoutish(),
            policy in prop_oneof![Just("fail_open".to_owned()), Just("fail_closed".to_owned()), ".{0,12}"],
        ) {
            let env = [
                (ENV_URL, url),
                (ENV_API_KEY, key.clone()),
                (ENV_TIMEOUT, timeout),
                (ENV_POLICY, policy),
            ];
            let result = OpenBoxConfig::builder()
                .env_lookup(move |name| {
                    env.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
                })
                .build();
            match result {
                Ok(config) => {
                    prop_assert!(!config.timeout().is_zero());
                    prop_assert!(!config.url().ends_with('/'));
                }
                Err(e) => {
                    let shown = e.to_string();
                    if key.trim().len() > 15 {
                        prop_assert!(!shown.contains(key.trim()), "{shown}");
                    }
                }
            }
        }
    }
}
