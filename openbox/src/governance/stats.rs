//! Counters kept by a [`Governor`](super::Governor): what Core decided, what was lost, how much
//! time governance took, and how much per-activity state is alive.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::client::{BreakerState, CoreClient, Decision};
use crate::wire::Verdict;

/// A snapshot-able set of counters. All methods are lock-free.
#[derive(Debug, Default)]
pub(crate) struct GovernanceStats {
    client: Option<CoreClient>,
    verdicts: [AtomicU64; 5],
    lost_fail_open: AtomicU64,
    halted_no_verdict: AtomicU64,
    governance_nanos: AtomicU64,
    open_scopes: AtomicI64,
    inputs_not_captured: AtomicU64,
    intercepted_attempts: AtomicI64,
    observed_interventions: AtomicU64,
}

/// A copy of the counters at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Verdicts received: allow, constrain, require_approval, block, halt.
    pub verdicts: [u64; 5],
    /// Events Core did not get a verdict for and that proceeded (fail_open, reads under
    /// fail_closed_destructive, observe mode).
    pub lost_fail_open: u64,
    /// Operations stopped because Core gave no verdict (fail_closed, 401/403); never one that
    /// observe mode let through.
    pub halted_no_verdict: u64,
    /// Time spent in governance (Core calls, serialization, redaction), in nanoseconds.
    pub governance_nanos: u64,
    /// Per-activity scopes alive now (0 when no governed activity runs).
    pub open_scopes: i64,
    /// Governed activity attempts whose arguments could not be reported (`activity_input: []`).
    pub inputs_not_captured: u64,
    /// Activity attempts this governor's interceptor tracks now (0 when idle).
    pub intercepted_attempts: i64,
    /// Evaluations in observe mode that would have stopped, redacted or held something.
    pub observed_interventions: u64,
    /// Where the Core client's circuit breaker stands.
    pub breaker_state: BreakerState,
    /// How many times the circuit breaker changed state.
    pub breaker_transitions: u64,
}

impl StatsSnapshot {
    /// All evaluations answered with a verdict.
    pub fn evaluations(&self) -> u64 {
        self.verdicts.iter().sum()
    }
}

fn slot(v: Verdict) -> usize {
    match v {
        Verdict::Allow => 0,
        Verdict::Constrain => 1,
        Verdict::RequireApproval => 2,
        Verdict::Block => 3,
        Verdict::Halt => 4,
    }
}

impl GovernanceStats {
    pub(crate) fn count(&self, decision: &Decision) {
        match decision {
            Decision::Verdict(r) => self.verdicts[slot(r.verdict)].fetch_add(1, Ordering::Relaxed),
            Decision::Proceed(_) => self.lost_fail_open.fetch_add(1, Ordering::Relaxed),
            Decision::Halt(_) => self.halted_no_verdict.fetch_add(1, Ordering::Relaxed),
        };
    }

    pub(crate) fn add_governance_time(&self, d: Duration) {
        self.governance_nanos.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn input_not_captured(&self) {
        self.inputs_not_captured.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn observed_intervention(&self) {
        self.observed_interventions.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn attempt_intercepted(&self) {
        self.intercepted_attempts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn attempt_released(&self) {
        self.intercepted_attempts.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn scope_opened(&self) {
        self.open_scopes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn scope_closed(&self) {
        self.open_scopes.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counters that also report `client`'s circuit breaker.
    pub(crate) fn for_client(client: CoreClient) -> Self {
        GovernanceStats {
            client: Some(client),
            ..GovernanceStats::default()
        }
    }

    /// The current values.
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let mut verdicts = [0; 5];
        for (out, counter) in verdicts.iter_mut().zip(&self.verdicts) {
            *out = counter.load(Ordering::Relaxed);
        }
        StatsSnapshot {
            verdicts,
            lost_fail_open: self.lost_fail_open.load(Ordering::Relaxed),
            halted_no_verdict: self.halted_no_verdict.load(Ordering::Relaxed),
            governance_nanos: self.governance_nanos.load(Ordering::Relaxed),
            open_scopes: self.open_scopes.load(Ordering::Relaxed),
            inputs_not_captured: self.inputs_not_captured.load(Ordering::Relaxed),
            intercepted_attempts: self.intercepted_attempts.load(Ordering::Relaxed),
            observed_interventions: self.observed_interventions.load(Ordering::Relaxed),
            breaker_state: self
                .client
                .as_ref()
                .map_or(BreakerState::Closed, CoreClient::breaker_state),
            breaker_transitions: self
                .client
                .as_ref()
                .map_or(0, CoreClient::breaker_transitions),
        }
    }
}
