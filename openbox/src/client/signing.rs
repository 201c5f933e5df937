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

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

use crate::error::ConfigError;

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

/// The prefix of an agent DID; the rest is a UUID.
pub const AGENT_DID_PREFIX: &str = "did:aip:";

/// An agent's DID and Ed25519 signing key. `Debug` shows the DID only: the key never reaches a
/// log, an error message or a workflow history.
#[derive(Clone)]
pub struct AgentIdentity {
    did: String,
    key: SigningKey,
}

impl fmt::Debug for AgentIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentIdentity")
            .field("did", &self.did)
            .field("key", &"<ed25519 key>")
            .finish()
    }
}

fn invalid(reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidOption {
        option: "agent_identity",
        reason: reason.into(),
    }
}

impl AgentIdentity {
    /// `did` is `did:aip:<uuid>`; `private_key` is the standard base64 of the raw 32-byte Ed25519
    /// seed the agent was provisioned with (not PKCS#8). Errors never contain key material.
    pub fn new(did: &str, private_key: &str) -> Result<Self, ConfigError> {
        let did = did.trim();
        let suffix = did
            .strip_prefix(AGENT_DID_PREFIX)
            .ok_or_else(|| invalid("the agent DID must look like did:aip:<uuid>"))?;
        if !is_uuid(suffix) {
            return Err(invalid(
                "the part of the agent DID after did:aip: is not a UUID",
            ));
        }
        let seed = STANDARD
            .decode(private_key.trim())
            .map_err(|_| invalid("the agent private key is not valid base64 (key not shown)"))?;
        let seed: [u8; 32] = seed.as_slice().try_into().map_err(|_| {
            invalid(format!(
                "the agent private key must be a 32-byte Ed25519 seed, got {} bytes (key not shown)",
                seed.len()
            ))
        })?;
        Ok(AgentIdentity {
            did: did.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The agent's DID.
    pub fn did(&self) -> &str {
        &self.did
    }

    /// The public half of the key, as standard base64 (what Core, or the dev Core, verifies
    /// with).
    pub fn public_key_base64(&self) -> String {
        STANDARD.encode(self.key.verifying_key().as_bytes())
    }

    /// The five headers of a request `method path` with `body`, signed now with a fresh nonce.
    pub fn sign(&self, method: &str, path: &str, body: &[u8]) -> [(&'static str, String); 5] {
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
        let signature = STANDARD.encode(self.key.sign(canonical.as_bytes()).to_bytes());
        [
            (HEADER_DID, self.did.clone()),
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

/// 24 random bytes as unpadded base64url (32 characters).
fn new_nonce() -> String {
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

/// `8-4-4-4-12` hex digits (any version), as Core's UUID parser accepts; braces and `urn:`
/// forms are not used in DIDs.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let plain = s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    plain
        || (groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
            && groups
                .iter()
                .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit())))
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
        let public = id.key.verifying_key();
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

    #[test]
    fn bad_identities_are_config_errors_that_never_show_the_key() {
        let secret = STANDARD.encode([9u8; 31]);
        for (did, key) in [
            ("did:web:example.com", key_b64()),
            ("did:aip:not-a-uuid", key_b64()),
            (DID, "%%%".to_owned()),
            (DID, secret.clone()),
        ] {
            let e = AgentIdentity::new(did, &key).unwrap_err().to_string();
            assert!(e.contains("agent_identity"), "{e}");
            assert!(!e.contains(&secret), "{e}");
        }
        let id = AgentIdentity::new(DID, &key_b64()).unwrap();
        let debug = format!("{id:?}");
        assert!(
            debug.contains(DID) && !debug.contains(&key_b64()),
            "{debug}"
        );
    }
}
