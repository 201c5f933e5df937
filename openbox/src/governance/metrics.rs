//! Recording Core calls, approval polls and observed verdicts (the names and the table are in
//! [`crate::metrics`]).

use std::time::Duration;

use crate::client::Decision;
use crate::wire::Verdict;

use crate::metrics::{
    APPROVAL_POLLS, CORE_CALL_SECONDS, CORE_CALLS, EVENTS_LOST, INPUTS_NOT_CAPTURED,
    OBSERVED_VERDICTS,
};

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
    use crate::client::GovernanceApiError;
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
