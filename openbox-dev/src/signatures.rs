//! Verification of signed requests (agent identity v1), when the dev Core is started with an
//! agent's DID and public key: every contract request must then carry the agent's headers, and
//! is refused with 401 and Core's reason code when it does not verify.
//!
//! | Reason code | When |
//! |---|---|
//! | `signature_invalid` | a header is missing or garbled, the body's SHA-256 is not the one signed, or the Ed25519 signature does not verify |
//! | `did_agent_mismatch` | the DID is not the configured agent's |
//! | `timestamp_outside_window` | the signing time is more than 300 s from the dev Core's clock |
//! | `nonce_replayed` | the nonce was accepted before (within the last 10 minutes) |

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// How far a signing time may be from the dev Core's clock.
pub const WINDOW: Duration = Duration::from_secs(300);

/// How long an accepted nonce is remembered (twice the window: any older request is refused by
/// its timestamp anyway).
const NONCE_MEMORY: Duration = Duration::from_secs(600);

/// The agent whose signatures the dev Core checks.
#[derive(Debug)]
pub struct AgentVerifier {
    did: String,
    key: VerifyingKey,
    nonces: Mutex<HashMap<String, Instant>>,
}

impl AgentVerifier {
    /// `public_key` is the standard base64 of the agent's 32-byte Ed25519 public key.
    pub fn new(did: &str, public_key: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(public_key.trim())
            .map_err(|e| format!("the agent public key is not base64: {e}"))?;
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| format!("the agent public key must be 32 bytes, got {}", bytes.len()))?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|e| format!("the agent public key is not an Ed25519 key: {e}"))?;
        if did.trim().is_empty() {
            return Err("the agent DID is empty".into());
        }
        Ok(AgentVerifier {
            did: did.trim().to_owned(),
            key,
            nonces: Mutex::new(HashMap::new()),
        })
    }

    /// The configured DID.
    pub fn did(&self) -> &str {
        &self.did
    }

    /// Checks one request; `Err` is the reason code to refuse it with.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        header: impl Fn(&str) -> Option<String>,
        body: &[u8],
    ) -> Result<(), &'static str> {
        let get = |name: &str| header(name).ok_or("signature_invalid");
        let did = get("x-openbox-agent-did")?;
        let timestamp = get("x-openbox-agent-timestamp")?;
        let nonce = get("x-openbox-agent-nonce")?;
        let signature = get("x-openbox-agent-signature")?;
        let body_sha256 = get("x-openbox-body-sha256")?;
        if did != self.did {
            return Err("did_agent_mismatch");
        }
        let signed_at =
            chrono::DateTime::parse_from_rfc3339(&timestamp).map_err(|_| "signature_invalid")?;
        let skew = (chrono::Utc::now() - signed_at.with_timezone(&chrono::Utc))
            .abs()
            .to_std()
            .unwrap_or(Duration::MAX);
        if skew > WINDOW {
            return Err("timestamp_outside_window");
        }
        let actual: String = Sha256::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if actual != body_sha256 {
            return Err("signature_invalid");
        }
        let signature = STANDARD
            .decode(signature.trim())
            .ok()
            .and_then(|s| Signature::from_slice(&s).ok())
            .ok_or("signature_invalid")?;
        let canonical = [
            method.to_ascii_uppercase().as_str(),
            path,
            &timestamp,
            &nonce,
            &actual,
        ]
        .join("\n");
        self.key
            .verify(canonical.as_bytes(), &signature)
            .map_err(|_| "signature_invalid")?;
        // Only a verified request spends its nonce: garbage cannot fill the memory or burn
        // a nonce the agent has yet to use.
        let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        nonces.retain(|_, seen| now.duration_since(*seen) < NONCE_MEMORY);
        if nonces.insert(nonce, now).is_some() {
            return Err("nonce_replayed");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    const DID: &str = "did:aip:2f1e0a8c-5b7d-4c3e-9a61-0d2b7e4f8c90";

    fn signed(
        key: &SigningKey,
        timestamp: &str,
        nonce: &str,
        body: &[u8],
    ) -> HashMap<String, String> {
        let sha: String = Sha256::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let canonical = format!("POST\n/api/v1/governance/evaluate\n{timestamp}\n{nonce}\n{sha}");
        HashMap::from([
            ("x-openbox-agent-did".into(), DID.into()),
            ("x-openbox-agent-timestamp".into(), timestamp.into()),
            ("x-openbox-agent-nonce".into(), nonce.into()),
            (
                "x-openbox-agent-signature".into(),
                STANDARD.encode(key.sign(canonical.as_bytes()).to_bytes()),
            ),
            ("x-openbox-body-sha256".into(), sha),
        ])
    }

    #[test]
    fn each_refusal_has_its_reason_code() {
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let public = STANDARD.encode(key.verifying_key().as_bytes());
        let v = AgentVerifier::new(DID, &public).unwrap();
        let now = chrono::Utc::now().to_rfc3339();
        let check = |h: &HashMap<String, String>, body: &[u8]| {
            v.check(
                "POST",
                "/api/v1/governance/evaluate",
                |n| h.get(n).cloned(),
                body,
            )
        };
        let ok = signed(&key, &now, "n1", b"{}");
        assert_eq!(check(&ok, b"{}"), Ok(()));
        assert_eq!(check(&ok, b"{}"), Err("nonce_replayed"));
        assert_eq!(
            check(&signed(&key, &now, "n2", b"{}"), b"{\"x\":1}"),
            Err("signature_invalid"),
            "a changed body"
        );
        let other = SigningKey::from_bytes(&[4u8; 32]);
        assert_eq!(
            check(&signed(&other, &now, "n3", b"{}"), b"{}"),
            Err("signature_invalid")
        );
        let old = (chrono::Utc::now() - chrono::Duration::seconds(301)).to_rfc3339();
        assert_eq!(
            check(&signed(&key, &old, "n4", b"{}"), b"{}"),
            Err("timestamp_outside_window")
        );
        let mut stranger = signed(&key, &now, "n5", b"{}");
        stranger.insert("x-openbox-agent-did".into(), "did:aip:someone-else".into());
        assert_eq!(check(&stranger, b"{}"), Err("did_agent_mismatch"));
        let mut missing = signed(&key, &now, "n6", b"{}");
        missing.remove("x-openbox-agent-signature");
        assert_eq!(check(&missing, b"{}"), Err("signature_invalid"));
        assert!(AgentVerifier::new(DID, "short").is_err());
    }
}
