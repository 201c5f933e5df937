//! An explicit choice of identity (`OPENBOX_AGENT_IDENTITY_METHOD`): without it the identity
//! follows from the settings present; with it, the settings it names must be there, so a
//! deployment that means to sign cannot start unsigned because a variable went missing.

use std::str::FromStr;

use super::ConfigError;
use super::env::EnvSetting;

/// The environment setting.
pub(crate) const ENV: EnvSetting = EnvSetting::new("AGENT_IDENTITY_METHOD");

/// How requests to Core are signed, when chosen explicitly
/// ([`OpenBoxConfigBuilder::agent_identity_method`](super::OpenBoxConfigBuilder::agent_identity_method)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityMethod {
    /// The agent DID and its Ed25519 key (agent identity v1): `openbox_did`.
    OpenBoxDid,
    /// The Okta AI-agent identity (agent identity v2): `okta_ai_agent`.
    OktaAiAgent,
}

impl IdentityMethod {
    /// The spelling OpenBox's SDKs use.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityMethod::OpenBoxDid => "openbox_did",
            IdentityMethod::OktaAiAgent => "okta_ai_agent",
        }
    }

    /// Checks that the settings of the chosen identity are present: `did` for a DID identity,
    /// `okta` for the Okta identity.
    pub(crate) fn require(self, did: bool, okta: bool) -> Result<(), ConfigError> {
        let (present, needs) = match self {
            IdentityMethod::OpenBoxDid => {
                (did, "the agent DID and its private key (agent_identity)")
            }
            IdentityMethod::OktaAiAgent => (
                okta,
                "okta_agent_private_key (OPENBOX_OKTA_AGENT_PRIVATE_KEY; OpenBox never holds an \
                 agent's private key)",
            ),
        };
        if present {
            Ok(())
        } else {
            Err(ConfigError::InvalidOption {
                option: "agent_identity_method",
                reason: format!("{} requires {needs}", self.as_str()),
            })
        }
    }
}

impl FromStr for IdentityMethod {
    type Err = ConfigError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw.trim() {
            "openbox_did" => Ok(IdentityMethod::OpenBoxDid),
            "okta_ai_agent" => Ok(IdentityMethod::OktaAiAgent),
            other => Err(ConfigError::InvalidOption {
                option: "agent_identity_method",
                reason: format!(
                    "{other:?}: expected openbox_did or okta_ai_agent (unsigned requests follow \
                     from no identity being set, never from a choice)"
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OpenBoxConfig;

    fn build(vars: &[(&'static str, &'static str)]) -> Result<OpenBoxConfig, ConfigError> {
        let vars = vars.to_vec();
        OpenBoxConfig::builder()
            .url("http://localhost:1")
            .api_key("obx_test_k")
            .env_lookup(move |n| {
                vars.iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| (*v).to_owned())
            })
            .build()
    }

    #[test]
    fn a_chosen_identity_must_be_configured() {
        let chain = |e: ConfigError| {
            format!(
                "{e}: {}",
                std::error::Error::source(&e)
                    .map(ToString::to_string)
                    .unwrap_or_default()
            )
        };
        let e = chain(build(&[("OPENBOX_AGENT_IDENTITY_METHOD", "okta_ai_agent")]).unwrap_err());
        assert!(e.contains("requires okta_agent_private_key"), "{e}");
        let e = chain(build(&[("OPENBOX_AGENT_IDENTITY_METHOD", "openbox_did")]).unwrap_err());
        assert!(e.contains("requires the agent DID"), "{e}");
        let e = chain(build(&[("OPENBOX_AGENT_IDENTITY_METHOD", "legacy_unsigned")]).unwrap_err());
        assert!(e.contains("expected openbox_did or okta_ai_agent"), "{e}");
        let did = [
            ("OPENBOX_AGENT_IDENTITY_METHOD", "openbox_did"),
            (
                "OPENBOX_AGENT_DID",
                "did:aip:2f1e0a8c-5b7d-4c3e-9a61-0d2b7e4f8c90",
            ),
            (
                "OPENBOX_AGENT_PRIVATE_KEY",
                "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
            ),
        ];
        assert!(build(&did).unwrap().agent_identity().is_some());
        assert_eq!(
            OpenBoxConfig::builder()
                .url("http://localhost:1")
                .api_key("obx_test_k")
                .ignore_env()
                .agent_identity_method(IdentityMethod::OpenBoxDid)
                .build()
                .unwrap_err()
                .to_string(),
            "invalid OpenBox option `agent_identity_method`: openbox_did requires the agent DID and its private key (agent_identity)"
        );
    }
}
