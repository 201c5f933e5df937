//! Core faults under both error policies, on the real Temporal dev server and the dev Core's fault
//! modes (contract D7, D9).
//!
//! * `fail_open`: every workflow completes; every event Core did not get is counted in
//!   `openbox_events_lost_total` and logged exactly once with its reason.
//! * `fail_closed`: the governed operation stops with a non-retryable `GovernanceHalt` whose
//!   message names the Core failure; the workflow ends, nothing hangs past the timeout.
//! * 401/403 stop the operation under both policies (a revoked key is not an outage).
//!
//! Each scenario reads process-wide figures (metrics, log lines) as differences, holding
//! [`Observer::exclusive`] so scenarios of this binary never overlap.

use std::time::{Duration, Instant};

use openbox::metrics::{CORE_CALLS, EVENTS_LOST};
use openbox::{ErrorPolicy, OpenBoxError, OpenBoxPlugin};
use openbox_dev::Faults;
use openbox_tests::core::config_for;
use openbox_tests::fixtures::{Plan, PlanWorkflow, Step, runs_of};
use openbox_tests::harness::{Harness, PlanHandle, outcome, result_of};
use openbox_tests::history::{failure_types, root_message};
use openbox_tests::observe::Observer;
use openbox_tests::unique;
use temporalio_client::WorkflowSignalOptions;

/// Lifecycle events of a plan of `n` echo steps: workflow started/completed + 2 per activity.
fn events_of_echoes(n: usize) -> u64 {
    2 + 2 * n as u64
}

fn echoes(n: usize) -> Plan {
    Plan {
        steps: (0..n).map(|i| Step::Echo(format!("e{i}"))).collect(),
        ..Plan::default()
    }
}

fn echo_results(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("e{i}")).collect()
}

/// Upper bound for one scenario: a guard against hangs, not a performance figure.
const NO_HANG: Duration = Duration::from_secs(30);

/// A plugin for `h`'s Core with `policy` and a per-call `timeout`.
async fn plugin(h: &Harness, policy: ErrorPolicy, timeout: Duration) -> OpenBoxPlugin {
    let config = config_for(&h.core.core.url(), policy, timeout);
    h.plugin(policy, |b| b.config(config)).await
}

/// What was observed while a `fail_open` workflow ran.
struct Lost {
    by_governor: u64,
    by_metric: u64,
    warnings: u64,
}

/// Runs `plan` under `plugin` and returns the workflow's result plus the lost-event figures.
async fn run_observed(
    h: &Harness,
    plugin: &OpenBoxPlugin,
    wid: &str,
    plan: Plan,
) -> (
    Result<openbox_tests::fixtures::Outcome, temporalio_client::errors::WorkflowGetResultError>,
    Lost,
) {
    let obs = Observer::get();
    let (metric0, warn0) = (obs.counter(EVENTS_LOST, &[]), obs.lost_warnings());
    let gov0 = plugin.governor().stats().lost_fail_open;
    let started = Instant::now();
    let result = h
        .run(Some(plugin.clone()), async {
            result_of(&h.start_plan(wid, plan).await).await
        })
        .await;
    assert!(
        started.elapsed() < NO_HANG,
        "{wid} took {:?}",
        started.elapsed()
    );
    let lost = Lost {
        by_governor: plugin.governor().stats().lost_fail_open - gov0,
        by_metric: obs.counter(EVENTS_LOST, &[]) - metric0,
        warnings: obs.lost_warnings() - warn0,
    };
    (result, lost)
}

/// Governance requests of `wid` that the dev Core answered with an injected fault.
async fn faulted_requests(h: &Harness, wid: &str) -> u64 {
    h.events_of(wid)
        .await
        .iter()
        .filter(|e| e.fault.is_some())
        .count() as u64
}

/// One fault under both policies. `expected_lost(wid)` gives how many events of the
/// `fail_open` run Core did not get; `names` must appear in the `fail_closed` halt message;
/// `kind` is the `error_kind` label the failures are counted under.
async fn under_both_policies(
    faults: Faults,
    timeout: Duration,
    steps: usize,
    lost_from_log: bool,
    names: &str,
    kind: &str,
) {
    let obs = Observer::get();
    let _serial = obs.exclusive().await;
    let h = Harness::new("").await;

    // fail_open: completes, every lost event counted and logged once.
    let open = plugin(&h, ErrorPolicy::FailOpen, timeout).await;
    h.core
        .core
        .set_faults(faults.clone())
        .expect("valid faults");
    let errors0 = obs.counter(CORE_CALLS, &[("error_kind", kind)]);
    let wid = unique("open");
    let (result, lost) = run_observed(&h, &open, &wid, echoes(steps)).await;
    assert_eq!(
        outcome(result).results,
        echo_results(steps),
        "fail_open: the workflow completes"
    );
    let expected = if lost_from_log {
        faulted_requests(&h, &wid).await
    } else {
        events_of_echoes(steps)
    };
    assert!(expected > 0, "the fault was injected");
    assert_eq!(
        lost.by_governor, expected,
        "every event Core did not get is lost"
    );
    assert_eq!(lost.by_metric, expected, "each lost event is in the metric");
    assert_eq!(lost.warnings, expected, "each lost event is logged once");
    assert_eq!(
        obs.counter(CORE_CALLS, &[("error_kind", kind)]) - errors0,
        expected,
        "the failures are counted under error_kind={kind}"
    );

    // fail_closed: a typed, non-retryable halt naming the failure.
    let closed = plugin(&h, ErrorPolicy::FailClosed, timeout).await;
    h.core.core.set_faults(faults).expect("valid faults");
    let wid = unique("closed");
    let (result, lost) = run_observed(&h, &closed, &wid, echoes(steps)).await;
    let err = result.expect_err("fail_closed: the workflow stops");
    assert_eq!(
        failure_types(&err).last().map(String::as_str),
        Some("GovernanceHalt"),
        "{err:?}"
    );
    let message = root_message(&err);
    assert!(
        message.contains("Governance API error") && message.contains(names),
        "the halt names the Core failure ({names}): {message}"
    );
    assert_eq!(lost.by_governor, 0, "nothing proceeds without a verdict");
    h.assert_no_key_in_histories(&[wid]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_500_on_30_percent_of_calls() {
    let faults = Faults {
        error_rate: 0.3,
        ..Faults::default()
    };
    under_both_policies(
        faults,
        Duration::from_secs(5),
        4,
        true,
        "HTTP 500",
        "http_status",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_slower_than_the_timeout() {
    let faults = Faults {
        delay_ms: 1_500,
        ..Faults::default()
    };
    under_both_policies(
        faults,
        Duration::from_millis(300),
        1,
        false,
        "no answer from OpenBox Core within 300ms",
        "timeout",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_truncated_json() {
    let faults = Faults {
        garbage_rate: 1.0,
        ..Faults::default()
    };
    under_both_policies(
        faults,
        Duration::from_secs(5),
        1,
        false,
        "not valid JSON",
        "invalid_response",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_verdicts() {
    let faults = Faults {
        unknown_verdict_rate: 1.0,
        ..Faults::default()
    };
    under_both_policies(
        faults,
        Duration::from_secs(5),
        1,
        false,
        "unknown verdict \"maybe\"",
        "unknown_verdict",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset() {
    let faults = Faults {
        reset_rate: 1.0,
        ..Faults::default()
    };
    under_both_policies(
        faults,
        Duration::from_secs(5),
        1,
        false,
        "cannot reach OpenBox Core",
        "unreachable",
    )
    .await;
}

/// A revoked key mid-run stops governed work under both policies: it is a configuration error,
/// not an outage (design D9).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rejected_mid_run() {
    let obs = Observer::get();
    let _serial = obs.exclusive().await;
    for status in [401, 403] {
        for policy in [ErrorPolicy::FailOpen, ErrorPolicy::FailClosed] {
            let h = Harness::new("").await;
            let p = plugin(&h, policy, Duration::from_secs(5)).await;
            h.core
                .core
                .set_faults(Faults {
                    error_rate: 1.0,
                    error_status: status,
                    ..Faults::default()
                })
                .expect("valid faults");
            let wid = unique("revoked");
            let (result, lost) = run_observed(&h, &p, &wid, echoes(1)).await;
            let err = result.expect_err("a rejected key stops the workflow");
            assert_eq!(
                failure_types(&err).last().map(String::as_str),
                Some("GovernanceHalt"),
                "{policy:?} {status}: {err:?}"
            );
            assert!(
                root_message(&err).contains(&format!("HTTP {status}")),
                "{}",
                root_message(&err)
            );
            assert_eq!(lost.by_governor, 0, "{policy:?}: nothing proceeds");
            assert_eq!(runs_of(&wid, "echo"), 0, "{policy:?}: echo never ran");
        }
    }
}

/// Core not running when the worker starts: `fail_open` starts and runs without it (every event
/// lost, counted, logged); `fail_closed` refuses to build the plugin, naming the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_down_at_start() {
    let obs = Observer::get();
    let _serial = obs.exclusive().await;
    let h = Harness::new("").await;
    let url = h.core.core.url();
    h.core.core.kill();

    let open = plugin(&h, ErrorPolicy::FailOpen, Duration::from_secs(2)).await;
    let wid = unique("down-open");
    let (result, lost) = run_observed(&h, &open, &wid, echoes(1)).await;
    assert_eq!(outcome(result).results, echo_results(1));
    assert_eq!(lost.by_governor, events_of_echoes(1));
    assert_eq!(lost.by_metric, events_of_echoes(1));
    assert_eq!(lost.warnings, events_of_echoes(1));

    let config = config_for(&url, ErrorPolicy::FailClosed, Duration::from_secs(2));
    let err = OpenBoxPlugin::builder()
        .config(config)
        .build()
        .await
        .expect_err("fail_closed: no worker without Core");
    assert!(
        matches!(&err, OpenBoxError::Network { url: u, .. } if *u == url),
        "{err:?}"
    );
}

/// Core killed while a workflow waits for a signal, after its first activity was governed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_killed_mid_run() {
    let obs = Observer::get();
    let _serial = obs.exclusive().await;
    for policy in [ErrorPolicy::FailOpen, ErrorPolicy::FailClosed] {
        let h = Harness::new("").await;
        let p = plugin(&h, policy, Duration::from_secs(2)).await;
        let wid = unique("killed");
        let plan = Plan {
            steps: vec![Step::Echo("after".into())],
            wait_for_signal: true,
            catch_errors: false,
        };
        let lost0 = p.governor().stats().lost_fail_open;
        let started = Instant::now();
        let result = h
            .run(Some(p.clone()), async {
                let handle: PlanHandle = h.start_plan(&wid, plan).await;
                // Wait until Core has seen the workflow start, then take it away.
                while h.events_of(&wid).await.is_empty() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                h.core.core.kill();
                handle
                    .signal(
                        PlanWorkflow::note,
                        "go".to_string(),
                        WorkflowSignalOptions::default(),
                    )
                    .await
                    .expect("signal delivered");
                result_of(&handle).await
            })
            .await;
        assert!(started.elapsed() < NO_HANG);
        let lost = p.governor().stats().lost_fail_open - lost0;
        match policy {
            ErrorPolicy::FailOpen => {
                assert_eq!(outcome(result).results, ["after"]);
                // SignalReceived, ActivityStarted, ActivityCompleted, WorkflowCompleted.
                assert_eq!(lost, 4, "the events after the kill are lost");
            }
            ErrorPolicy::FailClosed => {
                let err = result.expect_err("fail_closed stops");
                assert_eq!(
                    failure_types(&err).last().map(String::as_str),
                    Some("GovernanceHalt"),
                    "{err:?}"
                );
                assert!(root_message(&err).contains("cannot reach OpenBox Core"));
                assert_eq!(
                    runs_of(&wid, "echo"),
                    0,
                    "nothing governed ran after the kill"
                );
                assert_eq!(lost, 0);
            }
            other => unreachable!("no such policy in this test: {other:?}"),
        }
    }
}

/// A Core that stopped answering: after the breaker's threshold of timeouts, the rest of the
/// run's events are not sent at all — each fails at once instead of waiting out the timeout —
/// and every one is still counted as lost; the breaker's state and transitions are in the stats
/// and the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_stops_calling_a_core_that_does_not_answer() {
    use openbox::{BreakerSettings, BreakerState, metrics};
    let obs = Observer::get();
    let _serial = obs.exclusive().await;
    let h = Harness::new("").await;
    let config = openbox_tests::core::config_builder_for(
        &h.core.core.url(),
        ErrorPolicy::FailOpen,
        Duration::from_millis(300),
    )
    .circuit_breaker(BreakerSettings {
        failure_threshold: 2,
        cool_down: Duration::from_secs(600),
    })
    .build()
    .unwrap();
    let open = h.plugin(ErrorPolicy::FailOpen, |b| b.config(config)).await;
    // Longer than the test: the timed-out requests are never answered while it runs.
    h.core
        .core
        .set_faults(Faults {
            delay_ms: 600_000,
            ..Faults::default()
        })
        .unwrap();
    let transitions0 = obs.counter(metrics::CIRCUIT_BREAKER_TRANSITIONS, &[("to", "open")]);
    let steps = 6;
    let wid = unique("breaker");
    let (result, lost) = run_observed(&h, &open, &wid, echoes(steps)).await;
    assert_eq!(outcome(result).results, echo_results(steps));
    assert_eq!(
        lost.by_governor,
        events_of_echoes(steps),
        "every event is counted as lost"
    );
    let stats = open.governor().stats();
    assert_eq!(stats.breaker_state, BreakerState::Open);
    assert_eq!(stats.breaker_transitions, 1);
    assert_eq!(
        obs.counter(metrics::CIRCUIT_BREAKER_TRANSITIONS, &[("to", "open")]) - transitions0,
        1
    );
    let circuit_open = obs.counter(CORE_CALLS, &[("error_kind", "circuit_open")]);
    assert!(
        circuit_open >= events_of_echoes(steps) - 2,
        "all but the first two events failed at the open breaker ({circuit_open})"
    );
}

/// Approval polls that keep failing: each waits longer than the last, and under `fail_closed`
/// the wait ends after the configured number of failures in a row, naming the failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_approval_polls_back_off_and_end_under_fail_closed() {
    let obs = Observer::get();
    let _serial = obs.exclusive().await;
    let wid = unique("apr-fail");
    let h = Harness::new(&format!(
        "[[rules]]\nverdict = \"require_approval\"\nmatch = {{ event_type = \"ActivityStarted\", workflow_id = \"{wid}\" }}\nabsent = [\"hook_trigger\"]\n"
    ))
    .await;
    let closed = h
        .plugin(ErrorPolicy::FailClosed, |b| {
            b.options(|o| o.approval_poll_failure_limit(2))
        })
        .await;
    let result = h
        .run(Some(closed), async {
            let handle = h
                .start_plan(
                    &wid,
                    Plan {
                        steps: vec![Step::Transfer(5)],
                        ..Plan::default()
                    },
                )
                .await;
            while h.core.core.approvals().list().is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            h.core
                .core
                .set_faults(Faults {
                    error_rate: 1.0,
                    ..Faults::default()
                })
                .unwrap();
            result_of(&handle).await
        })
        .await;
    let err = result.expect_err("the wait ends");
    assert_eq!(
        failure_types(&err).last().map(String::as_str),
        Some("GovernanceHalt")
    );
    assert!(
        root_message(&err).contains("HTTP 500"),
        "{}",
        root_message(&err)
    );
    let polls = h
        .events_of(&wid)
        .await
        .iter()
        .filter(|e| e.path == "/api/v1/governance/approval")
        .count();
    assert_eq!(polls, 2, "two failed polls, then the policy decided");
    assert_eq!(runs_of(&wid, "transfer"), 0);
}

/// `fail_closed_destructive` with Core gone: reads proceed, writes stop — an HTTP GET goes out,
/// a POST does not; a file is read but not written; a redis GET runs, a SET does not; a SQL
/// SELECT runs, an INSERT does not; a command never starts. The activities themselves start
/// and complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_destructive_stops_writes_and_lets_reads_through() {
    use openbox_tests::hook_fixtures::{ClientKind, HookStep};
    use openbox_tests::http_server::TestHttpServer;
    if !openbox_tests::services::require("PostgreSQL", "127.0.0.1:5432")
        || !openbox_tests::services::require("Redis", "127.0.0.1:6379")
    {
        return;
    }
    let server = TestHttpServer::start().await;
    let dir = openbox_tests::TempDir::new("destructive");
    let existing = dir.path().join("existing.txt");
    std::fs::write(&existing, "kept").unwrap();
    let written = dir.path().join("written.txt");
    let touched = dir.path().join("touched.txt");
    let h = Harness::new("").await;
    let plugin = plugin(
        &h,
        ErrorPolicy::FailClosedDestructive,
        Duration::from_secs(1),
    )
    .await;
    h.core.core.kill();
    let http = |method: &str, path: &str| {
        (
            false,
            HookStep::Request {
                method: method.into(),
                url: format!("{}{path}", server.url),
                client: ClientKind::Manual,
                headers: vec![],
                body: None,
                show_body: false,
            },
        )
    };
    let redis = |args: &[&str]| {
        (
            false,
            HookStep::RedisCommand {
                args: args.iter().map(|a| a.to_string()).collect(),
            },
        )
    };
    let key = unique("destructive-key");
    let steps = vec![
        http("GET", "/read"),
        http("POST", "/write"),
        (
            false,
            HookStep::ReadFile {
                path: existing.display().to_string(),
            },
        ),
        (
            false,
            HookStep::WriteFile {
                path: written.display().to_string(),
            },
        ),
        redis(&["GET", &key]),
        redis(&["SET", &key, "v"]),
        (
            false,
            HookStep::SqlxExecute {
                sql: "SELECT $1::text".into(),
            },
        ),
        (
            false,
            HookStep::SqlxExecute {
                sql: "CREATE TABLE never_created_by_destructive (x TEXT)".into(),
            },
        ),
        (
            false,
            HookStep::Process {
                program: "touch".into(),
                args: vec![touched.display().to_string()],
                collect: false,
                secrets: false,
            },
        ),
    ];
    // One run per operation: a stopped write fails its run with GovernanceHalt, like any
    // fail_closed stop.
    let results = h
        .run(Some(plugin), async {
            let mut results = Vec::new();
            for step in steps {
                let wid = unique("destructive");
                let handle = h
                    .client()
                    .start_workflow(
                        openbox_tests::hook_fixtures::HookWorkflow::run,
                        vec![step],
                        temporalio_client::WorkflowStartOptions::new(&h.task_queue, &wid).build(),
                    )
                    .await
                    .expect("workflow starts");
                results.push(match result_of(&handle).await {
                    Ok(mut out) => out.remove(0),
                    Err(e) => format!(
                        "ERR:{}:",
                        failure_types(&e).last().cloned().unwrap_or_default()
                    ),
                });
            }
            results
        })
        .await;
    let halted = |r: &String| r.starts_with("ERR:GovernanceHalt:");
    assert_eq!(results[0], "200");
    assert!(halted(&results[1]), "{}", results[1]);
    assert_eq!(results[2], "kept");
    assert!(halted(&results[3]), "{}", results[3]);
    assert!(!halted(&results[4]), "{}", results[4]);
    assert!(halted(&results[5]), "{}", results[5]);
    assert!(results[6].starts_with("affected"), "{}", results[6]);
    assert!(halted(&results[7]), "{}", results[7]);
    assert!(halted(&results[8]), "{}", results[8]);
    assert!(
        !touched.exists(),
        "every command counts as a write: it never started"
    );
    assert_eq!(server.received("/read").len(), 1);
    assert!(server.received("/write").is_empty(), "the POST never left");
    assert!(!written.exists(), "the file was never created");
}
