//! Signed requests (agent identity v1): every request to Core carries the agent's DID and an
//! Ed25519 signature over what is sent, so Core can tell which agent spoke and that nobody
//! changed a byte on the way.
//!
//! The signature covers the canonical string `METHOD\nPATH\nTIMESTAMP\nNONCE\nBODY_SHA256` —
//! upper-case method, the URL path only (`/api/v1/...`, no host or query), an ISO-8601 UTC
//! timestamp that ends in `+00:00`, 24 random bytes as unpadded base64url, and the lowercase hex
//! SHA-256 of the exact body bytes (of nothing for a GET). It travels in the
//! `X-OpenBox-Agent-*` and `X-OpenBox-Body-SHA256` headers. Core accepts a timestamp within
//! ±300 s and each nonce once, so every send — a retry, a late delivery from the spool — is
//! signed afresh.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::Signer;
use sha2::{Digest, Sha256};

use crate::config::AgentIdentity;

/// The DID header.
pub const HEADER_DID: &str = "X-OpenBox-Agent-DID";
/// The signing-time header.
pub const HEADER_TIMESTAMP: &str = "X-OpenBox-Agent-Timestamp";
/// The nonce header.
pub const HEADER_NONCE: &str = "X-OpenBox-Agent-Nonce";
/// The signature header.
pub const HEADER_SIGNATURE: &str = "X-OpenBox-Agent-Signature";
/// The body hash header.
pub const HEADER_BODY_SHA256: &str = "X-OpenBox-Body-SHA256";

impl AgentIdentity {
    /// The five headers of a request `method path` with `body`, signed now with a fresh nonce.
    pub(crate) fn sign(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> [(&'static str, String); 5] {
        let timestamp = signing_timestamp(chrono::Utc::now());
        self.sign_with(method, path, body, &timestamp, &new_nonce())
    }

    fn sign_with(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        timestamp: &str,
        nonce: &str,
    ) -> [(&'static str, String); 5] {
        let body_sha256 = hex_sha256(body);
        let canonical = canonical_string(method, path, timestamp, nonce, &body_sha256);
        let signature = STANDARD.encode(self.key().sign(canonical.as_bytes()).to_bytes());
        [
            (HEADER_DID, self.did().to_owned()),
            (HEADER_TIMESTAMP, timestamp.to_owned()),
            (HEADER_NONCE, nonce.to_owned()),
            (HEADER_SIGNATURE, signature),
            (HEADER_BODY_SHA256, body_sha256),
        ]
    }
}

/// The exact string that is signed.
pub fn canonical_string(
    method: &str,
    path: &str,
    timestamp: &str,
    nonce: &str,
    body_sha256: &str,
) -> String {
    [
        &method.to_ascii_uppercase(),
        path,
        timestamp,
        nonce,
        body_sha256,
    ]
    .join("\n")
}

/// Lowercase hex SHA-256.
pub fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `2026-11-30T07:46:51.578629+00:00`: microseconds (none when zero), `+00:00`, never `Z` —
/// the form Core verifies.
fn signing_timestamp(now: chrono::DateTime<chrono::Utc>) -> String {
    let micros = now.timestamp_subsec_micros();
    let base = now.format("%Y-%m-%dT%H:%M:%S");
    if micros == 0 {
        format!("{base}+00:00")
    } else {
        format!("{base}.{micros:06}+00:00")
    }
}

/// 24 random bytes as unpadded base64url (32 characters): a nonce, or an assertion's `jti`.
pub(super) fn new_nonce() -> String {
    let mut bytes = [0u8; 24];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness is close to impossible; a unique nonce still keeps Core's replay
        // check meaningful (the signature, not the nonce, is the secret part).
        for chunk in bytes.chunks_mut(8) {
            let n = crate::ids::random_u64().to_le_bytes();
            chunk.copy_from_slice(&n[..chunk.len()]);
        }
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signature, Verifier};

    use super::*;

    const DID: &str = "did:aip:2f1e0a8c-5b7d-4c3e-9a61-0d2b7e4f8c90";

    fn key_b64() -> String {
        STANDARD.encode([7u8; 32])
    }

    #[test]
    fn signs_the_canonical_string_of_the_exact_body() {
        let id = AgentIdentity::new(DID, &key_b64()).unwrap();
        let body = br#"{"event_type":"WorkflowStarted"}"#;
        let headers = id.sign_with("post", "/api/v1/governance/evaluate", body, "T", "N");
        let get = |name: &str| headers.iter().find(|(n, _)| *n == name).unwrap().1.clone();
        assert_eq!(get(HEADER_DID), DID);
        assert_eq!(get(HEADER_BODY_SHA256), hex_sha256(body));
        let canonical = format!(
            "POST\n/api/v1/governance/evaluate\nT\nN\n{}",
            hex_sha256(body)
        );
        let signature = STANDARD.decode(get(HEADER_SIGNATURE)).unwrap();
        assert_eq!(get(HEADER_SIGNATURE).len(), 88);
        let signature = Signature::from_slice(&signature).unwrap();
        let public = id.key().verifying_key();
        public.verify(canonical.as_bytes(), &signature).unwrap();
        assert_eq!(
            hex_sha256(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn fresh_nonces_and_the_reference_timestamp_form() {
        let id = AgentIdentity::new(DID, &key_b64()).unwrap();
        let a = id.sign("GET", "/api/v1/auth/validate", b"");
        let b = id.sign("GET", "/api/v1/auth/validate", b"");
        assert_ne!(a[2].1, b[2].1, "a nonce is never reused");
        assert_eq!(a[2].1.len(), 32);
        assert!(a[1].1.ends_with("+00:00"), "{}", a[1].1);
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-30T07:46:51.578629Z").unwrap();
        assert_eq!(
            signing_timestamp(t.with_timezone(&chrono::Utc)),
            "2026-11-30T07:46:51.578629+00:00"
        );
        let whole = chrono::DateTime::parse_from_rfc3339("2026-11-30T07:46:51Z").unwrap();
        assert_eq!(
            signing_timestamp(whole.with_timezone(&chrono::Utc)),
            "2026-11-30T07:46:51+00:00"
        );
    }
}
