//! The Okta AI-agent identity (agent identity v2): who the agent is at Core and the RSA key its
//! per-request assertions are signed with.
//!
//! Not yet a configuration option, and built with the tests only: requests are not signed with
//! it until the client speaks the `/api/v2` routes.

use super::ConfigError;
use super::rsa_key::RsaSigningKey;

/// The ids Core knows the agent by, and its signing key.
#[derive(Debug)]
pub(crate) struct OktaAgentIdentity {
    /// Who the agent is.
    pub(crate) ids: OktaAgentIds,
    /// Its RS256 key (`Debug` shows none of it).
    pub(crate) key: RsaSigningKey,
}

impl OktaAgentIdentity {
    /// The ids as Core issued them and `private_key_pem`, an unencrypted PKCS#8 PEM RSA key of at
    /// least 2048 bits. Errors never contain key material.
    pub(crate) fn new(
        ids: OktaAgentIds,
        private_key_pem: &str,
    ) -> Result<OktaAgentIdentity, ConfigError> {
        Ok(OktaAgentIdentity {
            ids,
            key: RsaSigningKey::from_pkcs8_pem(private_key_pem, "okta_agent_private_key")?,
        })
    }
}

/// The ids of an [`OktaAgentIdentity`], as Core issued them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OktaAgentIds {
    /// The OpenBox agent id (`obx_agent_id`).
    pub(crate) openbox_agent_id: String,
    /// `obx_organization_id`.
    pub(crate) organization_id: String,
    /// `obx_deployment_id`.
    pub(crate) deployment_id: String,
    /// Okta's id of the agent: the assertion's `iss` and `sub`.
    pub(crate) external_agent_id: String,
    /// The credential's key id: the JWT header's `kid`.
    pub(crate) key_id: String,
    /// The assertion's `aud`.
    pub(crate) audience: String,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::rsa_key::tests::golden;

    pub(crate) fn golden_identity() -> OktaAgentIdentity {
        let g = golden();
        let id = |k: &str| g["identity"][k].as_str().unwrap().to_owned();
        let ids = OktaAgentIds {
            openbox_agent_id: id("openbox_agent_id"),
            organization_id: id("organization_id"),
            deployment_id: id("deployment_id"),
            external_agent_id: id("external_agent_id"),
            key_id: id("key_id"),
            audience: id("audience"),
        };
        OktaAgentIdentity::new(ids, g["private_key_pem"].as_str().unwrap()).unwrap()
    }

    #[test]
    fn debug_never_shows_the_key() {
        let shown = format!("{:?}", golden_identity());
        assert!(
            shown.contains("<rsa key>") && !shown.contains("MII"),
            "{shown}"
        );
        assert!(shown.contains("wlp8x5q7mvH86KvFJ0g4"), "{shown}");
    }
}
