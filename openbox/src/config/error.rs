//! Configuration errors: raised while settings are validated, before anything is sent.
//!
//! None of them ever contains the API key or any other secret.

/// An invalid or incomplete configuration (reference: `OpenBoxConfigError` and its
/// `OpenBoxInsecureURLError` / key-format `OpenBoxAuthError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No URL on the builder and none in the environment.
    #[error(
        "no OpenBox Core URL: set it on the builder or in OPENBOX_API_URL (OPENBOX_TEMPORAL_API_URL for this SDK alone)"
    )]
    MissingUrl,
    /// No key on the builder and none in the environment.
    #[error(
        "no OpenBox API key: set it on the builder or in OPENBOX_API_KEY (OPENBOX_TEMPORAL_API_KEY for this SDK alone)"
    )]
    MissingApiKey,
    /// Two environment variables for the same setting disagree (a global name and the older
    /// name it replaced).
    #[error(
        "environment variables {first} and {second} set the same setting differently: keep one"
    )]
    ConflictingEnv {
        /// The current name.
        first: String,
        /// The older one.
        second: String,
    },
    /// A value read from the environment is invalid; the source says why.
    #[error("invalid value in environment variable {variable}")]
    InvalidEnv {
        /// The variable.
        variable: String,
        /// What is wrong with its value.
        #[source]
        source: Box<ConfigError>,
    },
    /// The URL does not parse or has parts a Core URL cannot have.
    #[error("invalid OpenBox Core URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `http://` to a host that is not loopback (reference: `OpenBoxInsecureURLError`).
    #[error(
        "Insecure HTTP URL detected: {url}. Use HTTPS for non-localhost URLs to protect API keys in transit."
    )]
    InsecureUrl {
        /// The URL as given.
        url: String,
    },
    /// The key is not `obx_live_…` / `obx_test_…`. Unlike the reference, the message does not
    /// echo any part of the key.
    #[error("Invalid API key format. Expected 'obx_live_*' or 'obx_test_*'")]
    InvalidApiKey,
    /// The timeout is not a positive number of seconds.
    #[error("invalid governance timeout {value:?}: expected a positive number of seconds")]
    InvalidTimeout {
        /// The value as given.
        value: String,
    },
    /// The error policy is neither `fail_open` nor `fail_closed`.
    #[error(
        "invalid governance error policy {value:?}: expected fail_open, fail_closed or fail_closed_destructive"
    )]
    InvalidErrorPolicy {
        /// The value as given.
        value: String,
    },
    /// The TLS settings cannot be used (bad CA bundle, no platform roots).
    #[error("invalid TLS settings for OpenBox Core: {reason}")]
    Tls {
        /// What went wrong.
        reason: String,
    },
    /// A governance option is invalid (e.g. a zero approval poll interval).
    #[error("invalid OpenBox option `{option}`: {reason}")]
    InvalidOption {
        /// Which option.
        option: &'static str,
        /// Why.
        reason: String,
    },
}
