//! Trace and span ids: unique, random-looking hex strings, without a random-number crate.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// A random-looking, unique 64-bit value (SipHash of a counter with a per-process key).
pub(crate) fn random_u64() -> u64 {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let mut h = KEY.get_or_init(RandomState::new).build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    match h.finish() {
        0 => 1,
        v => v,
    }
}

/// 16 hex digits.
pub(crate) fn new_span_id() -> String {
    format!("{:016x}", random_u64())
}

/// 32 hex digits.
pub(crate) fn new_trace_id() -> String {
    format!("{:016x}{:016x}", random_u64(), random_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_of_the_right_length_and_unique() {
        let a = new_span_id();
        let b = new_span_id();
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(new_trace_id().len(), 32);
    }
}
