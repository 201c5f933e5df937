//! Where settings left unset on the builder come from: the SDK's own environment layer, then
//! the global one, as the OpenBox base package resolves them.
//!
//! A setting with suffix `S` is read from `<prefix>_S` first — the SDK layer, prefix
//! [`DEFAULT_ENV_PREFIX`] unless the builder names another — and then from `OPENBOX_S`, the
//! global layer every OpenBox SDK reads. The names this SDK read before the global names were
//! aligned (`OPENBOX_URL`, `OPENBOX_GOVERNANCE_TIMEOUT`, `OPENBOX_GOVERNANCE_POLICY`) still
//! count in the global layer; set together with the new name to a different value, they are
//! an error rather than a silent choice.

use super::ConfigError;

/// The global layer's prefix.
pub const GLOBAL_ENV_PREFIX: &str = "OPENBOX";

/// This SDK's own layer, read before the global one: `OPENBOX_TEMPORAL_API_KEY` configures
/// only the Temporal SDK in a process that also runs another OpenBox SDK.
pub const DEFAULT_ENV_PREFIX: &str = "OPENBOX_TEMPORAL";

/// One setting the environment can supply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EnvSetting {
    /// The name after the prefix (the base package's spelling).
    pub(crate) suffix: &'static str,
    /// The global name this SDK read before, if it differs.
    legacy: Option<&'static str>,
}

impl EnvSetting {
    /// A setting read under `suffix` only.
    pub(crate) const fn new(suffix: &'static str) -> Self {
        EnvSetting {
            suffix,
            legacy: None,
        }
    }
}

/// Core's base URL.
pub(crate) const URL: EnvSetting = EnvSetting {
    suffix: "API_URL",
    legacy: Some("OPENBOX_URL"),
};
/// The API key.
pub(crate) const API_KEY: EnvSetting = EnvSetting {
    suffix: "API_KEY",
    legacy: None,
};
/// The per-call timeout in seconds.
pub(crate) const TIMEOUT: EnvSetting = EnvSetting {
    suffix: "TIMEOUT_SECONDS",
    legacy: Some("OPENBOX_GOVERNANCE_TIMEOUT"),
};
/// The error policy.
pub(crate) const ERROR_POLICY: EnvSetting = EnvSetting {
    suffix: "ON_API_ERROR",
    legacy: Some("OPENBOX_GOVERNANCE_POLICY"),
};
/// The agent DID of signed requests.
pub(crate) const AGENT_DID: EnvSetting = EnvSetting {
    suffix: "AGENT_DID",
    legacy: None,
};
/// The agent's Ed25519 seed.
pub(crate) const AGENT_PRIVATE_KEY: EnvSetting = EnvSetting {
    suffix: "AGENT_PRIVATE_KEY",
    legacy: None,
};
/// Request and response logging at debug level.
pub(crate) const DEBUG: EnvSetting = EnvSetting {
    suffix: "DEBUG",
    legacy: None,
};

/// A value read from the environment, with the variable it came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvValue {
    pub(crate) variable: String,
    pub(crate) value: String,
}

impl EnvValue {
    /// Wraps an error about this value so that it names the variable.
    pub(crate) fn error(&self, source: ConfigError) -> ConfigError {
        ConfigError::InvalidEnv {
            variable: self.variable.clone(),
            source: Box::new(source),
        }
    }
}

/// The two layers over one lookup of variables.
pub(crate) struct EnvLayers<'a> {
    prefix: &'a str,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> EnvLayers<'a> {
    pub(crate) fn new(prefix: &'a str, lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        EnvLayers { prefix, lookup }
    }

    fn read(&self, variable: &str) -> Option<EnvValue> {
        (self.lookup)(variable)
            .filter(|v| !v.trim().is_empty())
            .map(|value| EnvValue {
                variable: variable.to_owned(),
                value,
            })
    }

    /// The SDK layer's value, else the global layer's.
    pub(crate) fn get(&self, setting: EnvSetting) -> Result<Option<EnvValue>, ConfigError> {
        if let Some(v) = self.read(&format!("{}_{}", self.prefix, setting.suffix)) {
            return Ok(Some(v));
        }
        let global = self.read(&format!("{GLOBAL_ENV_PREFIX}_{}", setting.suffix));
        let legacy = setting.legacy.and_then(|name| self.read(name));
        match (global, legacy) {
            (Some(g), Some(l)) if g.value.trim() != l.value.trim() => {
                Err(ConfigError::ConflictingEnv {
                    first: g.variable,
                    second: l.variable,
                })
            }
            (Some(g), _) => Ok(Some(g)),
            (None, l) => Ok(l),
        }
    }
}

/// A prefix is upper-case ASCII letters, digits and `_`, starts with a letter and does not
/// end with `_` (the separator is added).
pub(crate) fn validate_prefix(prefix: &str) -> Result<(), ConfigError> {
    let ok = prefix.starts_with(|c: char| c.is_ascii_uppercase())
        && !prefix.ends_with('_')
        && prefix
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::InvalidOption {
            option: "env_prefix",
            reason: format!(
                "{prefix:?}: expected upper-case letters, digits and `_`, starting with a letter and not ending with `_`"
            ),
        })
    }
}

/// `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`, any case.
pub(crate) fn parse_flag(raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::InvalidOption {
            option: "debug",
            reason: format!("{raw:?}: expected 1, true, yes, on, 0, false, no or off"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn the_sdk_layer_wins_over_the_global_one() {
        let env = lookup(&[
            ("OPENBOX_TEMPORAL_API_KEY", "obx_test_sdk"),
            ("OPENBOX_API_KEY", "obx_test_global"),
        ]);
        let layers = EnvLayers::new(DEFAULT_ENV_PREFIX, &env);
        let v = layers.get(API_KEY).unwrap().unwrap();
        assert_eq!(
            (v.variable.as_str(), v.value.as_str()),
            ("OPENBOX_TEMPORAL_API_KEY", "obx_test_sdk")
        );
        let other = EnvLayers::new("OPENBOX_PAYMENTS", &env);
        assert_eq!(
            other.get(API_KEY).unwrap().unwrap().value,
            "obx_test_global"
        );
    }

    #[test]
    fn legacy_names_count_and_must_agree() {
        let env = lookup(&[("OPENBOX_URL", "http://localhost:1")]);
        let layers = EnvLayers::new(DEFAULT_ENV_PREFIX, &env);
        assert_eq!(layers.get(URL).unwrap().unwrap().variable, "OPENBOX_URL");
        let env = lookup(&[
            ("OPENBOX_URL", "http://localhost:1"),
            ("OPENBOX_API_URL", " http://localhost:1"),
        ]);
        let layers = EnvLayers::new(DEFAULT_ENV_PREFIX, &env);
        assert_eq!(
            layers.get(URL).unwrap().unwrap().variable,
            "OPENBOX_API_URL"
        );
        let env = lookup(&[
            ("OPENBOX_URL", "http://localhost:1"),
            ("OPENBOX_API_URL", "http://localhost:2"),
        ]);
        let layers = EnvLayers::new(DEFAULT_ENV_PREFIX, &env);
        assert_eq!(
            layers.get(URL),
            Err(ConfigError::ConflictingEnv {
                first: "OPENBOX_API_URL".into(),
                second: "OPENBOX_URL".into()
            })
        );
        // The SDK layer decides before the global one is looked at.
        let env = lookup(&[
            ("OPENBOX_TEMPORAL_API_URL", "http://localhost:3"),
            ("OPENBOX_URL", "http://localhost:1"),
            ("OPENBOX_API_URL", "http://localhost:2"),
        ]);
        let layers = EnvLayers::new(DEFAULT_ENV_PREFIX, &env);
        assert_eq!(
            layers.get(URL).unwrap().unwrap().value,
            "http://localhost:3"
        );
    }

    #[test]
    fn blank_values_are_unset() {
        let env = lookup(&[
            ("OPENBOX_TEMPORAL_API_KEY", "  "),
            ("OPENBOX_API_KEY", "obx_test_g"),
        ]);
        let layers = EnvLayers::new(DEFAULT_ENV_PREFIX, &env);
        assert_eq!(layers.get(API_KEY).unwrap().unwrap().value, "obx_test_g");
        assert_eq!(layers.get(AGENT_DID).unwrap(), None);
    }

    #[test]
    fn prefixes_and_flags_are_checked() {
        for good in ["OPENBOX_TEMPORAL", "MY_APP2", "X"] {
            assert!(validate_prefix(good).is_ok(), "{good}");
        }
        for bad in ["", "openbox", "OPENBOX_", "_X", "2X", "A-B", "ÄB"] {
            assert!(validate_prefix(bad).is_err(), "{bad}");
        }
        for (raw, on) in [
            ("1", true),
            ("TRUE", true),
            (" on ", true),
            ("0", false),
            ("No", false),
        ] {
            assert_eq!(parse_flag(raw).unwrap(), on, "{raw}");
        }
        assert!(parse_flag("2").is_err());
    }
}
