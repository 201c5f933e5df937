//! The workload identity's setting (agent identity v3): the RSA key of the service account Core
//! names in its v3 bootstrap document. Read in every build, so that one set without the
//! `workload-identity` feature is refused rather than ignored.

#[cfg(feature = "workload-identity")]
use std::sync::Arc;

use super::ConfigError;
use super::env::{EnvLayers, EnvSetting};
#[cfg(feature = "workload-identity")]
use super::rsa_key::RsaSigningKey;

/// The builder option.
pub(crate) const OPTION: &str = "workload_private_key";
/// Its environment setting.
const ENV: EnvSetting = EnvSetting::new("WORKLOAD_PRIVATE_KEY");

/// The key: from the builder, else the environment; errors name where it came from and never
/// show it.
#[cfg(feature = "workload-identity")]
pub(crate) fn resolve(
    explicit: Option<&str>,
    layers: &EnvLayers<'_>,
) -> Result<Option<Arc<RsaSigningKey>>, ConfigError> {
    let key = match explicit {
        Some(pem) => RsaSigningKey::from_pkcs8_pem(pem, OPTION)?,
        None => match layers.get(ENV)? {
            Some(v) => RsaSigningKey::from_pkcs8_pem(&v.value, OPTION).map_err(|e| v.error(e))?,
            None => return Ok(None),
        },
    };
    Ok(Some(Arc::new(key)))
}

/// Without the feature, the variable is an error.
#[cfg(not(feature = "workload-identity"))]
pub(crate) fn refuse_without_feature(layers: &EnvLayers<'_>) -> Result<(), ConfigError> {
    match layers.get(ENV)? {
        Some(v) => Err(v.error(ConfigError::InvalidOption {
            option: OPTION,
            reason: "the workload identity needs openbox's `workload-identity` feature".into(),
        })),
        None => Ok(()),
    }
}

#[cfg(all(test, feature = "workload-identity"))]
mod tests {
    use crate::OpenBoxConfig;
    use crate::config::rsa_key::tests::golden;

    #[test]
    fn the_key_from_the_builder_or_the_environment_never_shown() {
        let pem = golden()["private_key_pem"].as_str().unwrap().to_owned();
        let from_env = {
            let pem = pem.clone();
            OpenBoxConfig::builder()
                .url("http://localhost:1")
                .api_key("obx_test_k")
                .env_lookup(move |n| (n == "OPENBOX_WORKLOAD_PRIVATE_KEY").then(|| pem.clone()))
                .build()
                .unwrap()
        };
        assert!(from_env.workload_identity());
        let shown = format!("{from_env:?}");
        assert!(!shown.contains("MII"), "{shown}");
        let builder = OpenBoxConfig::builder()
            .url("http://localhost:1")
            .api_key("obx_test_k")
            .ignore_env()
            .workload_private_key(pem.replace('M', "*"));
        let shown = format!("{builder:?}");
        assert!(
            shown.contains("workload_private_key") && !shown.contains("MII"),
            "{shown}"
        );
        let e = builder.build().unwrap_err().to_string();
        assert!(
            e.contains("workload_private_key") && e.contains("key not shown"),
            "{e}"
        );
        let e = OpenBoxConfig::builder()
            .url("http://localhost:1")
            .api_key("obx_test_k")
            .env_lookup(|n| (n == "OPENBOX_TEMPORAL_WORKLOAD_PRIVATE_KEY").then(|| "junk".into()))
            .build()
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("OPENBOX_TEMPORAL_WORKLOAD_PRIVATE_KEY"),
            "{e}"
        );
    }
}

#[cfg(all(test, not(feature = "workload-identity")))]
mod without_the_feature {
    use crate::OpenBoxConfig;

    #[test]
    fn the_variable_is_an_error_not_ignored() {
        let e = OpenBoxConfig::builder()
            .url("http://localhost:1")
            .api_key("obx_test_k")
            .env_lookup(|n| (n == "OPENBOX_WORKLOAD_PRIVATE_KEY").then(|| "x".into()))
            .build()
            .unwrap_err();
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert!(
            source.unwrap_or_default().contains("workload-identity"),
            "{e}"
        );
    }
}
