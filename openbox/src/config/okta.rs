//! The Okta AI-agent identity (agent identity v2): who the agent is at Core and the RSA key its
//! per-request assertions are signed with.
//!
//! Not yet a configuration option, and built with the tests only: requests are not signed with
//! it until the client speaks the `/api/v2` routes. What is here is the part that must match Core
//! byte for byte — the key's rules and its RFC 7638 thumbprint, which Core's bootstrap document
//! names.

use std::fmt;

use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use super::ConfigError;

/// Smallest RSA modulus accepted, in bits (smaller keys are refused before anything is signed).
pub(crate) const MIN_RSA_KEY_BITS: usize = 2048;

/// The one algorithm v2 assertions are signed with; Core allow-lists it alone.
pub(crate) const ALGORITHM: &str = "RS256";

/// The ids Core knows the agent by, and its signing key. `Debug` never shows the key.
pub(crate) struct OktaAgentIdentity {
    /// Who the agent is.
    pub(crate) ids: OktaAgentIds,
    key: RsaKeyPair,
}

impl fmt::Debug for OktaAgentIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OktaAgentIdentity")
            .field("ids", &self.ids)
            .field("key", &"<rsa key>")
            .finish()
    }
}

fn invalid(reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidOption {
        option: "okta_agent_private_key",
        reason: reason.into(),
    }
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
            key: load_rsa_pkcs8_pem(private_key_pem)?,
        })
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message` (deterministic: the same bytes for the same
    /// message and key).
    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut signature = vec![0; self.key.public_modulus_len()];
        // The RNG is not used by PKCS#1 v1.5; the key was validated when loaded and the buffer
        // has the modulus' length, so signing cannot fail.
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.key
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &rng,
                message,
                &mut signature,
            )
            .expect("RSA signing with a validated key and a modulus-sized buffer");
        signature
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key, unpadded base64url: what Core's
    /// bootstrap document names as `okta.public_jwk_thumbprint`.
    pub(crate) fn jwk_thumbprint(&self) -> String {
        let public = self.key.public_key();
        let member = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        // The required members in lexicographic order, no whitespace (RFC 7638 §3.2).
        let canonical = format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            member(public.exponent().big_endian_without_leading_zero()),
            member(public.modulus().big_endian_without_leading_zero()),
        );
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
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

/// An unencrypted PKCS#8 PEM RSA private key of at least [`MIN_RSA_KEY_BITS`].
fn load_rsa_pkcs8_pem(pem: &str) -> Result<RsaKeyPair, ConfigError> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    let not_pkcs8 = || {
        invalid(
            "expected an unencrypted PKCS#8 PEM RSA private key (-----BEGIN PRIVATE KEY-----; \
             key not shown)",
        )
    };
    let body = pem
        .trim()
        .strip_prefix(BEGIN)
        .and_then(|rest| rest.strip_suffix(END))
        .ok_or_else(not_pkcs8)?;
    let base64: String = body.split_ascii_whitespace().collect();
    let der = STANDARD.decode(base64).map_err(|_| not_pkcs8())?;
    let key = RsaKeyPair::from_pkcs8(&der).map_err(|_| {
        invalid("the PEM does not hold a usable RSA private key (2048 to 8192 bits; key not shown)")
    })?;
    let bits = key.public_modulus_len() * 8;
    if bits < MIN_RSA_KEY_BITS {
        return Err(invalid(format!(
            "the RSA modulus is {bits} bits, at least {MIN_RSA_KEY_BITS} are required (key not shown)"
        )));
    }
    Ok(key)
}

pub(crate) mod tests {
    use super::*;

    /// The golden inputs, made by OpenBox's Python base package (`testdata/okta_v2/`).
    pub(crate) fn golden() -> serde_json::Value {
        serde_json::from_str(include_str!("../../testdata/okta_v2/golden.json")).unwrap()
    }

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
    fn the_thumbprint_is_the_references() {
        assert_eq!(
            golden_identity().jwk_thumbprint(),
            golden()["jwk_thumbprint"].as_str().unwrap()
        );
    }

    #[test]
    fn debug_never_shows_the_key() {
        let shown = format!("{:?}", golden_identity());
        assert!(
            shown.contains("<rsa key>") && !shown.contains("MII"),
            "{shown}"
        );
    }

    #[test]
    fn bad_keys_are_config_errors_that_never_show_the_key() {
        let pem = golden()["private_key_pem"].as_str().unwrap().to_owned();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let cut = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            &body[..400]
        );
        let pkcs1 = pem.replace("PRIVATE KEY", "RSA PRIVATE KEY");
        for bad in [
            String::new(),
            "not a key".to_owned(),
            pkcs1,
            cut,
            pem.replace('M', "*"),
        ] {
            let err = load_rsa_pkcs8_pem(&bad).err().unwrap().to_string();
            assert!(err.contains("key not shown"), "{err}");
            assert!(!err.contains(&body[10..40]), "key material in: {err}");
        }
    }

    #[test]
    fn keys_under_2048_bits_are_refused() {
        // A 1024-bit PKCS#8 RSA key, made by generate.py for this test only.
        let small = include_str!("../../testdata/okta_v2/rsa1024.pem");
        let err = load_rsa_pkcs8_pem(small).err().unwrap().to_string();
        assert!(
            err.contains("2048") && err.contains("key not shown"),
            "{err}"
        );
    }
}
