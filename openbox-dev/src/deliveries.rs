//! Evaluations already answered, by the event id the SDK sends with a spool, so that an event
//! delivered again — late, after the SDK gave up waiting for an answer Core did send, or after
//! a worker crashed before it noted the delivery — is logged as a repeat, not as a new event.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde_json::Value;

/// How many answered event ids are remembered (oldest forgotten first).
pub const REMEMBERED_EVENTS: usize = 10_000;
/// Longer ids are not remembered (the SDK sends 32 hex digits).
const MAX_ID_LEN: usize = 128;

/// Answered evaluations by event id, bounded.
#[derive(Debug, Default)]
pub struct Deliveries {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    answered: HashMap<String, (u64, Value)>,
    order: VecDeque<String>,
}

fn usable(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Deliveries {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The log position and answer of the first delivery of `id`, if it was answered.
    pub fn first(&self, id: &str) -> Option<(u64, Value)> {
        self.lock().answered.get(id).cloned()
    }

    /// Notes that `id` was answered with `response`, logged at `seq`.
    pub fn remember(&self, id: &str, seq: u64, response: &Value) {
        if !usable(id) {
            return;
        }
        let mut inner = self.lock();
        if inner.answered.contains_key(id) {
            return;
        }
        if inner.order.len() >= REMEMBERED_EVENTS
            && let Some(oldest) = inner.order.pop_front()
        {
            inner.answered.remove(&oldest);
        }
        inner.order.push_back(id.to_owned());
        inner
            .answered
            .insert(id.to_owned(), (seq, response.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_first_answer_within_a_bound() {
        let d = Deliveries::default();
        d.remember("a1", 1, &Value::from("allow"));
        d.remember("a1", 2, &Value::from("block"));
        assert_eq!(d.first("a1"), Some((1, Value::from("allow"))));
        d.remember("bad id", 3, &Value::Null);
        assert_eq!(d.first("bad id"), None);
        for i in 0..REMEMBERED_EVENTS {
            d.remember(&format!("x{i}"), 10 + i as u64, &Value::Null);
        }
        assert_eq!(d.first("a1"), None, "the oldest is forgotten");
        assert!(d.first(&format!("x{}", REMEMBERED_EVENTS - 1)).is_some());
    }
}
