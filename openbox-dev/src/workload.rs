//! The workload identity (agent identity v3), when the dev Core is started with a service
//! account's registration: it advertises the account at `GET /api/v3/auth/bootstrap`, plays the
//! identity provider's token endpoint (an RFC 7523 client assertion in, a short-lived opaque
//! token out), and serves the `/api/v3` routes to requests carrying a live token in
//! `X-OpenBox-Workload-Token`.
//!
//! | Where | Answer | When |
//! |---|---|---|
//! | token endpoint | 400 `unsupported_grant_type` | not `client_credentials` with a JWT-bearer assertion |
//! | token endpoint | 401 `invalid_client` | another `client_id`; a malformed assertion, another `typ`, `alg` or `kid`, a signature that does not verify, `iss`/`sub`/`aud` not the account's and this endpoint's, a lifetime over 60 s, an expired or future assertion, a replayed `jti` |
//! | `/api/v3` routes | 401 `workload_token_missing` / `workload_token_invalid` / `workload_token_expired` | no token; one never issued; one past its lifetime |

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::okta::{Jwk, json_object, verify_rs256};

/// The realm the dev Core's token endpoint lives under.
pub const REALM_PATH: &str = "/realms/openbox-dev";
/// The token endpoint's path.
pub const TOKEN_PATH: &str = "/realms/openbox-dev/protocol/openid-connect/token";
/// The header the token travels in.
pub const TOKEN_HEADER: &str = "x-openbox-workload-token";
/// The longest client assertion lifetime accepted.
const MAX_LIFETIME: i64 = 60;
/// Clock difference tolerated on both sides.
const LEEWAY: i64 = 30;
/// `client_assertion_type` of RFC 7523.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A service account as Core advertises it, and its public key.
#[derive(Debug, Clone, Deserialize)]
pub struct WorkloadRegistration {
    /// The account's client id (`iss` and `sub` of its assertions).
    pub client_id: String,
    /// Its public key (`kid`, `n`, `e`).
    pub jwk: Jwk,
    /// The audience Core names (advertised, not checked by the SDK).
    #[serde(default = "default_audience")]
    pub audience: String,
    /// `openbox`, `okta` or `entra`.
    #[serde(default = "default_source")]
    pub identity_source: String,
    /// The account's id (a UUID).
    #[serde(default = "default_uuid")]
    pub service_account_id: String,
    /// The activation's version (a UUID).
    #[serde(default = "default_uuid")]
    pub activation_version: String,
    /// `expires_in` of the tokens issued, in seconds (more than 30).
    #[serde(default = "default_lifetime")]
    pub token_lifetime_seconds: i64,
}

fn default_audience() -> String {
    "openbox-core".into()
}
fn default_source() -> String {
    "openbox".into()
}
fn default_uuid() -> String {
    "00000000-0000-4000-8000-000000000000".into()
}
fn default_lifetime() -> i64 {
    300
}

/// The dev Core's side of the workload identity.
#[derive(Debug)]
pub struct WorkloadVerifier {
    registration: WorkloadRegistration,
    n: Vec<u8>,
    e: Vec<u8>,
    /// Issued tokens and when they expire (epoch seconds).
    tokens: Mutex<HashMap<String, i64>>,
    /// Accepted assertion `jti`s and when they stop mattering.
    jtis: Mutex<HashMap<String, i64>>,
    exchanges: AtomicU64,
}

impl WorkloadVerifier {
    /// Checks the registration.
    pub fn new(registration: WorkloadRegistration) -> Result<Self, String> {
        if registration.client_id.trim().is_empty() {
            return Err("the workload registration's client_id is empty".into());
        }
        if registration.token_lifetime_seconds <= 30 {
            return Err("token_lifetime_seconds must be more than 30".into());
        }
        let decode = |what: &str, v: &str| {
            URL_SAFE_NO_PAD
                .decode(v)
                .map_err(|e| format!("the workload key's {what} is not base64url: {e}"))
        };
        Ok(WorkloadVerifier {
            n: decode("n", &registration.jwk.n)?,
            e: decode("e", &registration.jwk.e)?,
            registration,
            tokens: Mutex::new(HashMap::new()),
            jtis: Mutex::new(HashMap::new()),
            exchanges: AtomicU64::new(0),
        })
    }

    /// Tokens issued so far.
    pub fn exchanges(&self) -> u64 {
        self.exchanges.load(Ordering::Relaxed)
    }

    /// Core's v3 bootstrap document, the issuer under `base` (`http://host:port`).
    pub fn bootstrap_document(&self, base: &str) -> Value {
        let r = &self.registration;
        let issuer = format!("{base}{REALM_PATH}");
        json!({
            "bootstrap_version": 3,
            "contract_version": 3,
            "issuer": issuer,
            "token_endpoint": format!("{base}{TOKEN_PATH}"),
            "identity_source": r.identity_source,
            "audience": r.audience,
            "client_id": r.client_id,
            "kid": r.jwk.kid,
            "service_account_id": r.service_account_id,
            "activation_version": r.activation_version,
        })
    }

    /// The token endpoint: `form` is the request body, `endpoint` this endpoint's URL as
    /// advertised, `now` epoch seconds. `Err` is the status and OAuth error code.
    pub fn exchange(
        &self,
        form: &[u8],
        endpoint: &str,
        now: i64,
    ) -> Result<Value, (u16, &'static str)> {
        let fields: HashMap<String, String> =
            url::form_urlencoded::parse(form).into_owned().collect();
        let field = |name: &str| fields.get(name).map(String::as_str);
        if field("grant_type") != Some("client_credentials")
            || field("client_assertion_type") != Some(JWT_BEARER)
        {
            return Err((400, "unsupported_grant_type"));
        }
        let invalid = (401, "invalid_client");
        if field("client_id") != Some(self.registration.client_id.as_str()) {
            return Err(invalid);
        }
        let assertion = field("client_assertion").ok_or(invalid)?;
        if !self.verify_assertion(assertion, endpoint, now) {
            return Err(invalid);
        }
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| (500, "server_error"))?;
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let lifetime = self.registration.token_lifetime_seconds;
        {
            let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
            tokens.retain(|_, expiry| *expiry >= now);
            tokens.insert(token.clone(), now + lifetime);
        }
        self.exchanges.fetch_add(1, Ordering::Relaxed);
        Ok(json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime}))
    }

    /// Whether `assertion` is the account's RFC 7523 client assertion for `endpoint` at `now`
    /// (its `jti` then spent).
    pub fn verify_assertion(&self, assertion: &str, endpoint: &str, now: i64) -> bool {
        self.check_assertion(assertion, endpoint, now).is_ok()
    }

    fn check_assertion(&self, assertion: &str, endpoint: &str, now: i64) -> Result<(), ()> {
        let invalid = ();
        let r = &self.registration;
        let parts: Vec<&str> = assertion.split('.').collect();
        let [header, claims, signature] = parts[..] else {
            return Err(invalid);
        };
        let header = json_object(header).map_err(|_| invalid)?;
        let claims = json_object(claims).map_err(|_| invalid)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| invalid)?;
        let text = |map: &serde_json::Map<String, Value>, k: &str| {
            map.get(k).and_then(Value::as_str).map(str::to_owned)
        };
        if text(&header, "typ").as_deref() != Some("JWT")
            || text(&header, "alg").as_deref() != Some("RS256")
            || text(&header, "kid").as_deref() != Some(r.jwk.kid.as_str())
        {
            return Err(invalid);
        }
        verify_rs256(&self.n, &self.e, assertion, &signature).map_err(|_| invalid)?;
        let client = Some(r.client_id.clone());
        if text(&claims, "iss") != client
            || text(&claims, "sub") != client
            || text(&claims, "aud").as_deref() != Some(endpoint)
        {
            return Err(invalid);
        }
        let int = |k: &str| claims.get(k).and_then(Value::as_i64).ok_or(invalid);
        let (iat, exp) = (int("iat")?, int("exp")?);
        if exp < iat || exp - iat > MAX_LIFETIME || now < iat - LEEWAY || now > exp + LEEWAY {
            return Err(invalid);
        }
        let jti = text(&claims, "jti")
            .filter(|j| !j.is_empty())
            .ok_or(invalid)?;
        {
            let mut jtis = self.jtis.lock().unwrap_or_else(|p| p.into_inner());
            jtis.retain(|_, until| *until >= now);
            if jtis.insert(jti, exp + LEEWAY).is_some() {
                return Err(invalid);
            }
        }
        Ok(())
    }

    /// A workload transition's document: the account as the candidate, its token endpoint under
    /// `base`.
    pub fn transition_document(&self, base: &str, transition_id: &str) -> Value {
        let r = &self.registration;
        let expires_at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
        json!({
            "bootstrap_version": 3,
            "contract_version": 3,
            "transition_id": transition_id,
            "token_endpoint": format!("{base}{TOKEN_PATH}"),
            "client_id": r.client_id,
            "kid": r.jwk.kid,
            "identity_source": r.identity_source,
            "expires_at": expires_at,
        })
    }

    /// Checks a `/api/v3` request's token at `now`; `expire_all` treats every token presented as
    /// expired, for good (the fault `expire_workload_tokens`). `Err` is the reason code.
    pub fn check_token(
        &self,
        token: Option<&str>,
        now: i64,
        expire_all: bool,
    ) -> Result<(), &'static str> {
        let token = token.ok_or("workload_token_missing")?;
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        match tokens.get(token) {
            None => Err("workload_token_invalid"),
            Some(expiry) if expire_all || *expiry < now => {
                // Expired for good: a token refused once is never accepted again.
                tokens.remove(token);
                Err("workload_token_expired")
            }
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{KeyPair, RsaKeyPair};

    use super::*;
    use crate::okta::tests::{key, sign};

    const ENDPOINT: &str = "http://127.0.0.1:1/realms/openbox-dev/protocol/openid-connect/token";
    const NOW: i64 = 1_800_000_000;

    fn verifier(key: &RsaKeyPair) -> WorkloadVerifier {
        let public = key.public_key();
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        WorkloadVerifier::new(
            serde_json::from_value(json!({
                "client_id": "svc-1",
                "jwk": {
                    "kty": "RSA", "kid": "wk-1",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                },
                "token_lifetime_seconds": 120,
            }))
            .unwrap(),
        )
        .unwrap()
    }

    fn assertion(key: &RsaKeyPair, header: Value, claims: Value) -> String {
        sign(key, &header, &claims)
    }

    fn form(client_id: &str, assertion: &str) -> Vec<u8> {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", client_id)
            .append_pair("client_assertion_type", JWT_BEARER)
            .append_pair("client_assertion", assertion)
            .finish()
            .into_bytes()
    }

    fn claims(jti: &str) -> Value {
        json!({"iss": "svc-1", "sub": "svc-1", "aud": ENDPOINT, "iat": NOW, "exp": NOW + 60, "jti": jti})
    }

    fn header() -> Value {
        json!({"alg": "RS256", "kid": "wk-1", "typ": "JWT"})
    }

    #[test]
    fn an_assertion_buys_one_token_that_lives_its_lifetime() {
        let key = key();
        let v = verifier(&key);
        let good = form("svc-1", &assertion(&key, header(), claims("j1")));
        let answer = v.exchange(&good, ENDPOINT, NOW).unwrap();
        assert_eq!(answer["expires_in"], 120);
        let token = answer["access_token"].as_str().unwrap();
        assert_eq!(v.check_token(Some(token), NOW + 119, false), Ok(()));
        assert_eq!(
            v.check_token(Some(token), NOW + 121, false),
            Err("workload_token_expired")
        );
        assert_eq!(
            v.check_token(Some(token), NOW, false),
            Err("workload_token_invalid"),
            "an expired token is gone"
        );
        assert_eq!(
            v.check_token(Some("forged"), NOW, false),
            Err("workload_token_invalid")
        );
        assert_eq!(
            v.check_token(None, NOW, false),
            Err("workload_token_missing")
        );
        assert_eq!(
            v.exchange(&good, ENDPOINT, NOW),
            Err((401, "invalid_client")),
            "replayed"
        );
        let again = form("svc-1", &assertion(&key, header(), claims("j2")));
        let answer = v.exchange(&again, ENDPOINT, NOW).unwrap();
        let token = answer["access_token"].as_str().unwrap();
        assert_eq!(
            v.check_token(Some(token), NOW, true),
            Err("workload_token_expired"),
            "the fault"
        );
        assert_eq!(
            v.check_token(Some(token), NOW, false),
            Err("workload_token_invalid")
        );
        assert_eq!(v.exchanges(), 2);
    }

    #[test]
    fn bad_assertions_are_invalid_clients() {
        let key = key();
        let v = verifier(&key);
        let with = |field: &str, value: Value| {
            let mut c = claims(field);
            c[field] = value;
            form("svc-1", &assertion(&key, header(), c))
        };
        let mut typ = header();
        typ["typ"] = json!("openbox-agent-proof+jwt");
        let cases = [
            with("aud", json!("http://127.0.0.1:1/other")),
            with("iss", json!("svc-2")),
            with("exp", json!(NOW + 600)),
            with("iat", json!(NOW - 200)),
            form("svc-2", &assertion(&key, header(), claims("x"))),
            form("svc-1", &assertion(&key, typ, claims("y"))),
            form("svc-1", "a.b.c"),
        ];
        for case in cases {
            assert_eq!(
                v.exchange(&case, ENDPOINT, NOW),
                Err((401, "invalid_client"))
            );
        }
        assert_eq!(
            v.exchange(b"grant_type=password", ENDPOINT, NOW),
            Err((400, "unsupported_grant_type"))
        );
        assert_eq!(v.exchanges(), 0);
    }
}
