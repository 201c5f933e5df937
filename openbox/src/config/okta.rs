//! The Okta AI-agent identity (agent identity v2): who the agent is at Core and the RSA key its
//! per-request assertions are signed with. With it, the client speaks Core's `/api/v2` routes.

#[cfg(feature = "okta-identity")]
use std::fmt;
#[cfg(feature = "okta-identity")]
use std::sync::Arc;

#[cfg(feature = "okta-identity")]
use base64::Engine;
#[cfg(feature = "okta-identity")]
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::ConfigError;
#[cfg(feature = "okta-identity")]
use super::env;
use super::env::{EnvLayers, EnvSetting};
#[cfg(feature = "okta-identity")]
use super::rsa_key::{ALGORITHM, RsaSigningKey};

#[cfg(feature = "okta-identity")]
/// An agent's Okta AI-agent identity: the ids Core issued and the RS256 key its assertions are
/// signed with. `Debug` shows the ids and none of the key.
#[derive(Debug)]
pub struct OktaAgentIdentity {
    pub(crate) ids: OktaAgentIds,
    pub(crate) key: Arc<RsaSigningKey>,
}

#[cfg(feature = "okta-identity")]
impl OktaAgentIdentity {
    /// The ids as Core issued them and `private_key_pem`, an unencrypted PKCS#8 PEM RSA key of at
    /// least 2048 bits. Errors never contain key material.
    pub(crate) fn new(
        ids: OktaAgentIds,
        private_key_pem: &str,
    ) -> Result<OktaAgentIdentity, ConfigError> {
        Ok(OktaAgentIdentity {
            ids,
            key: Arc::new(RsaSigningKey::from_pkcs8_pem(
                private_key_pem,
                "okta_agent_private_key",
            )?),
        })
    }

    /// The OpenBox agent id (claim `obx_agent_id`).
    pub fn openbox_agent_id(&self) -> &str {
        &self.ids.openbox_agent_id
    }

    /// The organization id (claim `obx_organization_id`).
    pub fn organization_id(&self) -> &str {
        &self.ids.organization_id
    }

    /// The deployment id (claim `obx_deployment_id`).
    pub fn deployment_id(&self) -> &str {
        &self.ids.deployment_id
    }

    /// Okta's id of the agent (claims `iss` and `sub`).
    pub fn okta_agent_id(&self) -> &str {
        &self.ids.external_agent_id
    }

    /// The credential's key id (the JWT header's `kid`).
    pub fn okta_agent_key_id(&self) -> &str {
        &self.ids.key_id
    }

    /// The audience assertions are made for (claim `aud`).
    pub fn agent_proof_audience(&self) -> &str {
        &self.ids.audience
    }

    /// The public half of the key as a JWK (`kty`, `kid`, `alg`, `use`, `n`, `e`): what Core —
    /// or the dev Core, in a JWKS — verifies assertions with.
    pub fn public_jwk(&self) -> serde_json::Value {
        let (n, e) = self.key.public_components();
        serde_json::json!({
            "kty": "RSA",
            "kid": self.ids.key_id,
            "alg": ALGORITHM,
            "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(n),
            "e": URL_SAFE_NO_PAD.encode(e),
        })
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key (unpadded base64url).
    pub fn jwk_thumbprint(&self) -> String {
        self.key.jwk_thumbprint()
    }
}

/// Where the Okta identity's ids come from.
#[cfg(feature = "okta-identity")]
#[derive(Debug, Clone)]
pub(crate) enum OktaSource {
    /// All configured.
    Configured(Arc<OktaAgentIdentity>),
    /// Only the key is configured: the ids come from Core's bootstrap document, once, before
    /// the first signed request.
    Bootstrap(Arc<RsaSigningKey>),
}

/// The ids of an [`OktaAgentIdentity`], as Core issued them.
#[cfg(feature = "okta-identity")]
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

/// One setting of the identity: its builder name and its environment suffix.
struct Field {
    option: &'static str,
    env: EnvSetting,
}

const fn field(option: &'static str, suffix: &'static str) -> Field {
    Field {
        option,
        env: EnvSetting::new(suffix),
    }
}

const PRIVATE_KEY: Field = field("okta_agent_private_key", "OKTA_AGENT_PRIVATE_KEY");
#[cfg(feature = "okta-identity")]
const ALGORITHM_FIELD: Field = field("okta_agent_algorithm", "OKTA_AGENT_ALGORITHM");
/// The ids, in the order of [`OktaAgentIds`]' fields.
const IDS: [Field; 6] = [
    field("openbox_agent_id", "AGENT_ID"),
    field("organization_id", "ORGANIZATION_ID"),
    field("deployment_id", "DEPLOYMENT_ID"),
    field("okta_agent_id", "OKTA_AGENT_ID"),
    field("okta_agent_key_id", "OKTA_AGENT_KEY_ID"),
    field("agent_proof_audience", "AGENT_PROOF_AUDIENCE"),
];

#[cfg(feature = "okta-identity")]
/// The identity's settings as given to the builder (each falls back to the environment).
#[derive(Clone, Default)]
pub(crate) struct OktaSettings {
    pub(crate) private_key: Option<String>,
    pub(crate) algorithm: Option<String>,
    /// In the order of [`IDS`].
    pub(crate) ids: [Option<String>; 6],
}

#[cfg(feature = "okta-identity")]
impl fmt::Debug for OktaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("OktaSettings");
        s.field("private_key", &self.private_key.as_ref().map(|_| "****"));
        s.field("algorithm", &self.algorithm);
        for (field, value) in IDS.iter().zip(&self.ids) {
            s.field(field.option, value);
        }
        s.finish()
    }
}

#[cfg(feature = "okta-identity")]
impl OktaSettings {
    /// Sets the id named `option` (one of [`IDS`]).
    pub(crate) fn set_id(&mut self, option: &str, value: String) {
        if let Some(i) = IDS.iter().position(|f| f.option == option) {
            self.ids[i] = Some(value);
        }
    }

    /// The identity: each setting from the builder, else the environment. None of them → no
    /// identity; all of them → the identity; the private key alone → bootstrap from Core;
    /// anything between is an error naming what is missing.
    pub(crate) fn resolve(
        &self,
        layers: &EnvLayers<'_>,
    ) -> Result<Option<OktaSource>, ConfigError> {
        let read = |explicit: &Option<String>, field: &Field| -> Result<_, ConfigError> {
            Ok(match explicit {
                Some(v) => Some((v.trim().to_owned(), None)),
                None => layers
                    .get(field.env)?
                    .map(|v| (v.value.trim().to_owned(), Some(v.variable))),
            })
        };
        let key = read(&self.private_key, &PRIVATE_KEY)?;
        let algorithm = read(&self.algorithm, &ALGORITHM_FIELD)?;
        let mut ids = Vec::with_capacity(IDS.len());
        for (value, field) in self.ids.iter().zip(&IDS) {
            ids.push(read(value, field)?);
        }
        let given = ids.iter().filter(|v| v.is_some()).count() + usize::from(key.is_some());
        if given == 0 {
            return match algorithm {
                Some(_) => Err(invalid(
                    ALGORITHM_FIELD.option,
                    "is set without the identity it is for (okta_agent_private_key and the ids)",
                )),
                None => Ok(None),
            };
        }
        if let Some((alg, variable)) = &algorithm
            && alg != ALGORITHM
        {
            let reason = format!("{alg:?} is not supported: Core accepts {ALGORITHM} only");
            return Err(in_env(variable, invalid(ALGORITHM_FIELD.option, reason)));
        }
        let missing: Vec<&str> = std::iter::once((&key, &PRIVATE_KEY))
            .chain(ids.iter().zip(&IDS))
            .filter(|(v, _)| v.is_none())
            .map(|(_, f)| f.option)
            .collect();
        if let (Some((pem, variable)), true) = (&key, missing.len() == IDS.len()) {
            let key = RsaSigningKey::from_pkcs8_pem(pem, PRIVATE_KEY.option)
                .map_err(|e| in_env(variable, e))?;
            return Ok(Some(OktaSource::Bootstrap(Arc::new(key))));
        }
        if !missing.is_empty() {
            let reason = format!(
                "the Okta agent identity is set in part: {} missing; set the private key \
                 alone (the ids then come from Core), all of okta_agent_private_key, {} \
                 (environment `OPENBOX_…`: {}), or none",
                missing.join(", "),
                IDS.map(|f| f.option).join(", "),
                std::iter::once(&PRIVATE_KEY)
                    .chain(&IDS)
                    .map(|f| f.env.suffix)
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            return Err(invalid(PRIVATE_KEY.option, reason));
        }
        let mut values = Vec::with_capacity(IDS.len());
        for ((value, variable), field) in ids.into_iter().flatten().zip(&IDS) {
            if value.is_empty() {
                return Err(in_env(&variable, invalid(field.option, "is empty")));
            }
            values.push(value);
        }
        let [
            openbox_agent_id,
            organization_id,
            deployment_id,
            external_agent_id,
            key_id,
            audience,
        ]: [String; 6] = values
            .try_into()
            .map_err(|_| invalid(PRIVATE_KEY.option, "an id is missing"))?;
        let ids = OktaAgentIds {
            openbox_agent_id,
            organization_id,
            deployment_id,
            external_agent_id,
            key_id,
            audience,
        };
        let (pem, variable) = key.unwrap_or_default();
        let identity = OktaAgentIdentity::new(ids, &pem).map_err(|e| in_env(&variable, e))?;
        Ok(Some(OktaSource::Configured(Arc::new(identity))))
    }
}

/// Without the `okta-identity` feature: an Okta setting in the environment is an error, never
/// silently ignored (requests would go out unsigned on the `/api/v1` routes).
#[cfg(not(feature = "okta-identity"))]
pub(crate) fn refuse_without_feature(layers: &EnvLayers<'_>) -> Result<(), ConfigError> {
    for field in std::iter::once(&PRIVATE_KEY).chain(&IDS[3..5]) {
        if let Some(v) = layers.get(field.env)? {
            return Err(v.error(invalid(
                field.option,
                "the Okta agent identity needs openbox's `okta-identity` feature",
            )));
        }
    }
    Ok(())
}

fn invalid(option: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidOption {
        option,
        reason: reason.into(),
    }
}

#[cfg(feature = "okta-identity")]
fn in_env(variable: &Option<String>, error: ConfigError) -> ConfigError {
    match variable {
        Some(variable) => env::EnvValue {
            variable: variable.clone(),
            value: String::new(),
        }
        .error(error),
        None => error,
    }
}

#[cfg(all(test, feature = "okta-identity"))]
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

    #[test]
    fn the_public_jwk_has_the_keys_thumbprint() {
        let identity = golden_identity();
        let jwk = identity.public_jwk();
        let canonical = format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            jwk["e"].as_str().unwrap(),
            jwk["n"].as_str().unwrap()
        );
        let thumbprint = URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(canonical));
        assert_eq!(thumbprint, golden()["jwk_thumbprint"].as_str().unwrap());
        assert_eq!(jwk["kid"], "kid-2026-12");
        assert!(!jwk.to_string().contains("\"d\""), "no private member");
    }
}

#[cfg(all(test, feature = "okta-identity"))]
mod config_tests {
    use std::collections::HashMap;

    use crate::config::rsa_key::tests::golden;
    use crate::{ConfigError, OpenBoxConfig};

    fn pem() -> String {
        golden()["private_key_pem"].as_str().unwrap().to_owned()
    }

    /// The identity's settings as `OPENBOX_…` variables, the key included.
    fn env_vars() -> HashMap<String, String> {
        let g = golden();
        let id = |k: &str| g["identity"][k].as_str().unwrap().to_owned();
        HashMap::from([
            ("OPENBOX_OKTA_AGENT_PRIVATE_KEY".to_owned(), pem()),
            ("OPENBOX_AGENT_ID".to_owned(), id("openbox_agent_id")),
            ("OPENBOX_ORGANIZATION_ID".to_owned(), id("organization_id")),
            ("OPENBOX_DEPLOYMENT_ID".to_owned(), id("deployment_id")),
            ("OPENBOX_OKTA_AGENT_ID".to_owned(), id("external_agent_id")),
            ("OPENBOX_OKTA_AGENT_KEY_ID".to_owned(), id("key_id")),
            (
                "OPENBOX_AGENT_PROOF_AUDIENCE".to_owned(),
                "aud-1".to_owned(),
            ),
        ])
    }

    fn build(vars: HashMap<String, String>) -> Result<OpenBoxConfig, ConfigError> {
        OpenBoxConfig::builder()
            .url("http://localhost:1")
            .api_key("obx_test_k")
            .env_lookup(move |name| vars.get(name).cloned())
            .build()
    }

    /// An error's whole chain, as a log would show it.
    fn chain(e: &ConfigError) -> String {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        text
    }

    #[test]
    fn all_settings_from_the_environment_make_the_identity() {
        let config = build(env_vars()).unwrap();
        let identity = config.okta_agent_identity().unwrap();
        assert_eq!(identity.okta_agent_id(), "wlp8x5q7mvH86KvFJ0g4");
        assert_eq!(identity.agent_proof_audience(), "aud-1");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("MII") && shown.contains("<rsa key>"),
            "{shown}"
        );
        // The SDK layer wins over the global one, as for every setting.
        let mut vars = env_vars();
        vars.insert(
            "OPENBOX_TEMPORAL_AGENT_PROOF_AUDIENCE".into(),
            "aud-2".into(),
        );
        let config = build(vars).unwrap();
        assert_eq!(
            config.okta_agent_identity().unwrap().agent_proof_audience(),
            "aud-2"
        );
        assert!(
            build(HashMap::new())
                .unwrap()
                .okta_agent_identity()
                .is_none()
        );
    }

    #[test]
    fn a_partial_identity_is_an_error_naming_what_is_missing() {
        for missing in [
            "OPENBOX_AGENT_ID",
            "OPENBOX_OKTA_AGENT_KEY_ID",
            "OPENBOX_OKTA_AGENT_PRIVATE_KEY",
        ] {
            let mut vars = env_vars();
            vars.remove(missing);
            let e = chain(&build(vars).unwrap_err());
            let option = match missing {
                "OPENBOX_AGENT_ID" => "openbox_agent_id",
                "OPENBOX_OKTA_AGENT_KEY_ID" => "okta_agent_key_id",
                _ => "okta_agent_private_key",
            };
            assert!(e.contains(&format!("{option} missing")), "{e}");
            assert!(!e.contains("MII"), "{e}");
        }
        // The key alone is bootstrap mode: signed, the ids to come from Core.
        let vars = HashMap::from([("OPENBOX_OKTA_AGENT_PRIVATE_KEY".to_owned(), pem())]);
        let config = build(vars).unwrap();
        assert!(config.signs_requests() && config.okta_agent_identity().is_none());
    }

    #[test]
    fn only_rs256_and_never_with_the_did_identity() {
        let mut vars = env_vars();
        vars.insert("OPENBOX_OKTA_AGENT_ALGORITHM".into(), "ES256".into());
        let e = chain(&build(vars).unwrap_err());
        assert!(
            e.contains("OPENBOX_OKTA_AGENT_ALGORITHM") && e.contains("RS256"),
            "{e}"
        );
        let mut vars = env_vars();
        vars.insert("OPENBOX_OKTA_AGENT_ALGORITHM".into(), "RS256".into());
        assert!(build(vars).is_ok());
        let vars = HashMap::from([(
            "OPENBOX_OKTA_AGENT_ALGORITHM".to_owned(),
            "RS256".to_owned(),
        )]);
        assert!(build(vars).is_err(), "an algorithm for no identity");
        let vars = env_vars();
        let e = OpenBoxConfig::builder()
            .url("http://localhost:1")
            .api_key("obx_test_k")
            .agent_identity(
                "did:aip:2f1e0a8c-5b7d-4c3e-9a61-0d2b7e4f8c90",
                "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
            )
            .env_lookup(move |name| vars.get(name).cloned())
            .build()
            .unwrap_err();
        assert!(chain(&e).contains("exclude each other"), "{}", chain(&e));
    }

    #[test]
    fn a_bad_key_names_its_variable_and_never_the_key() {
        let mut vars = env_vars();
        let bad = pem().replace('M', "*");
        vars.insert("OPENBOX_OKTA_AGENT_PRIVATE_KEY".into(), bad.clone());
        let e = chain(&build(vars).unwrap_err());
        assert!(
            e.contains("OPENBOX_OKTA_AGENT_PRIVATE_KEY") && e.contains("key not shown"),
            "{e}"
        );
        assert!(!e.contains(&bad[40..80]), "{e}");
        // The builder's own values win, and its Debug shows no key either.
        let builder = OpenBoxConfig::builder()
            .url("http://localhost:1")
            .api_key("obx_test_k")
            .ignore_env()
            .okta_agent_private_key(pem())
            .openbox_agent_id("a")
            .organization_id("o")
            .deployment_id("d")
            .okta_agent_id("x")
            .okta_agent_key_id("k")
            .agent_proof_audience("aud");
        let shown = format!("{builder:?}");
        assert!(
            !shown.contains("MII") && shown.contains("okta_agent_key_id"),
            "{shown}"
        );
        let config = builder.build().unwrap();
        assert_eq!(
            config.okta_agent_identity().unwrap().okta_agent_key_id(),
            "k"
        );
    }
}

#[cfg(all(test, not(feature = "okta-identity")))]
mod without_the_feature {
    use crate::OpenBoxConfig;

    #[test]
    fn an_okta_variable_is_an_error_not_ignored() {
        let build = |name: &'static str| {
            OpenBoxConfig::builder()
                .url("http://localhost:1")
                .api_key("obx_test_k")
                .env_lookup(move |n| (n == name).then(|| "x".to_owned()))
                .build()
        };
        for name in [
            "OPENBOX_OKTA_AGENT_PRIVATE_KEY",
            "OPENBOX_TEMPORAL_OKTA_AGENT_ID",
            "OPENBOX_OKTA_AGENT_KEY_ID",
        ] {
            let e = build(name).unwrap_err();
            let source = std::error::Error::source(&e).map(ToString::to_string);
            assert!(e.to_string().contains(name), "{e}");
            assert!(source.unwrap_or_default().contains("okta-identity"), "{e}");
        }
        assert!(
            build("OPENBOX_AGENT_ID").is_ok(),
            "shared with other SDKs' settings"
        );
    }
}
