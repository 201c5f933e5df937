//! Metrics of Core calls through the [`metrics`](https://docs.rs/metrics) facade.
//!
//! Nothing is recorded anywhere until the application installs a recorder (for example
//! `metrics-exporter-prometheus`); without one every call below is a no-op. Names and labels:
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `openbox_core_calls_total` | counter | `event_type`, `hook` (`true`/`false`), `outcome`, `error_kind` |
//! | `openbox_core_call_duration_seconds` | histogram | `outcome` |
//! | `openbox_events_lost_total` | counter | `event_type`, `reason` |
//! | `openbox_approval_polls_total` | counter | `outcome` |
//! | `openbox_inputs_not_captured_total` | counter | `activity_type` |
//! | `openbox_observed_verdicts_total` | counter | `event_type`, `hook`, `would_have` |
//! | `openbox_circuit_breaker_state` | gauge | — (0 closed, 1 open, 2 half-open) |
//! | `openbox_circuit_breaker_transitions_total` | counter | `to` |
//!
//! `outcome` is `allowed`, `constrained`, `approval`, `blocked` or `halted` when Core gave that
//! verdict, and `error` when it gave none; `error_kind` then says why (`unreachable`, `timeout`,
//! `http_status`, `unauthorized`, `invalid_response`, `unknown_verdict`, `missing_verdict`,
//! `encode`) and is `none` otherwise. An event Core did not get and that proceeded anyway
//! (`fail_open`) also counts in `openbox_events_lost_total`, with the same kind as `reason`.
//! Approval polls count `pending`, `approved`, `rejected`, `patched` (rejected with a patch: a
//! restart), `expired` or `error`.

use std::time::Duration;

use crate::client::Decision;
use crate::wire::Verdict;

/// Counter of evaluations by outcome.
pub const CORE_CALLS: &str = "openbox_core_calls_total";
/// Histogram of evaluation latency in seconds, by outcome.
pub const CORE_CALL_SECONDS: &str = "openbox_core_call_duration_seconds";
/// Counter of events Core did not get that proceeded (`fail_open`), by reason.
pub const EVENTS_LOST: &str = "openbox_events_lost_total";
/// Counter of approval polls by outcome.
pub const APPROVAL_POLLS: &str = "openbox_approval_polls_total";
/// Counter of evaluations in observe mode, by what would have happened.
pub const OBSERVED_VERDICTS: &str = "openbox_observed_verdicts_total";
/// Counter of governed activity attempts whose arguments could not be reported.
pub const INPUTS_NOT_CAPTURED: &str = "openbox_inputs_not_captured_total";

/// Registers the descriptions with the installed recorder (exporters show them as help text).
/// Optional; call it after installing a recorder.
pub fn describe() {
    ::metrics::describe_counter!(CORE_CALLS, "OpenBox Core evaluations, by outcome");
    ::metrics::describe_histogram!(
        CORE_CALL_SECONDS,
        ::metrics::Unit::Seconds,
        "Latency of OpenBox Core evaluations, by outcome"
    );
    ::metrics::describe_counter!(
        EVENTS_LOST,
        "Governance events Core did not get that proceeded under fail_open, by reason"
    );
    ::metrics::describe_counter!(APPROVAL_POLLS, "Approval polls, by outcome");
    ::metrics::describe_gauge!(
        crate::client::breaker_metrics::STATE,
        "The Core client's circuit breaker: 0 closed, 1 open, 2 half-open"
    );
    ::metrics::describe_counter!(
        crate::client::breaker_metrics::TRANSITIONS,
        "Circuit breaker transitions, by the state entered"
    );
    ::metrics::describe_counter!(
        OBSERVED_VERDICTS,
        "Evaluations in observe mode, by what would have happened (not enforced)"
    );
    ::metrics::describe_counter!(
        INPUTS_NOT_CAPTURED,
        "Governed activity attempts whose arguments could not be reported to Core, by activity type"
    );
}

fn verdict_outcome(v: Verdict) -> &'static str {
    match v {
        Verdict::Allow => "allowed",
        Verdict::Constrain => "constrained",
        Verdict::RequireApproval => "approval",
        Verdict::Block => "blocked",
        Verdict::Halt => "halted",
    }
}

/// Records an evaluation made in observe mode.
pub(crate) fn record_observed(event_type: &'static str, hook: bool, would_have: &'static str) {
    let hook = if hook { "true" } else { "false" };
    ::metrics::counter!(OBSERVED_VERDICTS, "event_type" => event_type, "hook" => hook, "would_have" => would_have)
        .increment(1);
}

/// Records an activity attempt whose arguments could not be reported.
pub(crate) fn record_uncaptured_input(activity_type: &str) {
    ::metrics::counter!(INPUTS_NOT_CAPTURED, "activity_type" => activity_type.to_owned())
        .increment(1);
}

/// Records one evaluation of an `event_type` body (a hook evaluation if `hook`).
pub(crate) fn record_evaluation(
    event_type: &'static str,
    hook: bool,
    decision: &Decision,
    elapsed: Duration,
) {
    let (outcome, error_kind) = match decision {
        Decision::Verdict(r) => (verdict_outcome(r.verdict), "none"),
        Decision::Proceed(e) | Decision::Halt(e) => ("error", e.kind()),
    };
    let hook = if hook { "true" } else { "false" };
    ::metrics::counter!(CORE_CALLS, "event_type" => event_type, "hook" => hook, "outcome" => outcome, "error_kind" => error_kind)
        .increment(1);
    ::metrics::histogram!(CORE_CALL_SECONDS, "outcome" => outcome).record(elapsed.as_secs_f64());
    if let Decision::Proceed(e) = decision {
        ::metrics::counter!(EVENTS_LOST, "event_type" => event_type, "reason" => e.kind())
            .increment(1);
    }
}

/// Records one approval poll.
pub(crate) fn record_approval_poll(outcome: &'static str) {
    ::metrics::counter!(APPROVAL_POLLS, "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::GovernanceApiError;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use metrics_util::{CompositeKey, MetricKind};

    fn label<'a>(key: &'a CompositeKey, name: &str) -> Option<&'a str> {
        key.key()
            .labels()
            .find(|l| l.key() == name)
            .map(|l| l.value())
    }

    #[test]
    fn evaluations_and_losses_are_counted_by_outcome() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        ::metrics::with_local_recorder(&recorder, || {
            let lost = Decision::Proceed(GovernanceApiError::Timeout(Duration::from_secs(1)));
            record_evaluation("ActivityStarted", false, &lost, Duration::from_millis(2));
            record_evaluation("ActivityStarted", true, &lost, Duration::from_millis(2));
            let halted = Decision::Halt(GovernanceApiError::Unauthorized { status: 401 });
            record_evaluation("WorkflowStarted", false, &halted, Duration::from_millis(1));
            record_approval_poll("pending");
        });
        let snapshot = snapshotter.snapshot().into_vec();
        let counter = |name: &str, pairs: &[(&str, &str)]| -> u64 {
            snapshot
                .iter()
                .filter(|(k, ..)| k.kind() == MetricKind::Counter && k.key().name() == name)
                .filter(|(k, ..)| pairs.iter().all(|(n, v)| label(k, n) == Some(*v)))
                .map(|(.., v)| match v {
                    DebugValue::Counter(c) => *c,
                    _ => 0,
                })
                .sum()
        };
        assert_eq!(counter(CORE_CALLS, &[("outcome", "error")]), 3);
        assert_eq!(counter(CORE_CALLS, &[("hook", "true")]), 1);
        assert_eq!(
            counter(CORE_CALLS, &[("error_kind", "unauthorized")]),
            1,
            "a halt keeps its kind"
        );
        assert_eq!(counter(EVENTS_LOST, &[("reason", "timeout")]), 2);
        assert_eq!(counter(EVENTS_LOST, &[]), 2, "a halt is not a lost event");
        assert_eq!(counter(APPROVAL_POLLS, &[("outcome", "pending")]), 1);
        let samples: usize = snapshot
            .iter()
            .filter(|(k, ..)| k.key().name() == CORE_CALL_SECONDS)
            .map(|(.., v)| match v {
                DebugValue::Histogram(h) => h.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(samples, 3);
    }
}
