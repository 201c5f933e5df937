//! Settings of the Core client's circuit breaker (what it does: see [`BreakerSettings`]).

use std::time::Duration;

/// Default number of consecutive failures that opens the breaker.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
/// Default time the breaker stays open before it lets a probe through.
pub const DEFAULT_COOL_DOWN: Duration = Duration::from_secs(10);

/// How the breaker behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failures that open the breaker; 0 disables it.
    pub failure_threshold: u32,
    /// How long it stays open before a probe call is let through.
    pub cool_down: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failure_threshold: DEFAULT_FAILURE_THRESHOLD,
            cool_down: DEFAULT_COOL_DOWN,
        }
    }
}
