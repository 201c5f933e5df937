//! Multi-agent sessions: the application names the session a workflow belongs to in its memo,
//! and every event of the run — workflow events, activities and the operations inside them —
//! carries it as `multi_agent_session_id`.
//!
//! The workflow reads the memo (recorded at the start, so replays agree) and stamps the session on
//! a header of every activity it schedules; the activity reads it from there. Both names are the
//! reference's, so workflows and activities of either SDK understand each other.

use std::collections::HashMap;

use temporalio_common::protos::temporal::api::common::v1::Payload;

use super::codec::{json_payload, payload_to_json};

/// The memo key an application starts a workflow with to put it in a session.
pub const SESSION_MEMO_KEY: &str = "openbox_multi_agent_session_id";

/// The Temporal header that carries the session from a workflow to its activities.
pub const SESSION_HEADER: &str = "openbox-multi-agent-session-id";

/// The session named by `fields` (a memo or headers) under `key`: a non-blank JSON string.
fn session_in(fields: &HashMap<String, Payload>, key: &str) -> Option<String> {
    match payload_to_json(fields.get(key)?) {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s),
        _ => None,
    }
}

/// The session of a workflow, from its memo.
pub(crate) fn session_from_memo(memo: &HashMap<String, Payload>) -> Option<String> {
    session_in(memo, SESSION_MEMO_KEY)
}

/// The session of an activity, from its headers.
pub(crate) fn session_from_headers(headers: &HashMap<String, Payload>) -> Option<String> {
    session_in(headers, SESSION_HEADER)
}

/// Stamps `session` on the headers of an activity being scheduled.
pub(crate) fn stamp(headers: &mut HashMap<String, Payload>, session: &str) {
    headers.insert(
        SESSION_HEADER.to_owned(),
        json_payload(&serde_json::Value::from(session)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamped_session_reads_back_and_blank_ones_do_not_count() {
        let mut headers = HashMap::new();
        assert_eq!(session_from_headers(&headers), None);
        stamp(&mut headers, "sess-1");
        assert_eq!(session_from_headers(&headers).as_deref(), Some("sess-1"));
        stamp(&mut headers, "  ");
        assert_eq!(session_from_headers(&headers), None);
        let memo = HashMap::from([(
            SESSION_MEMO_KEY.to_owned(),
            json_payload(&serde_json::json!(42)),
        )]);
        assert_eq!(session_from_memo(&memo), None, "a session id is a string");
    }
}
