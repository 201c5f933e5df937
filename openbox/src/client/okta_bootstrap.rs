//! The Okta identity's bootstrap: with only the private key configured, the ids an assertion
//! names come from Core (`GET /api/v2/auth/bootstrap`, the API key alone), once, before the
//! first signed request. Nothing in the document is trusted for being fetched — Core checks
//! every claim again — but it is checked strictly, and the key Core selected must be the local
//! key (RFC 7638 thumbprints equal) before anything is signed with it.

use serde_json::Value;

use super::GovernanceApiError;
use crate::config::okta::OktaAgentIds;

/// Path of the bootstrap document.
pub const BOOTSTRAP_PATH: &str = "/api/v2/auth/bootstrap";

/// The one document version this SDK reads.
const BOOTSTRAP_VERSION: i64 = 1;

/// Said when the key Core selected is not the configured one (the other OpenBox SDKs' words).
pub(crate) const KEY_MISMATCH: &str = "The configured private key does not match the selected \
     Okta credential for this OpenBox agent. Export the private key associated with the \
     selected credential, or rotate the agent credential.";

/// The ids a bootstrap answer gives, or why there are none: `status` and `body` as Core sent
/// them, `thumbprint` the local key's.
pub(crate) fn ids_from_answer(
    status: u16,
    body: &[u8],
    thumbprint: &str,
) -> Result<OktaAgentIds, GovernanceApiError> {
    let refused = |reason: String| GovernanceApiError::IdentityBootstrap(reason);
    match status {
        200..=299 => {}
        404 => {
            return Err(refused(
                "this Core does not support Okta identity bootstrap (404): upgrade Core or \
                 configure every id of the Okta identity"
                    .into(),
            ));
        }
        // An outage: the error policy decides, and the next send asks again.
        429 | 500.. => {
            return Err(GovernanceApiError::Status {
                status,
                body: String::from_utf8_lossy(body).chars().take(200).collect(),
            });
        }
        _ => {
            let code = reason_code(body);
            let shown = code
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            return Err(refused(format!(
                "HTTP {status}{shown}: {}",
                guidance(code.as_deref())
            )));
        }
    }
    let document: Value = serde_json::from_slice(body)
        .map_err(|_| refused("the bootstrap answer is not JSON".into()))?;
    let ids = parse_document(&document).map_err(|e| refused(format!("invalid document: {e}")))?;
    let selected = document["okta"]["public_jwk_thumbprint"]
        .as_str()
        .unwrap_or_default();
    if selected != thumbprint {
        return Err(refused(KEY_MISMATCH.into()));
    }
    Ok(ids)
}

/// The document's ids, every field checked.
fn parse_document(document: &Value) -> Result<OktaAgentIds, String> {
    if !document.is_object() {
        return Err("expected a JSON object".into());
    }
    let version = document.get("bootstrap_version");
    if version.and_then(Value::as_i64) != Some(BOOTSTRAP_VERSION)
        || version == Some(&Value::Bool(true))
    {
        return Err(format!(
            "bootstrap_version {} is not supported (this SDK reads {BOOTSTRAP_VERSION}): upgrade the SDK",
            version.map_or("missing".into(), Value::to_string)
        ));
    }
    let method = text(document, "identity_method")?;
    if method != "okta_ai_agent" {
        return Err(format!(
            "the agent's identity method is {method:?}, not \"okta_ai_agent\""
        ));
    }
    let okta = document
        .get("okta")
        .filter(|v| v.is_object())
        .ok_or("okta must be an object")?;
    let algorithm = text(okta, "algorithm").map_err(|e| format!("okta.{e}"))?;
    if !algorithm.eq_ignore_ascii_case("RS256") {
        return Err(format!("okta.algorithm {algorithm:?} is not RS256"));
    }
    text(okta, "public_jwk_thumbprint").map_err(|e| format!("okta.{e}"))?;
    let authority = document
        .get("authority")
        .filter(|v| v.is_object())
        .ok_or("authority must be an object")?;
    for field in [
        "assignment_id",
        "provider_generation_id",
        "activation_version",
        "identity_id",
        "credential_id",
        "projection_version",
    ] {
        text(authority, field).map_err(|e| format!("authority.{e}"))?;
    }
    match authority.get("generation_number") {
        Some(Value::Number(n)) if n.as_i64().is_some_and(|n| n >= 1) => {}
        _ => return Err("authority.generation_number must be a positive integer".into()),
    }
    Ok(OktaAgentIds {
        openbox_agent_id: text(document, "openbox_agent_id")?,
        organization_id: text(document, "organization_id")?,
        deployment_id: text(document, "deployment_id")?,
        external_agent_id: text(okta, "external_agent_id").map_err(|e| format!("okta.{e}"))?,
        key_id: text(okta, "credential_kid").map_err(|e| format!("okta.{e}"))?,
        audience: text(document, "assertion_audience")?,
    })
}

/// A non-empty string member.
fn text(object: &Value, name: &str) -> Result<String, String> {
    match object.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        _ => Err(format!("{name} must be a non-empty string")),
    }
}

/// `reason_code`, else `reason`, of an error body.
fn reason_code(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let code = match value.get("reason_code") {
        Some(code) => code,
        None => value.get("reason")?,
    };
    code.as_str().map(|c| c.chars().take(64).collect())
}

/// What an operator does about a bootstrap refusal.
fn guidance(code: Option<&str>) -> &'static str {
    match code {
        Some("invalid_api_key") => "the API key is absent, invalid, or revoked",
        Some("agent_inactive") => "this agent is not active in OpenBox",
        Some("identity_method_mismatch") => {
            "this agent is not configured for Okta identity verification"
        }
        Some("selected_credential_missing") => {
            "select or register an Okta credential for this agent in OpenBox"
        }
        Some("selected_credential_inactive") => {
            "the agent's selected Okta credential or its provider link is not active"
        }
        Some("credential_algorithm_unsupported") => {
            "the selected Okta credential uses an algorithm this contract does not allow"
        }
        Some("provider_metadata_stale") => {
            "OpenBox has not recently synchronized this credential from Okta; retry shortly"
        }
        Some("identity_configuration_invalid") => {
            "the OpenBox Core deployment's identity configuration is incomplete"
        }
        Some("verifier_unavailable") => {
            "OpenBox Core is temporarily unable to resolve identity metadata; retry shortly"
        }
        _ => "check the API key and this agent's identity configuration in OpenBox",
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn document() -> Value {
        json!({
            "bootstrap_version": 1,
            "identity_method": "okta_ai_agent",
            "openbox_agent_id": "agent-1",
            "organization_id": "org-1",
            "deployment_id": "dep-1",
            "assertion_audience": "https://core.example",
            "okta": {
                "external_agent_id": "wlp-1",
                "credential_kid": "kid-1",
                "algorithm": "rs256",
                "public_jwk_thumbprint": "T",
            },
            "authority": {
                "assignment_id": "a", "provider_generation_id": "p", "generation_number": 1,
                "activation_version": "v", "identity_id": "i", "credential_id": "c",
                "projection_version": "1",
            },
        })
    }

    fn answer(document: &Value) -> Result<OktaAgentIds, GovernanceApiError> {
        ids_from_answer(200, document.to_string().as_bytes(), "T")
    }

    #[test]
    fn a_good_document_gives_the_ids() {
        let ids = answer(&document()).unwrap();
        assert_eq!(ids.key_id, "kid-1");
        assert_eq!(ids.external_agent_id, "wlp-1");
        assert_eq!(ids.audience, "https://core.example");
    }

    #[test]
    fn every_defect_is_refused_by_name() {
        let cases: [(&str, Value, &str); 9] = [
            ("/bootstrap_version", json!(2), "bootstrap_version"),
            ("/bootstrap_version", json!(true), "bootstrap_version"),
            ("/identity_method", json!("openbox_did"), "identity method"),
            ("/okta/algorithm", json!("ES256"), "RS256"),
            ("/okta/credential_kid", json!(""), "okta.credential_kid"),
            ("/assertion_audience", json!(7), "assertion_audience"),
            (
                "/authority/generation_number",
                json!(0),
                "generation_number",
            ),
            (
                "/authority/identity_id",
                Value::Null,
                "authority.identity_id",
            ),
            (
                "/okta/public_jwk_thumbprint",
                json!("other"),
                "does not match",
            ),
        ];
        for (pointer, value, said) in cases {
            let mut doc = document();
            *doc.pointer_mut(pointer).unwrap() = value;
            match answer(&doc) {
                Err(GovernanceApiError::IdentityBootstrap(reason)) => {
                    assert!(reason.contains(said), "{pointer}: {reason}")
                }
                other => panic!("{pointer}: {other:?}"),
            }
        }
    }

    #[test]
    fn statuses_are_refusals_or_outages() {
        let refused = |status, body: &str| match ids_from_answer(status, body.as_bytes(), "T") {
            Err(GovernanceApiError::IdentityBootstrap(reason)) => reason,
            other => panic!("{status}: {other:?}"),
        };
        assert!(refused(404, "").contains("does not support"));
        let r = refused(403, r#"{"reason_code":"agent_inactive"}"#);
        assert!(
            r.contains("(agent_inactive)") && r.contains("not active"),
            "{r}"
        );
        assert!(refused(401, "garbage").contains("HTTP 401"));
        assert!(matches!(
            ids_from_answer(503, b"", "T"),
            Err(GovernanceApiError::Status { status: 503, .. })
        ));
    }

    proptest! {
        #[test]
        fn any_answer_is_ids_or_an_error_never_a_panic(
            status in 100u16..600,
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let _ = ids_from_answer(status, &body, "T");
        }
    }
}
