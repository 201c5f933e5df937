//! The circuit breaker of the Core client: when Core has failed several calls in a row, stop
//! calling it for a while instead of making every governed operation wait out its timeout.
//!
//! ```text
//! closed ──(threshold consecutive failures)──▶ open ──(cool-down)──▶ half-open
//!   ▲                                           ▲                        │
//!   └───────────────(the probe succeeds)────────┼────────────────────────┤
//!                                               └──(the probe fails)─────┘
//! ```
//!
//! Only unavailability counts as a failure — no connection, no answer within the timeout, a 5xx
//! or 429 — never a verdict, an unreadable answer (Core is up) or a 401/403 (a configuration
//! error). While the breaker is open no call is made: the caller gets
//! [`GovernanceApiError::CircuitOpen`](super::GovernanceApiError::CircuitOpen) at once, and the
//! error policy decides as for any other missing verdict. In half-open, one call goes through as
//! a probe; the others fail at once until it answers.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::error::GovernanceApiError;
use crate::config::BreakerSettings;

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls go to Core.
    Closed,
    /// Calls fail at once.
    Open,
    /// One probe call is let through; the others fail at once.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open`, `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::Open => 1.0,
            BreakerState::HalfOpen => 2.0,
        }
    }
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
struct Inner {
    state: State,
    last_failure: Option<GovernanceApiError>,
}

/// The breaker. One per client; shared by its clones.
#[derive(Debug)]
pub(crate) struct Breaker {
    settings: BreakerSettings,
    inner: Mutex<Inner>,
    transitions: AtomicU64,
}

/// Whether a call may go to Core, and if so whether it is the half-open probe.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    Call,
    Probe,
}

/// Whether Core did not answer `error`'s call because it is unavailable, the breaker included:
/// what the spool keeps for late delivery.
pub(crate) fn is_outage(error: &GovernanceApiError) -> bool {
    is_unavailability(error) || matches!(error, GovernanceApiError::CircuitOpen { .. })
}

/// Whether `error` means Core is unavailable (counted), rather than a refusal or a bad answer.
fn is_unavailability(error: &GovernanceApiError) -> bool {
    match error {
        GovernanceApiError::Unreachable(_) | GovernanceApiError::Timeout(_) => true,
        GovernanceApiError::Status { status, .. } => *status >= 500 || *status == 429,
        _ => false,
    }
}

impl Breaker {
    pub(crate) fn new(settings: BreakerSettings) -> Self {
        Breaker {
            settings,
            inner: Mutex::new(Inner {
                state: State::Closed { failures: 0 },
                last_failure: None,
            }),
            transitions: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn enabled(&self) -> bool {
        self.settings.failure_threshold > 0
    }

    /// Before a call: `Ok` to make it, `Err` to fail at once.
    pub(crate) fn admit(&self) -> Result<Admission, GovernanceApiError> {
        if !self.enabled() {
            return Ok(Admission::Call);
        }
        let mut inner = self.lock();
        match inner.state {
            State::Closed { .. } => Ok(Admission::Call),
            State::Open { until } if Instant::now() >= until => {
                self.enter(&mut inner, State::HalfOpen { probing: true });
                Ok(Admission::Probe)
            }
            State::HalfOpen { probing: false } => {
                inner.state = State::HalfOpen { probing: true };
                Ok(Admission::Probe)
            }
            State::Open { until } => Err(self.open_error(&inner, until)),
            State::HalfOpen { probing: true } => Err(self.open_error(&inner, Instant::now())),
        }
    }

    fn open_error(&self, inner: &Inner, until: Instant) -> GovernanceApiError {
        GovernanceApiError::CircuitOpen {
            retry_in: until.saturating_duration_since(Instant::now()),
            last_failure: inner
                .last_failure
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_default(),
        }
    }

    /// After a call that was admitted: its outcome.
    pub(crate) fn record(&self, admission: Admission, outcome: Result<(), &GovernanceApiError>) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.lock();
        let failed = outcome.err().filter(|e| is_unavailability(e));
        match (admission, failed) {
            (_, None) => {
                if !matches!(inner.state, State::Closed { .. }) {
                    self.enter(&mut inner, State::Closed { failures: 0 });
                } else {
                    inner.state = State::Closed { failures: 0 };
                }
            }
            (Admission::Probe, Some(error)) => {
                inner.last_failure = Some(error.clone());
                let until = Instant::now() + self.settings.cool_down;
                self.enter(&mut inner, State::Open { until });
            }
            (Admission::Call, Some(error)) => {
                inner.last_failure = Some(error.clone());
                if let State::Closed { failures } = inner.state {
                    let failures = failures + 1;
                    if failures >= self.settings.failure_threshold {
                        let until = Instant::now() + self.settings.cool_down;
                        self.enter(&mut inner, State::Open { until });
                    } else {
                        inner.state = State::Closed { failures };
                    }
                }
            }
        }
    }

    /// A probe that never finished (its call was dropped): let the next call probe.
    pub(crate) fn abandon(&self, admission: Admission) {
        if admission == Admission::Probe {
            let mut inner = self.lock();
            if let State::HalfOpen { probing: true } = inner.state {
                inner.state = State::HalfOpen { probing: false };
            }
        }
    }

    fn enter(&self, inner: &mut Inner, state: State) {
        inner.state = state;
        let now = self.public_state(inner);
        self.transitions.fetch_add(1, Ordering::Relaxed);
        ::metrics::gauge!(crate::metrics::CIRCUIT_BREAKER_STATE).set(now.gauge());
        ::metrics::counter!(crate::metrics::CIRCUIT_BREAKER_TRANSITIONS, "to" => now.as_str())
            .increment(1);
        let last = inner
            .last_failure
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        match now {
            BreakerState::Open => tracing::warn!(
                cool_down_ms = u64::try_from(self.settings.cool_down.as_millis()).unwrap_or(u64::MAX),
                last_failure = %last,
                "OpenBox Core circuit breaker open: calls fail at once until a probe succeeds"
            ),
            BreakerState::HalfOpen => {
                tracing::info!("OpenBox Core circuit breaker half-open: probing Core")
            }
            BreakerState::Closed => tracing::info!("OpenBox Core circuit breaker closed"),
        }
    }

    fn public_state(&self, inner: &Inner) -> BreakerState {
        match inner.state {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// The state now.
    pub(crate) fn state(&self) -> BreakerState {
        let inner = self.lock();
        self.public_state(&inner)
    }

    /// Transitions so far.
    pub(crate) fn transitions(&self) -> u64 {
        self.transitions.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn down() -> GovernanceApiError {
        GovernanceApiError::Unreachable("refused".into())
    }

    fn breaker(threshold: u32, cool_down: Duration) -> Breaker {
        Breaker::new(BreakerSettings {
            failure_threshold: threshold,
            cool_down,
        })
    }

    #[test]
    fn opens_after_consecutive_failures_and_probes_after_the_cool_down() {
        let b = breaker(3, Duration::from_millis(30));
        for _ in 0..2 {
            let a = b.admit().unwrap();
            b.record(a, Err(&down()));
        }
        assert_eq!(b.state(), BreakerState::Closed);
        // A success resets the count.
        let a = b.admit().unwrap();
        b.record(a, Ok(()));
        for _ in 0..3 {
            let a = b.admit().unwrap();
            b.record(a, Err(&down()));
        }
        assert_eq!(b.state(), BreakerState::Open);
        let e = b.admit().unwrap_err();
        assert!(matches!(e, GovernanceApiError::CircuitOpen { .. }), "{e:?}");
        assert!(e.to_string().contains("refused"), "{e}");
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.admit(), Ok(Admission::Probe));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.admit().is_err(), "one probe at a time");
        b.record(Admission::Probe, Err(&down()));
        assert_eq!(b.state(), BreakerState::Open);
        std::thread::sleep(Duration::from_millis(40));
        let probe = b.admit().unwrap();
        b.record(probe, Ok(()));
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.transitions(), 5);
    }

    #[test]
    fn only_unavailability_counts() {
        let b = breaker(1, Duration::from_secs(60));
        for e in [
            GovernanceApiError::Unauthorized { status: 401 },
            GovernanceApiError::Status {
                status: 400,
                body: String::new(),
            },
            GovernanceApiError::InvalidResponse(crate::wire::ResponseError::MissingVerdict),
        ] {
            let a = b.admit().unwrap();
            b.record(a, Err(&e));
            assert_eq!(b.state(), BreakerState::Closed, "{e}");
        }
        let a = b.admit().unwrap();
        b.record(
            a,
            Err(&GovernanceApiError::Status {
                status: 503,
                body: String::new(),
            }),
        );
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn a_dropped_probe_lets_the_next_call_probe_and_zero_disables() {
        let b = breaker(1, Duration::ZERO);
        let a = b.admit().unwrap();
        b.record(a, Err(&down()));
        let probe = b.admit().unwrap();
        assert_eq!(probe, Admission::Probe);
        b.abandon(probe);
        assert_eq!(b.admit(), Ok(Admission::Probe));
        let off = breaker(0, Duration::ZERO);
        for _ in 0..10 {
            let a = off.admit().unwrap();
            off.record(a, Err(&down()));
        }
        assert_eq!(off.state(), BreakerState::Closed);
    }
}
