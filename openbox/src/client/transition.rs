//! Identity transitions: the preflights of a rolling change of identity mode. Before Core moves
//! an agent from its API key (or DID) to the Okta identity, or from there to the workload
//! identity, the runtime that will use the new identity proves it holds the candidate's key.
//! Nothing here activates anything: Core does, once proven, and workers started with the new
//! settings then speak the new routes while older ones keep theirs.
//!
//! Each proof is made with the candidate's key only — never the identity this client signs with
//! now: a runtime proves the key it moves to, not the one it has.

use bytes::Bytes;
use serde_json::Value;

use super::{CoreClient, GovernanceApiError, Marks, OpenBoxError};
use crate::config::OpenBoxConfig;

/// Path of the Okta transition proof.
#[cfg(feature = "okta-identity")]
pub const OKTA_TRANSITION_PROOF_PATH: &str = "/api/v2/auth/transition-proof";
/// Path of the workload transition's document.
#[cfg(feature = "workload-identity")]
pub const WORKLOAD_TRANSITION_BOOTSTRAP_PATH: &str = "/api/v3/auth/workload-transition/bootstrap";
/// Path of the workload transition proof.
#[cfg(feature = "workload-identity")]
pub const WORKLOAD_TRANSITION_PROOF_PATH: &str = "/api/v3/auth/workload-transition/proof";

/// Proves candidate identities to Core for a transition an operator prepared there (its id and,
/// for the Okta identity, its challenge come from Core).
///
/// ```no_run
/// # async fn demo(current: openbox::OpenBoxConfig, candidate: openbox::OpenBoxConfig) -> Result<(), openbox::OpenBoxError> {
/// let transitions = openbox::IdentityTransition::new(current)?;
/// let okta = candidate.okta_agent_identity().expect("the candidate's full Okta settings");
/// let answer = transitions.prove_okta("3f0c…", "challenge-from-core", okta).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct IdentityTransition {
    client: CoreClient,
}

impl IdentityTransition {
    /// For the agent of `config` (its URL and API key; its own identity is not used).
    pub fn new(config: OpenBoxConfig) -> Result<Self, OpenBoxError> {
        Ok(IdentityTransition {
            client: CoreClient::new(config)?,
        })
    }

    /// Proves the Okta identity `candidate` for transition `transition_id`:
    /// `POST /api/v2/auth/transition-proof` with the body `{"transition_id": …}`, signed by the
    /// candidate with the challenge in the assertion. Returns Core's answer.
    #[cfg(feature = "okta-identity")]
    pub async fn prove_okta(
        &self,
        transition_id: &str,
        challenge: &str,
        candidate: &crate::config::OktaAgentIdentity,
    ) -> Result<Value, OpenBoxError> {
        use super::assertions::{Claim, HEADER_ASSERTION, SignedRequest, assertion};
        let body = serde_json::to_vec(&serde_json::json!({ "transition_id": transition_id }))
            .unwrap_or_default();
        let request = SignedRequest {
            api_key: self.client.config().api_key().expose(),
            method: "POST",
            path: OKTA_TRANSITION_PROOF_PATH,
            body: &body,
        };
        let extra = [
            ("obx_transition_purpose", Claim::from("okta_ai_agent")),
            ("obx_transition_id", Claim::from(transition_id)),
            ("obx_transition_challenge", Claim::from(challenge)),
        ];
        let iat = chrono::Utc::now().timestamp();
        let proof = assertion(
            candidate,
            request,
            &super::signing::new_nonce(),
            iat,
            &extra,
        );
        let url = format!("{}{OKTA_TRANSITION_PROOF_PATH}", self.client.config().url());
        let request = self
            .client
            .inner
            .http
            .post(url)
            .header(HEADER_ASSERTION, proof)
            .body(body.clone());
        let answer = self
            .client
            .send_logged(OKTA_TRANSITION_PROOF_PATH, Marks::default(), &body, request)
            .await;
        self.answer(answer)
    }

    /// Proves the workload identity whose key is `candidate_private_key_pem` (PKCS#8 PEM RSA,
    /// ≥ 2048 bits) for transition `transition_id`: reads the transition's document
    /// (`GET /api/v3/auth/workload-transition/bootstrap`), then sends a client assertion for its
    /// token endpoint to `POST /api/v3/auth/workload-transition/proof`. Returns Core's answer.
    #[cfg(feature = "workload-identity")]
    pub async fn prove_workload(
        &self,
        transition_id: &str,
        candidate_private_key_pem: &str,
    ) -> Result<Value, OpenBoxError> {
        let key = crate::config::rsa_key::RsaSigningKey::from_pkcs8_pem(
            candidate_private_key_pem,
            "candidate_private_key",
        )?;
        let config = self.client.config();
        let url = reqwest::Url::parse_with_params(
            &format!("{}{WORKLOAD_TRANSITION_BOOTSTRAP_PATH}", config.url()),
            [("transition_id", transition_id)],
        )
        .map_err(|e| {
            OpenBoxError::Config(crate::ConfigError::InvalidUrl {
                url: config.url().to_owned(),
                reason: e.to_string(),
            })
        })?;
        let request = self.client.inner.http.get(url);
        let answer = self
            .client
            .send_logged(
                WORKLOAD_TRANSITION_BOOTSTRAP_PATH,
                Marks::default(),
                b"",
                request,
            )
            .await;
        let document = match answer {
            Ok((200, body)) => transition_document(&body, transition_id)
                .map_err(|reason| self.config_error(reason))?,
            Ok((409, _)) => {
                return Err(self.config_error(
                    "Core refused the workload transition's document (409): the transition is \
                     not prepared or no longer pending"
                        .into(),
                ));
            }
            other => {
                return self
                    .answer(other)
                    .and(Err(self.config_error("no document".into())));
            }
        };
        let assertion = super::assertions::workload_client_assertion_now(
            &key,
            &document.kid,
            &document.client_id,
            &document.token_endpoint,
        );
        let body = serde_json::to_vec(&serde_json::json!({
            "transition_id": document.transition_id,
            "client_assertion": assertion,
        }))
        .unwrap_or_default();
        let request = self
            .client
            .inner
            .http
            .post(format!("{}{WORKLOAD_TRANSITION_PROOF_PATH}", config.url()))
            .body(body.clone());
        // The debug log shows the proof without its assertion.
        let shown = serde_json::to_vec(&serde_json::json!({
            "transition_id": document.transition_id,
            "client_assertion": "****",
        }))
        .unwrap_or_default();
        let answer = self
            .client
            .send_logged(
                WORKLOAD_TRANSITION_PROOF_PATH,
                Marks::default(),
                &shown,
                request,
            )
            .await;
        self.answer(answer)
    }

    /// Core's answer to a preflight: the JSON of a 2xx; a refusal naming its reason code for
    /// 401/403; an error for the rest.
    fn answer(
        &self,
        answer: Result<(u16, Bytes), GovernanceApiError>,
    ) -> Result<Value, OpenBoxError> {
        let url = self.client.config().url().to_owned();
        match answer {
            Ok((200..=299, body)) => Ok(serde_json::from_slice(&body).unwrap_or(Value::Null)),
            Ok((status @ (401 | 403), body)) => Err(match super::reason_code_of(&body) {
                Some(code) => OpenBoxError::SignatureRejected {
                    url,
                    status,
                    rejection: super::SigningRejection::from_code(&code),
                },
                None => OpenBoxError::Auth { url, status },
            }),
            Ok((status, body)) => Err(OpenBoxError::Network {
                url,
                source: self.client.status_error(status, &body),
            }),
            Err(source) => Err(OpenBoxError::Network { url, source }),
        }
    }

    #[cfg(feature = "workload-identity")]
    fn config_error(&self, reason: String) -> OpenBoxError {
        OpenBoxError::Config(crate::ConfigError::InvalidOption {
            option: "candidate_private_key",
            reason,
        })
    }
}

/// What a workload transition's document gives.
#[cfg(feature = "workload-identity")]
struct TransitionDocument {
    transition_id: String,
    token_endpoint: String,
    client_id: String,
    kid: String,
}

/// The workload transition's document, checked, for the transition `requested`.
#[cfg(feature = "workload-identity")]
fn transition_document(body: &[u8], requested: &str) -> Result<TransitionDocument, String> {
    use super::workload::{check_endpoint, is_canonical_uuid, text};
    let invalid = |reason: String| format!("invalid workload transition document: {reason}");
    let document: Value = serde_json::from_slice(body).map_err(|_| invalid("not JSON".into()))?;
    for field in ["bootstrap_version", "contract_version"] {
        if document.get(field).and_then(Value::as_i64) != Some(3) {
            return Err(invalid(format!("{field} is not 3: upgrade the SDK")));
        }
    }
    let transition_id = text(&document, "transition_id").map_err(invalid)?;
    if !is_canonical_uuid(&transition_id) || transition_id != requested.to_ascii_lowercase() {
        return Err(invalid(
            "transition_id is not the requested transition".into(),
        ));
    }
    let token_endpoint = text(&document, "token_endpoint").map_err(invalid)?;
    check_endpoint("token_endpoint", &token_endpoint).map_err(invalid)?;
    if !token_endpoint.ends_with("/protocol/openid-connect/token") {
        return Err(invalid(
            "token_endpoint is not an OpenID Connect token endpoint".into(),
        ));
    }
    text(&document, "identity_source").map_err(invalid)?;
    let expires_at = text(&document, "expires_at").map_err(invalid)?;
    chrono::DateTime::parse_from_rfc3339(&expires_at)
        .map_err(|_| invalid("expires_at is not an ISO-8601 time with a zone".into()))?;
    Ok(TransitionDocument {
        transition_id,
        token_endpoint,
        client_id: text(&document, "client_id").map_err(invalid)?,
        kid: text(&document, "kid").map_err(invalid)?,
    })
}

#[cfg(all(test, feature = "workload-identity"))]
mod tests {
    use serde_json::json;

    use super::*;

    const ID: &str = "6f9619ff-8b86-4d11-b42d-00c04fc964ff";

    fn document() -> Value {
        json!({
            "bootstrap_version": 3, "contract_version": 3, "transition_id": ID,
            "token_endpoint": "https://id.example/realms/r/protocol/openid-connect/token",
            "client_id": "svc", "kid": "k", "identity_source": "openbox",
            "expires_at": "2026-12-07T18:00:00+00:00",
        })
    }

    #[test]
    fn the_document_is_the_requested_transitions() {
        let ok = transition_document(document().to_string().as_bytes(), &ID.to_uppercase());
        assert_eq!(ok.unwrap().client_id, "svc");
        for (pointer, value, said) in [
            (
                "/transition_id",
                json!("6f9619ff-8b86-4d11-b42d-00c04fc964fe"),
                "requested",
            ),
            (
                "/token_endpoint",
                json!("https://id.example/token"),
                "OpenID",
            ),
            (
                "/token_endpoint",
                json!("http://id.example/realms/r/protocol/openid-connect/token"),
                "HTTPS",
            ),
            ("/expires_at", json!("2026-12-07T18:00:00"), "zone"),
            ("/contract_version", json!(2), "contract_version"),
        ] {
            let mut doc = document();
            *doc.pointer_mut(pointer).unwrap() = value;
            let e = transition_document(doc.to_string().as_bytes(), ID)
                .err()
                .unwrap();
            assert!(e.contains(said), "{pointer}: {e}");
        }
    }
}
