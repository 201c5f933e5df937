//! Verification of Okta AI-agent assertions (agent identity v2), when the dev Core is started
//! with an agent's registration: every contract request must then come on the `/api/v2` routes
//! with an `X-OpenBox-Agent-Assertion` that verifies, and is refused with 401 and Core's reason
//! code when it does not.
//!
//! | Reason code | When |
//! |---|---|
//! | `assertion_missing` | no assertion header |
//! | `assertion_malformed` | not three base64url segments of JSON objects with the claims' types |
//! | `assertion_typ_mismatch` | `typ` is not `openbox-agent-proof+jwt` |
//! | `assertion_embedded_key_rejected` | the header names a key (`jwk`, `jku`, `x5u`, `x5c`) |
//! | `assertion_alg_rejected` | `alg` is not `RS256` |
//! | `assertion_key_too_small` | the registered key is under 2048 bits |
//! | `assertion_signature_invalid` | an unknown `kid`, or the RS256 signature does not verify |
//! | `method_endpoint_mismatch` | `htm`/`htu` are not the request's method and path |
//! | `proof_expired` | `exp - iat` over 60 s, or now outside `[iat - 30 s, exp + 30 s]` |
//! | `binding_invalid` | `aud`, `iss`/`sub`, the `obx_*` ids, the API key's or the body's SHA-256 differ |
//! | `proof_replayed` | the `jti` was accepted before |

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The header the assertion travels in.
pub const ASSERTION_HEADER: &str = "x-openbox-agent-assertion";
/// The JWT `typ` of an assertion.
const TYP: &str = "openbox-agent-proof+jwt";
/// The longest lifetime (`exp - iat`) accepted.
const MAX_LIFETIME: i64 = 60;
/// Clock difference tolerated on both sides.
const LEEWAY: i64 = 30;
/// The smallest RSA modulus accepted, in bits.
const MIN_KEY_BITS: usize = 2048;

/// An Okta agent as Core registers it: the fields of Core's v2 bootstrap document, and the
/// public keys of its credentials as a JWKS.
#[derive(Debug, Clone, Deserialize)]
pub struct OktaAgentRegistration {
    /// The OpenBox agent id.
    pub openbox_agent_id: String,
    /// The organization id.
    pub organization_id: String,
    /// The deployment id.
    pub deployment_id: String,
    /// The `aud` assertions must carry.
    pub assertion_audience: String,
    /// The agent at Okta.
    pub okta: OktaCredential,
    /// The public keys, by `kid` (RSA JWKs).
    pub jwks: Jwks,
}

/// The agent's Okta identity.
#[derive(Debug, Clone, Deserialize)]
pub struct OktaCredential {
    /// Okta's id of the agent (`iss`, `sub`).
    pub external_agent_id: String,
}

/// A JSON Web Key Set.
#[derive(Debug, Clone, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// One RSA public key.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Jwk {
    /// `RSA`.
    pub kty: String,
    /// The key id.
    pub kid: String,
    /// Modulus, unpadded base64url.
    pub n: String,
    /// Exponent, unpadded base64url.
    pub e: String,
}

/// A key ready to verify with.
#[derive(Debug)]
struct PublicKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

/// The agent whose assertions the dev Core checks.
#[derive(Debug)]
pub struct OktaVerifier {
    registration: OktaAgentRegistration,
    keys: HashMap<String, PublicKey>,
    /// Accepted `jti`s and when they stop mattering (their `exp` plus the leeway).
    seen: Mutex<HashMap<String, i64>>,
}

impl OktaVerifier {
    /// Checks the registration: non-empty ids, RSA keys whose `n` and `e` decode.
    pub fn new(registration: OktaAgentRegistration) -> Result<Self, String> {
        let ids = [
            ("openbox_agent_id", &registration.openbox_agent_id),
            ("organization_id", &registration.organization_id),
            ("deployment_id", &registration.deployment_id),
            ("assertion_audience", &registration.assertion_audience),
            (
                "okta.external_agent_id",
                &registration.okta.external_agent_id,
            ),
        ];
        if let Some((name, _)) = ids.iter().find(|(_, v)| v.trim().is_empty()) {
            return Err(format!("the Okta agent registration's {name} is empty"));
        }
        let mut keys = HashMap::new();
        for jwk in &registration.jwks.keys {
            if jwk.kty != "RSA" {
                return Err(format!("key {:?}: kty must be RSA", jwk.kid));
            }
            let decode = |what: &str, v: &str| {
                URL_SAFE_NO_PAD
                    .decode(v)
                    .map_err(|e| format!("key {:?}: {what} is not base64url: {e}", jwk.kid))
            };
            let key = PublicKey {
                n: decode("n", &jwk.n)?,
                e: decode("e", &jwk.e)?,
            };
            keys.insert(jwk.kid.clone(), key);
        }
        if keys.is_empty() {
            return Err("the Okta agent registration's jwks has no keys".into());
        }
        Ok(OktaVerifier {
            registration,
            keys,
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// Checks one request at time `now` (epoch seconds); `Err` is the reason code to refuse it
    /// with. `api_key` is the bearer key it carries.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        assertion: Option<&str>,
        api_key: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), &'static str> {
        self.verified_claims(method, path, assertion, api_key, body, now)
            .map(|_| ())
    }

    /// [`check`](Self::check), returning the verified claims (a transition proof's are read on).
    pub fn verified_claims(
        &self,
        method: &str,
        path: &str,
        assertion: Option<&str>,
        api_key: &str,
        body: &[u8],
        now: i64,
    ) -> Result<Map<String, Value>, &'static str> {
        let assertion = assertion.ok_or("assertion_missing")?;
        let mut parts = assertion.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("assertion_malformed");
        };
        let header = json_object(header)?;
        let claims = json_object(claims)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| "assertion_malformed")?;
        if header.get("typ").and_then(Value::as_str) != Some(TYP) {
            return Err("assertion_typ_mismatch");
        }
        if ["jwk", "jku", "x5u", "x5c"]
            .iter()
            .any(|k| header.contains_key(*k))
        {
            return Err("assertion_embedded_key_rejected");
        }
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err("assertion_alg_rejected");
        }
        let key = header
            .get("kid")
            .and_then(Value::as_str)
            .and_then(|kid| self.keys.get(kid))
            .ok_or("assertion_signature_invalid")?;
        let modulus_bits = key.n.iter().skip_while(|b| **b == 0).count() * 8;
        if modulus_bits < MIN_KEY_BITS {
            return Err("assertion_key_too_small");
        }
        verify_rs256(&key.n, &key.e, assertion, &signature)
            .map_err(|_| "assertion_signature_invalid")?;
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .ok_or("assertion_malformed")
        };
        let int = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_i64)
                .ok_or("assertion_malformed")
        };
        if text("htm")? != method.to_ascii_uppercase() || text("htu")? != path {
            return Err("method_endpoint_mismatch");
        }
        let (iat, exp) = (int("iat")?, int("exp")?);
        if exp < iat || exp - iat > MAX_LIFETIME || now < iat - LEEWAY || now > exp + LEEWAY {
            return Err("proof_expired");
        }
        let r = &self.registration;
        let bound = [
            ("aud", r.assertion_audience.as_str()),
            ("iss", &r.okta.external_agent_id),
            ("sub", &r.okta.external_agent_id),
            ("obx_agent_id", &r.openbox_agent_id),
            ("obx_organization_id", &r.organization_id),
            ("obx_deployment_id", &r.deployment_id),
            ("obx_api_key_sha256", &hex_sha256(api_key.as_bytes())),
            ("body_sha256", &hex_sha256(body)),
        ];
        for (name, expected) in bound {
            if text(name)? != expected {
                return Err("binding_invalid");
            }
        }
        let jti = text("jti")?;
        if jti.is_empty() {
            return Err("assertion_malformed");
        }
        // Only a verified assertion spends its jti, and each is remembered until it could no
        // longer be accepted anyway.
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, until| *until >= now);
        if seen.insert(jti.to_owned(), exp + LEEWAY).is_some() {
            return Err("proof_replayed");
        }
        drop(seen);
        Ok(claims)
    }

    /// Core's v2 bootstrap document for the agent: its ids, the first key as the selected
    /// credential (`kid` and RFC 7638 thumbprint), and a fixed `authority` (the dev Core has no
    /// provider history).
    pub fn bootstrap_document(&self) -> Value {
        let r = &self.registration;
        let selected = &r.jwks.keys[0];
        let canonical = format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            selected.e, selected.n
        );
        let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        serde_json::json!({
            "bootstrap_version": 1,
            "identity_method": "okta_ai_agent",
            "openbox_agent_id": r.openbox_agent_id,
            "organization_id": r.organization_id,
            "deployment_id": r.deployment_id,
            "assertion_audience": r.assertion_audience,
            "okta": {
                "external_agent_id": r.okta.external_agent_id,
                "credential_kid": selected.kid,
                "algorithm": "RS256",
                "public_jwk_thumbprint": thumbprint,
            },
            "authority": {
                "assignment_id": "dev-core",
                "provider_generation_id": "dev-core",
                "generation_number": 1,
                "activation_version": "1",
                "identity_id": r.okta.external_agent_id,
                "credential_id": selected.kid,
                "projection_version": "1",
            },
        })
    }

    /// The registration checked against.
    pub fn registration(&self) -> &OktaAgentRegistration {
        &self.registration
    }
}

/// Whether `signature` is the RS256 signature of the compact JWS `token`'s first two segments
/// under the key `n`, `e`.
pub(crate) fn verify_rs256(n: &[u8], e: &[u8], token: &str, signature: &[u8]) -> Result<(), ()> {
    let signed = &token[..token.rfind('.').unwrap_or(0)];
    RsaPublicKeyComponents { n, e }
        .verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), signature)
        .map_err(|_| ())
}

pub(crate) fn json_object(segment: &str) -> Result<Map<String, Value>, &'static str> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| "assertion_malformed")?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err("assertion_malformed"),
    }
}

pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
    use base64::engine::general_purpose::STANDARD;
    use serde_json::json;

    use super::*;

    const PATH: &str = "/api/v2/governance/evaluate";
    const API_KEY: &str = "obx_test_k1";
    const BODY: &[u8] = br#"{"event_type":"WorkflowStarted"}"#;
    const NOW: i64 = 1_800_000_000;

    /// The test key (`testdata/okta-agent-key.pem`).
    pub(crate) fn key() -> RsaKeyPair {
        let pem = include_str!("../testdata/okta-agent-key.pem");
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        RsaKeyPair::from_pkcs8(&STANDARD.decode(b64).unwrap()).unwrap()
    }

    fn registration(key: &RsaKeyPair) -> OktaAgentRegistration {
        let public = key.public_key();
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        serde_json::from_value(json!({
            "openbox_agent_id": "agent-1",
            "organization_id": "org-1",
            "deployment_id": "dep-1",
            "assertion_audience": "https://core.example",
            "okta": {"external_agent_id": "wlp-1"},
            "jwks": {"keys": [{
                "kty": "RSA",
                "kid": "kid-1",
                "n": b64(public.modulus().big_endian_without_leading_zero()),
                "e": b64(public.exponent().big_endian_without_leading_zero()),
            }]},
        }))
        .unwrap()
    }

    fn header() -> Value {
        json!({"alg": "RS256", "kid": "kid-1", "typ": TYP})
    }

    fn claims(jti: &str) -> Value {
        json!({
            "iss": "wlp-1", "sub": "wlp-1", "aud": "https://core.example",
            "obx_agent_id": "agent-1", "obx_organization_id": "org-1", "obx_deployment_id": "dep-1",
            "obx_api_key_sha256": hex_sha256(API_KEY.as_bytes()),
            "iat": NOW, "exp": NOW + 60, "jti": jti,
            "htm": "POST", "htu": PATH, "body_sha256": hex_sha256(BODY),
        })
    }

    /// A compact JWS of `header` and `claims`, RS256 with `key`.
    pub(crate) fn sign(key: &RsaKeyPair, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; key.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        key.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut signature)
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    #[test]
    fn a_good_assertion_passes_once() {
        let key = key();
        let verifier = OktaVerifier::new(registration(&key)).unwrap();
        let good = sign(&key, &header(), &claims("j1"));
        let check = |a: &str| verifier.check("post", PATH, Some(a), API_KEY, BODY, NOW + 5);
        assert_eq!(check(&good), Ok(()));
        assert_eq!(check(&good), Err("proof_replayed"));
        // A refused assertion does not spend its jti.
        let other = sign(&key, &header(), &claims("j2"));
        let refused = verifier.check("POST", PATH, Some(&other), API_KEY, b"{}", NOW);
        assert_eq!(refused, Err("binding_invalid"));
        assert_eq!(check(&other), Ok(()));
    }

    #[test]
    fn each_defect_has_its_reason_code() {
        let key = key();
        let verifier = OktaVerifier::new(registration(&key)).unwrap();
        let with = |field: &str, value: Value| {
            let mut c = claims(field);
            c[field] = value;
            sign(&key, &header(), &c)
        };
        let with_header = |field: &str, value: Value| {
            let mut h = header();
            h[field] = value;
            sign(&key, &h, &claims(field))
        };
        let good = sign(&key, &header(), &claims("tampered"));
        let tampered = {
            let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
            let mut c = claims("tampered");
            c["aud"] = json!("https://attacker.example");
            parts[1] = URL_SAFE_NO_PAD.encode(c.to_string());
            parts.join(".")
        };
        let cases: Vec<(Option<String>, &str, &str)> = vec![
            (None, PATH, "assertion_missing"),
            (Some("a.b".into()), PATH, "assertion_malformed"),
            (Some("!!.!!.!!".into()), PATH, "assertion_malformed"),
            (
                Some(with_header("typ", json!("JWT"))),
                PATH,
                "assertion_typ_mismatch",
            ),
            (
                Some(with_header("jwk", json!({}))),
                PATH,
                "assertion_embedded_key_rejected",
            ),
            (
                Some(with_header("alg", json!("none"))),
                PATH,
                "assertion_alg_rejected",
            ),
            (
                Some(with_header("kid", json!("other"))),
                PATH,
                "assertion_signature_invalid",
            ),
            (Some(tampered), PATH, "assertion_signature_invalid"),
            (
                Some(with("htu", json!("/api/v2/governance/approval"))),
                PATH,
                "method_endpoint_mismatch",
            ),
            (
                Some(good.clone()),
                "/api/v2/governance/approval",
                "method_endpoint_mismatch",
            ),
            (
                Some(with("htm", json!("GET"))),
                PATH,
                "method_endpoint_mismatch",
            ),
            (Some(with("exp", json!(NOW - 31))), PATH, "proof_expired"),
            (Some(with("exp", json!(NOW + 600))), PATH, "proof_expired"),
            (Some(with("iat", json!(NOW + 40))), PATH, "proof_expired"),
            (
                Some(with("aud", json!("https://other.example"))),
                PATH,
                "binding_invalid",
            ),
            (
                Some(with("body_sha256", json!(hex_sha256(b"{}")))),
                PATH,
                "binding_invalid",
            ),
            (
                Some(with(
                    "obx_api_key_sha256",
                    json!(hex_sha256(b"obx_test_other")),
                )),
                PATH,
                "binding_invalid",
            ),
            (Some(with("sub", json!("wlp-2"))), PATH, "binding_invalid"),
            (
                Some(with("obx_agent_id", json!("agent-2"))),
                PATH,
                "binding_invalid",
            ),
            (Some(with("iat", json!("now"))), PATH, "assertion_malformed"),
        ];
        for (assertion, path, code) in cases {
            let got = verifier.check("POST", path, assertion.as_deref(), API_KEY, BODY, NOW);
            assert_eq!(got, Err(code), "{assertion:?} on {path}");
        }
        // The replay memory never saw any of them.
        assert_eq!(
            verifier.check("POST", PATH, Some(&good), API_KEY, BODY, NOW),
            Ok(())
        );
    }

    #[test]
    fn a_small_registered_key_is_refused_by_its_size() {
        let key = key();
        let mut small = registration(&key);
        let n = URL_SAFE_NO_PAD.decode(&small.jwks.keys[0].n).unwrap();
        small.jwks.keys[0].n = URL_SAFE_NO_PAD.encode(&n[..128]);
        let verifier = OktaVerifier::new(small).unwrap();
        let a = sign(&key, &header(), &claims("s"));
        assert_eq!(
            verifier.check("POST", PATH, Some(&a), API_KEY, BODY, NOW),
            Err("assertion_key_too_small")
        );
        let mut empty = registration(&key);
        empty.jwks.keys.clear();
        assert!(OktaVerifier::new(empty).is_err());
        let mut blank = registration(&key);
        blank.assertion_audience = " ".into();
        assert!(
            OktaVerifier::new(blank)
                .unwrap_err()
                .contains("assertion_audience")
        );
    }
}
