//! The workload identity (agent identity v3): Core advertises a service account at
//! `GET /api/v3/auth/bootstrap`; the SDK proves it holds that account's key with an RS256 client
//! assertion (RFC 7523 `private_key_jwt`) at the advertised token endpoint, and sends the access
//! token it gets in `X-OpenBox-Workload-Token` on the `/api/v3` routes.
//!
//! While Core answers 404 (or 409 `workload_identity_unavailable`), requests keep their v2 or v1
//! route and Core is asked again after a minute; once a document came back, v3 is never given
//! up. A token is cached for `min(expires_in, 300)` seconds and replaced 30 seconds before it
//! expires; one exchange at a time, however many requests wait for it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::GovernanceApiError;
use super::assertions::workload_client_assertion_now;
use crate::config::rsa_key::RsaSigningKey;

/// Path of the v3 bootstrap document.
pub const BOOTSTRAP_PATH: &str = "/api/v3/auth/bootstrap";
/// The header the access token travels in.
pub const HEADER_WORKLOAD_TOKEN: &str = "X-OpenBox-Workload-Token";

/// The document and contract versions this SDK reads.
const VERSION: i64 = 3;
/// How long Core's "no v3 here" holds before it is asked again.
const UNAVAILABLE_FOR: Duration = Duration::from_secs(60);
/// A cached token is replaced this long before it expires.
const REFRESH_SKEW: Duration = Duration::from_secs(30);
/// No token is kept longer than this, whatever `expires_in` says.
const MAX_TOKEN_CACHE: Duration = Duration::from_secs(300);
/// The smallest `expires_in` accepted: a shorter token would be refreshed at every request.
const MIN_EXPIRES_IN: f64 = 30.0;
/// The identity sources Core names.
const IDENTITY_SOURCES: [&str; 3] = ["openbox", "okta", "entra"];
/// `client_assertion_type` of RFC 7523.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What the SDK needs of Core's v3 document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WorkloadDocument {
    pub(crate) token_endpoint: String,
    pub(crate) client_id: String,
    pub(crate) kid: String,
}

/// What is known of Core's v3 authority.
#[derive(Debug)]
enum Discovery {
    /// Not asked yet.
    Unknown,
    /// Core said it has none; ask again at this time.
    Unavailable { until: Instant },
    /// Advertised: from now on every request is v3.
    Available(WorkloadDocument),
}

/// A token and when it stops being used.
struct CachedToken {
    value: String,
    refresh_at: Instant,
}

/// The workload identity of one client.
pub(crate) struct Workload {
    key: Arc<RsaSigningKey>,
    /// For the token endpoint: no default headers, so the API key never goes there.
    token_http: reqwest::Client,
    /// Held across the bootstrap and the exchange: one at a time.
    state: tokio::sync::Mutex<(Discovery, Option<CachedToken>)>,
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Workload { key: <rsa key>, .. }")
    }
}

impl Workload {
    pub(crate) fn new(key: Arc<RsaSigningKey>, token_http: reqwest::Client) -> Self {
        Workload {
            key,
            token_http,
            state: tokio::sync::Mutex::new((Discovery::Unknown, None)),
        }
    }

    /// The token to send, or `None` while Core offers no v3 route. `bootstrap` asks Core for
    /// its document (`(status, body)`); `timeout` bounds the token exchange.
    pub(crate) async fn token<F>(
        &self,
        bootstrap: impl FnOnce() -> F,
        timeout: Duration,
    ) -> Result<Option<String>, GovernanceApiError>
    where
        F: std::future::Future<Output = Result<(u16, bytes::Bytes), GovernanceApiError>>,
    {
        let mut state = self.state.lock().await;
        let (discovery, cached) = &mut *state;
        let ask = match discovery {
            Discovery::Unknown => true,
            Discovery::Unavailable { until } => Instant::now() >= *until,
            Discovery::Available(_) => false,
        };
        if ask {
            let (status, body) = bootstrap().await?;
            *discovery = match document_from_answer(status, &body)? {
                Some(document) => {
                    tracing::info!(
                        client_id = %document.client_id,
                        token_endpoint = %document.token_endpoint,
                        "OpenBox Core offers workload identity (v3); requests use /api/v3"
                    );
                    Discovery::Available(document)
                }
                None => Discovery::Unavailable {
                    until: Instant::now() + UNAVAILABLE_FOR,
                },
            };
        }
        let Discovery::Available(document) = discovery else {
            return Ok(None);
        };
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(Some(token.value.clone()));
        }
        let token = self.exchange(document, timeout).await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(Some(value))
    }

    /// Drops the cached token if it is still `token` (Core refused it): the next request
    /// exchanges a new one. A token refreshed meanwhile is kept.
    pub(crate) async fn forget(&self, token: &str) {
        let mut state = self.state.lock().await;
        if state.1.as_ref().is_some_and(|cached| cached.value == token) {
            state.1 = None;
        }
    }

    /// One exchange of a fresh client assertion for an access token.
    async fn exchange(
        &self,
        document: &WorkloadDocument,
        timeout: Duration,
    ) -> Result<CachedToken, GovernanceApiError> {
        let assertion = workload_client_assertion_now(
            &self.key,
            &document.kid,
            &document.client_id,
            &document.token_endpoint,
        );
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", document.client_id.as_str()),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion.as_str()),
        ];
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let failed = |reason: String| GovernanceApiError::WorkloadToken(reason);
        let exchange = async {
            let response = self
                .token_http
                .post(&document.token_endpoint)
                .header(reqwest::header::ACCEPT, "application/json")
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body)
                .send()
                .await
                .map_err(|e| {
                    failed(format!(
                        "the token endpoint cannot be reached: {}",
                        super::error_chain(&e)
                    ))
                })?;
            let status = response.status().as_u16();
            let bytes = response
                .bytes()
                .await
                .map_err(|e| failed(format!("the token endpoint's answer was cut: {e}")))?;
            Ok::<_, GovernanceApiError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| {
                failed(format!(
                    "no answer from the token endpoint within {timeout:?}"
                ))
            })??;
        let (value, expires_in) = token_from_answer(status, &bytes).map_err(failed)?;
        let lifetime = expires_in.min(MAX_TOKEN_CACHE);
        Ok(CachedToken {
            value,
            refresh_at: Instant::now() + lifetime.saturating_sub(REFRESH_SKEW),
        })
    }
}

/// `application/x-www-form-urlencoded` of one value.
pub(super) fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Core's document, `None` when Core says it offers no v3 authority.
pub(crate) fn document_from_answer(
    status: u16,
    body: &[u8],
) -> Result<Option<WorkloadDocument>, GovernanceApiError> {
    match status {
        200 => {}
        404 => return Ok(None),
        409 if reason_code(body).as_deref() == Some("workload_identity_unavailable") => {
            return Ok(None);
        }
        401 | 403 => return Err(GovernanceApiError::Unauthorized { status }),
        _ => {
            return Err(GovernanceApiError::Status {
                status,
                body: String::from_utf8_lossy(body).chars().take(200).collect(),
            });
        }
    }
    let invalid = |reason: String| {
        GovernanceApiError::IdentityBootstrap(format!("invalid workload document: {reason}"))
    };
    let document: Value = serde_json::from_slice(body).map_err(|_| invalid("not JSON".into()))?;
    parse_document(&document).map(Some).map_err(invalid)
}

fn parse_document(document: &Value) -> Result<WorkloadDocument, String> {
    for field in ["bootstrap_version", "contract_version"] {
        let value = document.get(field);
        if value.and_then(Value::as_i64) != Some(VERSION) {
            return Err(format!(
                "{field} {} is not supported (this SDK reads {VERSION}): upgrade the SDK",
                value.map_or("missing".into(), Value::to_string)
            ));
        }
    }
    let issuer = text(document, "issuer")?.trim_end_matches('/').to_owned();
    let token_endpoint = text(document, "token_endpoint")?;
    check_endpoint("issuer", &issuer)?;
    check_endpoint("token_endpoint", &token_endpoint)?;
    if token_endpoint != format!("{issuer}/protocol/openid-connect/token") {
        return Err("token_endpoint is not the advertised issuer's".into());
    }
    let source = text(document, "identity_source")?.to_ascii_lowercase();
    if !IDENTITY_SOURCES.contains(&source.as_str()) {
        return Err(format!("identity_source {source:?} is not supported"));
    }
    text(document, "audience")?;
    for field in ["service_account_id", "activation_version"] {
        let id = text(document, field)?;
        if !is_canonical_uuid(&id) {
            return Err(format!("{field} must be a canonical UUID"));
        }
    }
    Ok(WorkloadDocument {
        token_endpoint,
        client_id: text(document, "client_id")?,
        kid: text(document, "kid")?,
    })
}

/// An absolute URL without credentials, query or fragment; `https`, or `http` to a loopback
/// name only.
pub(super) fn check_endpoint(name: &str, raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|_| format!("{name} must be an absolute URL"))?;
    let host = url.host_str().unwrap_or_default();
    if host.is_empty() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{name} must be an absolute URL without credentials"
        ));
    }
    let local = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    if url.scheme() != "https" && !(url.scheme() == "http" && local) {
        return Err(format!("{name} must use HTTPS"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{name} cannot have a query or a fragment"));
    }
    Ok(())
}

/// The token and its lifetime from the token endpoint's answer.
pub(crate) fn token_from_answer(status: u16, body: &[u8]) -> Result<(String, Duration), String> {
    if status != 200 {
        let error = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .map(|e| format!(" ({})", e.chars().take(64).collect::<String>()))
            .unwrap_or_default();
        return Err(format!("the token endpoint answered HTTP {status}{error}"));
    }
    let answer: Value =
        serde_json::from_slice(body).map_err(|_| "the token answer is not JSON".to_owned())?;
    let token = text(&answer, "access_token").map_err(|e| format!("token answer: {e}"))?;
    let kind = text(&answer, "token_type").map_err(|e| format!("token answer: {e}"))?;
    if !kind.eq_ignore_ascii_case("bearer") {
        return Err(format!("token_type {kind:?} is not bearer"));
    }
    let expires_in = match answer.get("expires_in") {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        _ => return Err("expires_in must be a number".into()),
    };
    if !(expires_in > MIN_EXPIRES_IN && expires_in.is_finite()) {
        return Err(format!("expires_in must be more than {MIN_EXPIRES_IN} s"));
    }
    Ok((token, Duration::from_secs_f64(expires_in.min(86_400.0))))
}

pub(super) fn text(object: &Value, name: &str) -> Result<String, String> {
    match object.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        _ => Err(format!("{name} must be a non-empty string")),
    }
}

fn reason_code(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    ["reason_code", "code"]
        .iter()
        .find_map(|k| value.get(*k)?.as_str().map(str::to_owned))
}

/// `8-4-4-4-12` lowercase hex.
pub(super) fn is_canonical_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn document() -> Value {
        json!({
            "bootstrap_version": 3,
            "contract_version": 3,
            "issuer": "https://id.example/realms/r/",
            "token_endpoint": "https://id.example/realms/r/protocol/openid-connect/token",
            "identity_source": "OpenBox",
            "audience": "openbox-core",
            "client_id": "svc-1",
            "kid": "kid-1",
            "service_account_id": "2f1e0a8c-5b7d-4c3e-9a61-0d2b7e4f8c90",
            "activation_version": "0d2b7e4f-8c90-4c3e-9a61-2f1e0a8c5b7d",
        })
    }

    fn parsed(document: &Value) -> Result<Option<WorkloadDocument>, GovernanceApiError> {
        document_from_answer(200, document.to_string().as_bytes())
    }

    #[test]
    fn a_good_document_and_its_absence() {
        let doc = parsed(&document()).unwrap().unwrap();
        assert_eq!(doc.client_id, "svc-1");
        assert_eq!(
            doc.token_endpoint,
            "https://id.example/realms/r/protocol/openid-connect/token"
        );
        assert_eq!(document_from_answer(404, b"").unwrap(), None);
        let unavailable = br#"{"reason_code":"workload_identity_unavailable"}"#;
        assert_eq!(document_from_answer(409, unavailable).unwrap(), None);
        assert!(matches!(
            document_from_answer(409, b"{}"),
            Err(GovernanceApiError::Status { status: 409, .. })
        ));
        assert!(
            document_from_answer(403, b"")
                .unwrap_err()
                .is_unauthorized()
        );
    }

    #[test]
    fn every_defect_is_refused_by_name() {
        let cases: [(&str, Value, &str); 10] = [
            ("/bootstrap_version", json!(2), "bootstrap_version"),
            ("/contract_version", json!("3"), "contract_version"),
            ("/issuer", json!("http://id.example/realms/r"), "HTTPS"),
            (
                "/token_endpoint",
                json!("https://evil.example/realms/r/protocol/openid-connect/token"),
                "issuer",
            ),
            (
                "/token_endpoint",
                json!("https://u:p@id.example/realms/r/protocol/openid-connect/token"),
                "credentials",
            ),
            ("/issuer", json!("https://id.example/realms/r?x=1"), "query"),
            ("/identity_source", json!("ldap"), "identity_source"),
            (
                "/service_account_id",
                json!("2F1E0A8C-5B7D-4C3E-9A61-0D2B7E4F8C90"),
                "canonical UUID",
            ),
            ("/client_id", json!(" "), "client_id"),
            ("/kid", Value::Null, "kid"),
        ];
        for (pointer, value, said) in cases {
            let mut doc = document();
            *doc.pointer_mut(pointer).unwrap() = value;
            match parsed(&doc) {
                Err(GovernanceApiError::IdentityBootstrap(reason)) => {
                    assert!(reason.contains(said), "{pointer}: {reason}")
                }
                other => panic!("{pointer}: {other:?}"),
            }
        }
        let mut local = document();
        local["issuer"] = json!("http://127.0.0.1:8086/realms/r");
        local["token_endpoint"] =
            json!("http://127.0.0.1:8086/realms/r/protocol/openid-connect/token");
        assert!(
            parsed(&local).unwrap().is_some(),
            "http to loopback is allowed"
        );
    }

    #[test]
    fn token_answers() {
        let ok = br#"{"access_token":"t1","token_type":"Bearer","expires_in":120}"#;
        assert_eq!(
            token_from_answer(200, ok).unwrap(),
            ("t1".into(), Duration::from_secs(120))
        );
        for bad in [
            r#"{"access_token":"","token_type":"Bearer","expires_in":120}"#,
            r#"{"access_token":"t","token_type":"mac","expires_in":120}"#,
            r#"{"access_token":"t","token_type":"Bearer","expires_in":30}"#,
            r#"{"access_token":"t","token_type":"Bearer","expires_in":true}"#,
            r#"{"access_token":"t","token_type":"Bearer"}"#,
        ] {
            assert!(token_from_answer(200, bad.as_bytes()).is_err(), "{bad}");
        }
        let refused = token_from_answer(401, br#"{"error":"invalid_client"}"#).unwrap_err();
        assert!(refused.contains("HTTP 401 (invalid_client)"), "{refused}");
        assert_eq!(
            form_encode(JWT_BEARER),
            "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
        );
    }

    proptest! {
        #[test]
        fn any_answer_never_panics(status in 100u16..600, body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = document_from_answer(status, &body);
            let _ = token_from_answer(status, &body);
        }
    }
}
