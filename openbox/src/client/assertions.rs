//! The RS256 JWS the identity modes send. Agent identity v2 (Okta AI agent): each request to
//! Core carries one header,
//! `X-OpenBox-Agent-Assertion`, a compact JWS (RS256) binding the request to the agent — its
//! method and path, the SHA-256 of the exact body bytes, the SHA-256 of the bearer API key — for
//! 60 seconds, under a random `jti` Core accepts once.
//!
//! Header and claims are serialized as the reference SDK does — keys sorted, no whitespace,
//! everything outside printable ASCII escaped as `\uXXXX` — so that the same key, clock and `jti`
//! give the same assertion, byte for byte, in every SDK (the golden test checks it against
//! assertions the Python SDK made).
//!
//! Workload identity v3: the client assertion (RFC 7523 `private_key_jwt`) exchanged at the
//! token endpoint Core's bootstrap document names, serialized the same way.
//!

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[cfg(feature = "okta-identity")]
use super::signing::hex_sha256;
use super::signing::new_nonce;
#[cfg(feature = "okta-identity")]
use crate::config::okta::OktaAgentIdentity;
use crate::config::rsa_key::{ALGORITHM, RsaSigningKey};

/// The header an assertion travels in.
#[cfg(feature = "okta-identity")]
pub const HEADER_ASSERTION: &str = "X-OpenBox-Agent-Assertion";

/// The JWT `typ` of an assertion.
#[cfg(feature = "okta-identity")]
pub(crate) const JWT_TYP: &str = "openbox-agent-proof+jwt";
/// `exp - iat` of both assertions: the longest lifetime Core accepts.
pub(crate) const LIFETIME_SECONDS: i64 = 60;

/// A claim's value: assertions hold strings and integers only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claim {
    Text(String),
    Int(i64),
}

impl From<&str> for Claim {
    fn from(text: &str) -> Claim {
        Claim::Text(text.to_owned())
    }
}

/// One request to sign.
#[cfg(feature = "okta-identity")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignedRequest<'a> {
    /// The bearer API key the request carries (only its SHA-256 is in the assertion).
    pub(crate) api_key: &'a str,
    /// The HTTP method (upper-cased into `htm`).
    pub(crate) method: &'a str,
    /// The URL path only, `/api/v2/...`: no host, no query.
    pub(crate) path: &'a str,
    /// The exact body bytes sent (empty for a GET).
    pub(crate) body: &'a [u8],
}

#[cfg(feature = "okta-identity")]
/// The assertion for `request`, issued at `iat` (epoch seconds) under `jti`. `extra` adds claims
/// (the transition proof's three).
pub(crate) fn assertion(
    identity: &OktaAgentIdentity,
    request: SignedRequest<'_>,
    jti: &str,
    iat: i64,
    extra: &[(&str, Claim)],
) -> String {
    let header = BTreeMap::from([
        ("alg", Claim::from(ALGORITHM)),
        ("kid", Claim::from(identity.ids.key_id.as_str())),
        ("typ", Claim::from(JWT_TYP)),
    ]);
    let mut claims = BTreeMap::from([
        ("iss", Claim::from(identity.ids.external_agent_id.as_str())),
        ("sub", Claim::from(identity.ids.external_agent_id.as_str())),
        ("aud", Claim::from(identity.ids.audience.as_str())),
        (
            "obx_deployment_id",
            Claim::from(identity.ids.deployment_id.as_str()),
        ),
        (
            "obx_organization_id",
            Claim::from(identity.ids.organization_id.as_str()),
        ),
        (
            "obx_agent_id",
            Claim::from(identity.ids.openbox_agent_id.as_str()),
        ),
        (
            "obx_api_key_sha256",
            Claim::Text(hex_sha256(request.api_key.as_bytes())),
        ),
        ("iat", Claim::Int(iat)),
        ("exp", Claim::Int(iat.saturating_add(LIFETIME_SECONDS))),
        ("jti", Claim::from(jti)),
        ("htm", Claim::Text(request.method.to_ascii_uppercase())),
        ("htu", Claim::from(request.path)),
        ("body_sha256", Claim::Text(hex_sha256(request.body))),
    ]);
    for (name, value) in extra {
        claims.insert(name, value.clone());
    }
    compact_jws(&header, &claims, &identity.key)
}

#[cfg(feature = "okta-identity")]
/// The assertion for `request`, issued now under a fresh `jti` — made at each send, so that a
/// retry or a late delivery from the spool is never refused as a replay.
pub(crate) fn assertion_now(identity: &OktaAgentIdentity, request: SignedRequest<'_>) -> String {
    let iat = chrono::Utc::now().timestamp();
    assertion(identity, request, &new_nonce(), iat, &[])
}

/// The workload identity's client assertion for `client_id` at `token_endpoint`, under the
/// bootstrap document's `kid`, issued at `iat` under `jti`.
#[cfg(feature = "workload-identity")]
pub(crate) fn workload_client_assertion(
    key: &RsaSigningKey,
    kid: &str,
    client_id: &str,
    token_endpoint: &str,
    jti: &str,
    iat: i64,
) -> String {
    let header = BTreeMap::from([
        ("alg", Claim::from(ALGORITHM)),
        ("kid", Claim::from(kid)),
        ("typ", Claim::from("JWT")),
    ]);
    let claims = BTreeMap::from([
        ("aud", Claim::from(token_endpoint)),
        ("exp", Claim::Int(iat.saturating_add(LIFETIME_SECONDS))),
        ("iat", Claim::Int(iat)),
        ("iss", Claim::from(client_id)),
        ("jti", Claim::from(jti)),
        ("sub", Claim::from(client_id)),
    ]);
    compact_jws(&header, &claims, key)
}

/// The client assertion for `client_id` at `token_endpoint`, issued now under a fresh `jti`.
#[cfg(feature = "workload-identity")]
pub(crate) fn workload_client_assertion_now(
    key: &RsaSigningKey,
    kid: &str,
    client_id: &str,
    token_endpoint: &str,
) -> String {
    let iat = chrono::Utc::now().timestamp();
    workload_client_assertion(key, kid, client_id, token_endpoint, &new_nonce(), iat)
}

/// `header.claims.signature`, each unpadded base64url; RS256 over the first two.
fn compact_jws(
    header: &BTreeMap<&str, Claim>,
    claims: &BTreeMap<&str, Claim>,
    key: &RsaSigningKey,
) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(canonical_json(header)),
        URL_SAFE_NO_PAD.encode(canonical_json(claims))
    );
    let signature = URL_SAFE_NO_PAD.encode(key.sign(signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

/// A flat JSON object as the reference writes it: keys in order (a `BTreeMap`'s: byte order,
/// which is code-point order), `,` and `:` without spaces, strings ASCII-only.
fn canonical_json(object: &BTreeMap<&str, Claim>) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in object.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(&mut out, name);
        out.push(':');
        match value {
            Claim::Text(text) => push_json_string(&mut out, text),
            Claim::Int(n) => {
                let _ = write!(out, "{n}");
            }
        }
    }
    out.push('}');
    out
}

/// A JSON string with only printable ASCII left as is: `"` and `\` escaped, the five short
/// control escapes, everything else as `\u` and four lowercase hex digits (UTF-16 surrogate
/// pairs beyond the BMP).
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            other => {
                let mut units = [0u16; 2];
                for unit in other.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    #[cfg(feature = "okta-identity")]
    use crate::config::okta::tests::golden_identity;
    use crate::config::rsa_key::tests::golden;
    #[cfg(feature = "workload-identity")]
    use crate::config::rsa_key::tests::golden_key;

    #[cfg(feature = "okta-identity")]
    #[test]
    fn assertions_are_byte_identical_to_the_references() {
        let g = golden();
        let identity = golden_identity();
        let cases = g["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 3);
        for case in cases {
            let text = |k: &str| case[k].as_str().unwrap();
            let extra: Vec<(&str, Claim)> = case["extra_claims"]
                .as_object()
                .map(|claims| {
                    claims
                        .iter()
                        .map(|(k, v)| (k.as_str(), Claim::from(v.as_str().unwrap())))
                        .collect()
                })
                .unwrap_or_default();
            let request = SignedRequest {
                api_key: g["api_key"].as_str().unwrap(),
                method: text("method"),
                path: text("path"),
                body: text("body").as_bytes(),
            };
            let made = assertion(
                &identity,
                request,
                text("jti"),
                case["iat"].as_i64().unwrap(),
                &extra,
            );
            assert_eq!(made, text("assertion"), "{}", text("path"));
        }
    }

    #[cfg(feature = "workload-identity")]
    #[test]
    fn client_assertions_are_byte_identical_to_the_references() {
        let g = &golden()["workload"];
        let text = |k: &str| g[k].as_str().unwrap();
        let made = workload_client_assertion(
            &golden_key(),
            text("kid"),
            text("client_id"),
            text("token_endpoint"),
            text("jti"),
            g["iat"].as_i64().unwrap(),
        );
        assert_eq!(made, text("assertion"));
    }

    #[test]
    fn strings_escape_as_the_reference_does() {
        let mut out = String::new();
        push_json_string(&mut out, "a\u{e4}\u{20ac}\u{1f600}\u{7f}\u{1}<&>\"\\\t/");
        assert_eq!(out, r#""a\u00e4\u20ac\ud83d\ude00\u007f\u0001<&>\"\\\t/""#);
    }

    proptest! {
        #[test]
        fn any_string_round_trips_as_ascii_json(text in any::<String>()) {
            let mut out = String::new();
            push_json_string(&mut out, &text);
            prop_assert!(out.bytes().all(|b| (b' '..=b'~').contains(&b)), "{}", out);
            let back: String = serde_json::from_str(&out).unwrap();
            prop_assert_eq!(back, text);
        }
    }
}
