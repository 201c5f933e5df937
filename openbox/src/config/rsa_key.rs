//! An RS256 signing key, as the Okta agent identity (v2) and the workload identity (v3) take it:
//! an unencrypted PKCS#8 PEM RSA key of at least 2048 bits.

use std::fmt;

use aws_lc_rs::signature::RsaKeyPair;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::ConfigError;

/// Smallest RSA modulus accepted, in bits (smaller keys are refused before anything is signed).
pub(crate) const MIN_RSA_KEY_BITS: usize = 2048;

/// The one algorithm these identities sign with; Core allow-lists it alone.
pub(crate) const ALGORITHM: &str = "RS256";

/// A loaded RSA private key. `Debug` shows none of it.
pub(crate) struct RsaSigningKey(RsaKeyPair);

impl fmt::Debug for RsaSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<rsa key>")
    }
}

impl RsaSigningKey {
    /// Loads `pem`, the value of configuration option `option` (named in errors, which never
    /// contain key material).
    pub(crate) fn from_pkcs8_pem(
        pem: &str,
        option: &'static str,
    ) -> Result<RsaSigningKey, ConfigError> {
        const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
        const END: &str = "-----END PRIVATE KEY-----";
        let invalid = |reason: String| ConfigError::InvalidOption { option, reason };
        let not_pkcs8 = || {
            invalid(
                "expected an unencrypted PKCS#8 PEM RSA private key (-----BEGIN PRIVATE \
                 KEY-----; key not shown)"
                    .to_owned(),
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
            invalid(
                "the PEM does not hold a usable RSA private key (2048 to 8192 bits; key not shown)"
                    .to_owned(),
            )
        })?;
        let bits = key.public_modulus_len() * 8;
        if bits < MIN_RSA_KEY_BITS {
            return Err(invalid(format!(
                "the RSA modulus is {bits} bits, at least {MIN_RSA_KEY_BITS} are required (key \
                 not shown)"
            )));
        }
        Ok(RsaSigningKey(key))
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message` (deterministic: the same bytes for the same
    /// message and key).
    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut signature = vec![0; self.0.public_modulus_len()];
        // The RNG is not used by PKCS#1 v1.5; the key was validated when loaded and the buffer
        // has the modulus' length, so signing cannot fail.
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.0
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &rng,
                message,
                &mut signature,
            )
            .expect("RSA signing with a validated key and a modulus-sized buffer");
        signature
    }

    /// The public modulus and exponent, big-endian without leading zeros (a JWK's `n`, `e`).
    #[cfg(feature = "okta-identity")]
    pub(crate) fn public_components(&self) -> (Vec<u8>, Vec<u8>) {
        use aws_lc_rs::signature::KeyPair;
        let public = self.0.public_key();
        (
            public.modulus().big_endian_without_leading_zero().to_vec(),
            public.exponent().big_endian_without_leading_zero().to_vec(),
        )
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key, unpadded base64url: what Core's v2
    /// bootstrap document names as `okta.public_jwk_thumbprint`.
    #[cfg(feature = "okta-identity")]
    pub(crate) fn jwk_thumbprint(&self) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use sha2::{Digest, Sha256};
        let (n, e) = self.public_components();
        // The required members in lexicographic order, no whitespace (RFC 7638 §3.2).
        let canonical = format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(e),
            URL_SAFE_NO_PAD.encode(n),
        );
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The golden inputs, made by OpenBox's Python base package (`testdata/identity/`).
    pub(crate) fn golden() -> serde_json::Value {
        serde_json::from_str(include_str!("../../testdata/identity/golden.json")).unwrap()
    }

    pub(crate) fn golden_key() -> RsaSigningKey {
        RsaSigningKey::from_pkcs8_pem(golden()["private_key_pem"].as_str().unwrap(), "key").unwrap()
    }

    #[cfg(feature = "okta-identity")]
    #[test]
    fn the_thumbprint_is_the_references() {
        assert_eq!(
            golden_key().jwk_thumbprint(),
            golden()["jwk_thumbprint"].as_str().unwrap()
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
            let err = RsaSigningKey::from_pkcs8_pem(&bad, "workload_private_key")
                .err()
                .unwrap()
                .to_string();
            assert!(
                err.contains("key not shown") && err.contains("workload_private_key"),
                "{err}"
            );
            assert!(!err.contains(&body[10..40]), "key material in: {err}");
        }
    }

    #[test]
    fn keys_under_2048_bits_are_refused() {
        // A 1024-bit PKCS#8 RSA key, made by generate.py for this test only.
        let small = include_str!("../../testdata/identity/rsa1024.pem");
        let err = RsaSigningKey::from_pkcs8_pem(small, "key")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("2048") && err.contains("key not shown"),
            "{err}"
        );
    }
}
