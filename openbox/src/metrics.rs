//! Metrics, recorded through the [`metrics`](https://docs.rs/metrics) facade: install any
//! recorder (for example `metrics-exporter-prometheus`) and call [`describe`] for the help
//! texts. Without a recorder every recording is a no-op.
//!
//! | Metric | Kind | Labels |
//! |---|---|---|
//! | [`CORE_CALLS`] | counter | `event_type`, `hook` (`true`/`false`), `outcome`, `error_kind` |
//! | [`CORE_CALL_SECONDS`] | histogram | `outcome` |
//! | [`EVENTS_LOST`] | counter | `event_type`, `reason` (the error kind) |
//! | [`APPROVAL_POLLS`] | counter | `outcome` (`pending`, `approved`, `rejected`, `patched`, `expired`, `error`) |
//! | [`INPUTS_NOT_CAPTURED`] | counter | `activity_type` |
//! | [`OBSERVED_VERDICTS`] | counter | `event_type`, `hook`, `would_have` |
//! | [`CIRCUIT_BREAKER_STATE`] | gauge | — (0 closed, 1 open, 2 half-open) |
//! | [`CIRCUIT_BREAKER_TRANSITIONS`] | counter | `to` |
//! | [`SPOOL_EVENTS`] | counter | `outcome` (`spooled`, `delivered`, `dropped`, `torn`, `rejected`, `write_failed`) |
//! | [`SPOOL_BYTES`] | gauge | — |
//! | [`SPOOL_PENDING`] | gauge | — |
//! | [`SPOOL_OLDEST_PENDING_SECONDS`] | gauge | — |
//! | [`SPOOL_DRAIN_RATE`] | gauge | — (events per second, last 10 s) |
//! | [`LATE_VERDICTS`] | counter | `event_type`, `would_have` |
//!
//! `outcome` of a Core call is `allowed`, `constrained`, `approval`, `blocked` or `halted` when
//! Core gave that verdict, and `error` when it gave none; `error_kind` then says why
//! (`unreachable`, `timeout`, `http_status`, `unauthorized`, `invalid_response`,
//! `unknown_verdict`, `missing_verdict`, `encode`, `circuit_open`) and is `none` otherwise. An
//! event Core did not get and that went on anyway (`fail_open`, reads under
//! `fail_closed_destructive`, observe mode) also counts in [`EVENTS_LOST`], with the same kind as
//! `reason`. `would_have` is what an observed or late verdict would have done: `allowed`,
//! `constrained`, `approval`, `blocked`, `halted`, `redacted`, `halted_no_verdict`,
//! `proceeded_no_verdict`.
//!
//! [`Governor::stats`](crate::Governor::stats) gives the same counts in-process, plus the
//! per-activity state alive now.

/// Counter of evaluations by outcome.
pub const CORE_CALLS: &str = "openbox_core_calls_total";
/// Histogram of evaluation latency in seconds, by outcome.
pub const CORE_CALL_SECONDS: &str = "openbox_core_call_duration_seconds";
/// Counter of events Core did not get that went on anyway, by reason.
pub const EVENTS_LOST: &str = "openbox_events_lost_total";
/// Counter of approval polls by outcome.
pub const APPROVAL_POLLS: &str = "openbox_approval_polls_total";
/// Counter of evaluations in observe mode, by what would have happened.
pub const OBSERVED_VERDICTS: &str = "openbox_observed_verdicts_total";
/// Counter of governed activity attempts whose arguments could not be reported.
pub const INPUTS_NOT_CAPTURED: &str = "openbox_inputs_not_captured_total";
/// Gauge of the Core client's circuit breaker: 0 closed, 1 open, 2 half-open.
pub const CIRCUIT_BREAKER_STATE: &str = "openbox_circuit_breaker_state";
/// Counter of circuit breaker transitions, by the state entered.
pub const CIRCUIT_BREAKER_TRANSITIONS: &str = "openbox_circuit_breaker_transitions_total";
/// Counter of spool records by outcome.
pub const SPOOL_EVENTS: &str = "openbox_spool_events_total";
/// Gauge of the bytes the spool holds on disk.
pub const SPOOL_BYTES: &str = "openbox_spool_bytes";
/// Gauge of the events the spool holds that Core has not answered yet.
pub const SPOOL_PENDING: &str = "openbox_spool_pending";
/// Gauge of how long ago the oldest event not delivered yet happened, in seconds.
pub const SPOOL_OLDEST_PENDING_SECONDS: &str = "openbox_spool_oldest_pending_seconds";
/// Gauge of events answered late per second, over the last 10 seconds.
pub const SPOOL_DRAIN_RATE: &str = "openbox_spool_drain_rate";
/// Counter of verdicts of events delivered late, by `event_type` and `would_have`; never
/// enforced.
pub const LATE_VERDICTS: &str = "openbox_late_verdicts_total";

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
        "Governance events Core did not get that went on anyway, by reason"
    );
    ::metrics::describe_counter!(APPROVAL_POLLS, "Approval polls, by outcome");
    ::metrics::describe_counter!(
        OBSERVED_VERDICTS,
        "Evaluations in observe mode, by what would have happened (not enforced)"
    );
    ::metrics::describe_counter!(
        INPUTS_NOT_CAPTURED,
        "Governed activity attempts whose arguments could not be reported to Core, by activity type"
    );
    ::metrics::describe_gauge!(
        CIRCUIT_BREAKER_STATE,
        "The Core client's circuit breaker: 0 closed, 1 open, 2 half-open"
    );
    ::metrics::describe_counter!(
        CIRCUIT_BREAKER_TRANSITIONS,
        "Circuit breaker transitions, by the state entered"
    );
    ::metrics::describe_counter!(SPOOL_EVENTS, "Spool records, by outcome");
    ::metrics::describe_gauge!(
        SPOOL_BYTES,
        ::metrics::Unit::Bytes,
        "Bytes the spool holds on disk"
    );
    ::metrics::describe_gauge!(SPOOL_PENDING, "Spooled events Core has not answered yet");
    ::metrics::describe_gauge!(
        SPOOL_OLDEST_PENDING_SECONDS,
        ::metrics::Unit::Seconds,
        "Age of the oldest spooled event not delivered yet"
    );
    ::metrics::describe_gauge!(
        SPOOL_DRAIN_RATE,
        "Spooled events answered late per second, over the last 10 seconds"
    );
    ::metrics::describe_counter!(
        LATE_VERDICTS,
        "Verdicts of events delivered late from the spool, by what they would have done (not enforced)"
    );
}
