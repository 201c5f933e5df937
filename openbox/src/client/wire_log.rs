//! The debug log of Core traffic (`OPENBOX_DEBUG=1` or `OpenBoxConfigBuilder::debug`): every
//! request and answer at debug level, target `openbox::wire`.
//!
//! What is logged is what helps to read a verdict — path, marks, status, time, the JSON bodies —
//! and never what authenticates: headers are not logged (the API key and the signature live
//! there), and in the bodies the value of every sensitive name is masked by the same rule that
//! keeps secrets from Core. Bodies that are not JSON are logged by size only: an error page
//! can echo anything.

use std::time::Duration;

use serde_json::Value;

use super::GovernanceApiError;
use crate::secrets::SensitiveNames;

/// The target of every line.
pub(crate) const TARGET: &str = "openbox::wire";

/// Longer bodies are cut here (in characters), so that one large activity output does not
/// flood the log.
pub(crate) const LOGGED_BODY_CHARS: usize = 4096;

/// Keys of the SDK's own bodies (at their root) whose names the rule would mask but whose
/// values are identifiers, not secrets, and are what a reader of the log looks for.
const READABLE_ROOT_KEYS: [&str; 1] = ["multi_agent_session_id"];

/// `body` as it may be logged: JSON with sensitive values masked and cut, else its size.
pub(crate) fn loggable(body: &[u8], names: &SensitiveNames) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            let readable: Vec<(&str, Value)> = match value.as_object_mut() {
                Some(root) => {
                    let scalar = |v: &Value| !v.is_object() && !v.is_array();
                    let keys: Vec<&str> = READABLE_ROOT_KEYS
                        .into_iter()
                        .filter(|k| root.get(*k).is_some_and(scalar))
                        .collect();
                    keys.into_iter()
                        .filter_map(|k| Some((k, root.remove(k)?)))
                        .collect()
                }
                None => Vec::new(),
            };
            SensitiveNames::mask_json(&mut value, &|name| names.is_sensitive(name));
            if let Some(root) = value.as_object_mut() {
                for (k, v) in readable {
                    root.insert(k.to_owned(), v);
                }
            }
            let text = value.to_string();
            match text.char_indices().nth(LOGGED_BODY_CHARS) {
                Some((cut, _)) => format!("{}… ({} more bytes)", &text[..cut], text.len() - cut),
                None => text,
            }
        }
        Err(_) if body.is_empty() => "(empty)".to_owned(),
        Err(_) => format!("({} bytes, not JSON)", body.len()),
    }
}

/// Logs a request about to be sent.
pub(crate) fn request(path: &str, marks: &str, body: &[u8], names: &SensitiveNames) {
    tracing::debug!(
        target: TARGET,
        path,
        marks,
        body = %loggable(body, names),
        "OpenBox Core request"
    );
}

/// Logs the answer (or the failure) of a request.
pub(crate) fn answer(
    path: &str,
    elapsed: Duration,
    result: &Result<(u16, bytes::Bytes), GovernanceApiError>,
    names: &SensitiveNames,
) {
    match result {
        Ok((status, body)) => tracing::debug!(
            target: TARGET,
            path,
            status,
            elapsed_ms = elapsed.as_secs_f64() * 1e3,
            body = %loggable(body, names),
            "OpenBox Core answer"
        ),
        Err(e) => tracing::debug!(
            target: TARGET,
            path,
            elapsed_ms = elapsed.as_secs_f64() * 1e3,
            error = %e,
            "OpenBox Core request failed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sensitive_values_are_masked_and_others_kept() {
        let names = SensitiveNames::with_keys(["card"]);
        let body = br#"{"activity_input":[{"password":"hunter2","card":"4111","amount":3}],"verdict":"allow"}"#;
        let text = loggable(body, &names);
        assert!(
            !text.contains("hunter2") && !text.contains("4111"),
            "{text}"
        );
        assert!(
            text.contains(r#""amount":3"#) && text.contains("allow"),
            "{text}"
        );
    }

    /// The multi-agent session id is an identifier: readable at the root of a body, while
    /// a secret under a name with "session" in it stays masked, and so does the same key
    /// anywhere else (an activity's input is the user's).
    #[test]
    fn the_session_id_is_readable_and_secrets_stay_masked() {
        let names = SensitiveNames::default();
        let body = br#"{"multi_agent_session_id":"sess-4711","activity_input":[{"session_token":"s3cr3t","multi_agent_session_id":"nested-9"}]}"#;
        let text = loggable(body, &names);
        assert!(
            text.contains(r#""multi_agent_session_id":"sess-4711""#),
            "{text}"
        );
        assert!(
            !text.contains("s3cr3t") && !text.contains("nested-9"),
            "{text}"
        );
        // A value that is not a plain identifier is masked as before.
        let text = loggable(br#"{"multi_agent_session_id":{"token":"x1y2"}}"#, &names);
        assert_eq!(text, r#"{"multi_agent_session_id":"[REDACTED]"}"#);
    }

    #[test]
    fn non_json_is_logged_by_size_only() {
        let names = SensitiveNames::default();
        assert_eq!(
            loggable(b"<html>token=abc</html>", &names),
            "(22 bytes, not JSON)"
        );
        assert_eq!(loggable(b"", &names), "(empty)");
    }

    proptest! {
        /// Whatever the body, the log line is bounded and never holds a sensitive value.
        #[test]
        fn bounded_and_masked(text in "\\PC{0,6000}", secret in "[a-z]{12}") {
            let body = serde_json::json!({"note": text, "api_key": secret}).to_string();
            let line = loggable(body.as_bytes(), &SensitiveNames::default());
            prop_assert!(line.chars().count() <= LOGGED_BODY_CHARS + 40);
            prop_assert!(!line.contains(&secret));
        }
    }
}
