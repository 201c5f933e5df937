//! Enforcement integrity: no operation slips past governance, no secret reaches Core. Each test
//! tries one way around the SDK — a look-alike of Core's URL, a redirect, a guardrail on a hook, a write hidden in SQL,
//! a value hidden in a URL, a header, a body, a database error or a redis command, an unusable
//! redaction, a reused approval — against the real Temporal dev server, the dev Core and the
//! machine's PostgreSQL and Redis, and checks what Core saw and what the servers got.

mod approvals;
mod capture;
mod conformance;
mod db;
mod http;
mod identity;
mod lifecycle;
mod patch;
mod sql;
mod workflow;

use openbox_dev::LoggedRequest;
use serde_json::Value;

/// Every logged request as one JSON text, to search for secrets.
pub fn log_text(events: &[LoggedRequest]) -> String {
    events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Hook evaluation bodies.
pub fn hooks(events: &[LoggedRequest]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e.is_hook())
        .map(|e| &e.body)
        .collect()
}

/// The spans of hook evaluations at `stage`, in order.
pub fn spans_at<'a>(events: &'a [LoggedRequest], stage: &str) -> Vec<&'a Value> {
    hooks(events)
        .into_iter()
        .map(|b| &b["spans"][0])
        .filter(|s| s["stage"] == stage)
        .collect()
}

/// Lifecycle bodies of `event_type` (hooks excluded).
pub fn lifecycle<'a>(events: &'a [LoggedRequest], event_type: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| !e.is_hook() && e.event_type() == Some(event_type))
        .map(|e| &e.body)
        .collect()
}
