//! The identity requests to Core are signed with (agent identity v1): an agent DID and its
//! Ed25519 key, validated when the configuration is built.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;

use super::ConfigError;

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

    /// The signing key (for the request signer).
    pub(crate) fn key(&self) -> &SigningKey {
        &self.key
    }
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
    use super::*;

    const DID: &str = "did:aip:2f1e0a8c-5b7d-4c3e-9a61-0d2b7e4f8c90";

    fn key_b64() -> String {
        STANDARD.encode([7u8; 32])
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
