//! The one pooled HTTP client a [`CoreClient`](super::CoreClient) uses:
//! keep-alive, `TCP_NODELAY`, rustls, redirects never followed, no proxy.

use crate::config::ConfigError;
use crate::config::OpenBoxConfig;

pub(super) fn build_http_client(
    config: &OpenBoxConfig,
    headers: reqwest::header::HeaderMap,
) -> Result<reqwest::Client, ConfigError> {
    let tls_err = |e: &reqwest::Error| ConfigError::Tls {
        reason: error_chain(e),
    };
    let mut builder = reqwest::Client::builder()
        .default_headers(headers)
        .tcp_nodelay(true)
        .pool_idle_timeout(config.idle_connection_timeout())
        .connect_timeout(config.timeout())
        // A redirect could carry the Authorization header to another host; Core never redirects.
        .redirect(reqwest::redirect::Policy::none())
        // Core is reached directly: a proxy taken from the environment would see the API key.
        .no_proxy();
    if let Some(pem) = config.ca_bundle_pem() {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| tls_err(&e))?;
        if certs.is_empty() {
            return Err(ConfigError::Tls {
                reason: "CA bundle contains no certificate".into(),
            });
        }
        builder = builder.tls_certs_only(certs);
    }
    builder.build().map_err(|e| tls_err(&e))
}

/// `error: cause: cause…` — reqwest's `Display` alone hides the interesting part.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pem: Option<&[u8]>) -> OpenBoxConfig {
        let b = OpenBoxConfig::builder()
            .ignore_env()
            .url("http://localhost")
            .api_key("obx_test_1");
        match pem {
            Some(p) => b.ca_bundle_pem(p),
            None => b,
        }
        .build()
        .unwrap()
    }

    #[test]
    fn bad_ca_bundles_are_config_errors() {
        for pem in [
            &b"not a pem"[..],
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            let r = build_http_client(&config(Some(pem)), Default::default());
            assert!(matches!(r, Err(ConfigError::Tls { .. })), "{r:?}");
        }
    }

    #[test]
    fn default_client_builds() {
        build_http_client(&config(None), Default::default()).unwrap();
    }
}
