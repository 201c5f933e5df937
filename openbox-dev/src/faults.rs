//! Fault injection for tests of the SDK's error handling: a fixed delay, a share of HTTP
//! errors, of garbage 200 bodies, of unknown verdicts and of reset connections.
//!
//! Rates are applied deterministically — with rate 0.3, exactly 3 of every 10 governance
//! requests fail, evenly spread — so tests do not depend on luck.

use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The end of a fault delay, slept precisely (see [`FaultInjector::wait`]).
pub const PRECISE_TAIL: Duration = Duration::from_millis(3);

/// The fault settings. Change them at run time with `PUT /api/dev/faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Delay before every governance answer (evaluate and approval), in milliseconds.
    pub delay_ms: u64,
    /// Share of governance requests answered with `error_status` (0.0–1.0).
    pub error_rate: f64,
    /// Status of injected errors (500 by default; 401/403 simulate a revoked key).
    pub error_status: u16,
    /// Share answered `200` with a body that is not a verdict (truncated JSON).
    pub garbage_rate: f64,
    /// Share answered `200` with `{"verdict": "maybe"}`.
    pub unknown_verdict_rate: f64,
    /// Share whose connection is closed without an answer.
    pub reset_rate: f64,
    /// Status forced on `GET /api/v1/auth/validate` (e.g. 401), if set.
    pub validate_status: Option<u16>,
    /// Seconds the dev Core's clock runs ahead (negative: behind) when it checks Okta agent
    /// assertions' lifetimes: a host clock off by that much.
    pub clock_offset_seconds: i64,
    /// Every workload token presented is expired, for good (401 `workload_token_expired`; then
    /// `workload_token_invalid`).
    pub expire_workload_tokens: bool,
    /// Status forced on the workload token endpoint (e.g. 503: the identity provider is down).
    pub token_endpoint_status: Option<u16>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            delay_ms: 0,
            error_rate: 0.0,
            error_status: 500,
            garbage_rate: 0.0,
            unknown_verdict_rate: 0.0,
            reset_rate: 0.0,
            validate_status: None,
            clock_offset_seconds: 0,
            expire_workload_tokens: false,
            token_endpoint_status: None,
        }
    }
}

impl Faults {
    /// Checks ranges; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("garbage_rate", self.garbage_rate),
            ("unknown_verdict_rate", self.unknown_verdict_rate),
            ("reset_rate", self.reset_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, got {rate}"));
            }
        }
        if !(100..=599).contains(&self.error_status) {
            return Err(format!(
                "error_status must be an HTTP status, got {}",
                self.error_status
            ));
        }
        if let Some(s) = self.validate_status
            && !(100..=599).contains(&s)
        {
            return Err(format!("validate_status must be an HTTP status, got {s}"));
        }
        if let Some(s) = self.token_endpoint_status
            && !(100..=599).contains(&s)
        {
            return Err(format!(
                "token_endpoint_status must be an HTTP status, got {s}"
            ));
        }
        Ok(())
    }

    /// `true` when nothing is injected.
    pub fn is_none(&self) -> bool {
        *self == Faults::default()
    }
}

/// What to do with one governance request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer normally.
    None,
    /// Close the connection without answering.
    Reset,
    /// Answer with this HTTP status.
    Error(u16),
    /// Answer 200 with garbage.
    Garbage,
    /// Answer 200 with an unknown verdict.
    UnknownVerdict,
}

impl FaultAction {
    /// Name for the event log.
    pub fn name(self) -> Option<&'static str> {
        match self {
            FaultAction::None => None,
            FaultAction::Reset => Some("reset"),
            FaultAction::Error(_) => Some("error"),
            FaultAction::Garbage => Some("garbage"),
            FaultAction::UnknownVerdict => Some("unknown_verdict"),
        }
    }
}

/// Current settings plus one counter per kind of fault.
#[derive(Default)]
pub struct FaultInjector {
    settings: RwLock<Faults>,
    counters: [AtomicU64; 4],
}

impl FaultInjector {
    /// An injector with these settings.
    pub fn new(faults: Faults) -> Self {
        FaultInjector {
            settings: RwLock::new(faults),
            counters: Default::default(),
        }
    }

    /// The current settings.
    pub fn get(&self) -> Faults {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the settings and restarts the rate counters.
    pub fn set(&self, faults: Faults) -> Result<(), String> {
        faults.validate()?;
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = faults;
        for c in &self.counters {
            c.store(0, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Waits out a fault delay. The runtime's timer works in whole milliseconds and wakes
    /// 1–2 ms late, which turned a 20 ms fault into 22 ms; so all but the last
    /// [`PRECISE_TAIL`] is slept on the timer and the rest on a blocking thread, whose sleep is
    /// precise to a fraction of a millisecond (and holds that thread only that long).
    pub async fn wait(delay: Duration) {
        let deadline = std::time::Instant::now() + delay;
        if delay > PRECISE_TAIL {
            tokio::time::sleep(delay - PRECISE_TAIL).await;
        }
        let rest = deadline.saturating_duration_since(std::time::Instant::now());
        if !rest.is_zero() {
            let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
        }
    }

    /// The delay and the action for the next governance request.
    pub fn next(&self) -> (Duration, FaultAction) {
        let f = self.get();
        let delay = Duration::from_millis(f.delay_ms);
        let checks = [
            (f.reset_rate, FaultAction::Reset),
            (f.error_rate, FaultAction::Error(f.error_status)),
            (f.garbage_rate, FaultAction::Garbage),
            (f.unknown_verdict_rate, FaultAction::UnknownVerdict),
        ];
        for (i, (rate, action)) in checks.into_iter().enumerate() {
            if rate > 0.0 && fires(&self.counters[i], rate) {
                return (delay, action);
            }
        }
        (delay, FaultAction::None)
    }
}

/// Fires on request `n` when `floor((n+1)·rate) > floor(n·rate)`: exactly `rate` of all
/// requests, evenly spread, the first one included when `rate == 1`.
fn fires(counter: &AtomicU64, rate: f64) -> bool {
    let n = counter.fetch_add(1, Ordering::Relaxed) as f64;
    ((n + 1.0) * rate).floor() > (n * rate).floor()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_exact_and_spread() {
        let inj = FaultInjector::new(Faults {
            error_rate: 0.3,
            ..Faults::default()
        });
        let fired: Vec<bool> = (0..10)
            .map(|_| inj.next().1 == FaultAction::Error(500))
            .collect();
        assert_eq!(fired.iter().filter(|f| **f).count(), 3);
        assert_ne!(fired[..3], [true, true, true]);
        let inj = FaultInjector::new(Faults {
            reset_rate: 1.0,
            ..Faults::default()
        });
        assert!((0..5).all(|_| inj.next().1 == FaultAction::Reset));
        assert_eq!(
            FaultInjector::default().next(),
            (Duration::ZERO, FaultAction::None)
        );
    }

    #[test]
    fn validation() {
        assert!(
            Faults {
                error_rate: 1.5,
                ..Faults::default()
            }
            .validate()
            .unwrap_err()
            .contains("error_rate")
        );
        assert!(
            Faults {
                error_status: 42,
                ..Faults::default()
            }
            .validate()
            .is_err()
        );
        assert!(Faults::default().validate().is_ok());
        let inj = FaultInjector::default();
        assert!(
            inj.set(Faults {
                garbage_rate: -1.0,
                ..Faults::default()
            })
            .is_err()
        );
        assert!(inj.get().is_none());
    }
}
