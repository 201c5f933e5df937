//! The durable spool under `fail_open`, on the real Temporal dev server and the dev Core: every
//! event that went ahead during an outage reaches Core once it answers again — each exactly
//! once, in order, as the original body, marked late — including after a worker killed with
//! SIGKILL mid-outage.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use openbox::BreakerSettings;
use openbox::{ErrorPolicy, OpenBoxPlugin, SpoolSettings, SpoolStats};
use openbox_dev::{Faults, LoggedRequest};
use openbox_tests::core::config_builder_for;
use openbox_tests::fixtures::{Plan, Step};
use openbox_tests::harness::{Harness, outcome, result_of};
use openbox_tests::{TempDir, unique};

/// A guard against hangs, not a performance figure.
const NO_HANG: Duration = Duration::from_secs(90);

fn echoes(n: usize) -> Plan {
    Plan {
        steps: (0..n).map(|i| Step::Echo(format!("e{i}"))).collect(),
        ..Plan::default()
    }
}

fn outage() -> Faults {
    Faults {
        error_rate: 1.0,
        error_status: 503,
        ..Faults::default()
    }
}

fn no_breaker() -> BreakerSettings {
    BreakerSettings {
        failure_threshold: 0,
        cool_down: Duration::from_secs(1),
    }
}

/// A `fail_open` plugin for `h`'s Core spooling into `dir`.
async fn spooling_plugin(
    h: &Harness,
    dir: &Path,
    timeout: Duration,
    breaker: BreakerSettings,
) -> OpenBoxPlugin {
    spooling_plugin_with(h, dir, timeout, breaker, ErrorPolicy::FailOpen).await
}

async fn spooling_plugin_with(
    h: &Harness,
    dir: &Path,
    timeout: Duration,
    breaker: BreakerSettings,
    policy: ErrorPolicy,
) -> OpenBoxPlugin {
    let config = config_builder_for(&h.core.core.url(), policy, timeout)
        .circuit_breaker(breaker)
        .spool(SpoolSettings::new(dir))
        .build()
        .expect("valid config");
    h.plugin(policy, |b| b.config(config)).await
}

fn spool_stats(plugin: &OpenBoxPlugin) -> SpoolStats {
    plugin
        .governor()
        .spool_stats()
        .expect("a spool is configured")
}

/// Runs one-echo workflows (live traffic that tells the spool Core is back) until the spool is
/// empty.
async fn drain(h: &Harness, plugin: &OpenBoxPlugin) -> SpoolStats {
    let started = Instant::now();
    h.run(Some(plugin.clone()), async {
        loop {
            let wid = unique("spool-live");
            outcome(result_of(&h.start_plan(&wid, echoes(1)).await).await);
            let stats = spool_stats(plugin);
            if stats.pending == 0 {
                return stats;
            }
            assert!(
                started.elapsed() < NO_HANG,
                "the spool is not drained: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
}

fn header<'a>(e: &'a LoggedRequest, name: &str) -> Option<&'a str> {
    e.headers.get(name).map(String::as_str)
}

fn event_id(e: &LoggedRequest) -> &str {
    header(e, "x-openbox-event-id").expect("an event id with a spool")
}

fn is_late(e: &LoggedRequest) -> bool {
    header(e, "x-openbox-delivery") == Some("late")
}

fn of_workflow(e: &LoggedRequest, wid: &str) -> bool {
    e.body.get("workflow_id").and_then(|v| v.as_str()) == Some(wid)
}

/// Late deliveries of `wid` that Core answered as new events.
fn late_firsts<'a>(log: &'a [LoggedRequest], wid: &str) -> Vec<&'a LoggedRequest> {
    log.iter()
        .filter(|e| of_workflow(e, wid) && is_late(e) && e.status == 200 && e.repeat_of.is_none())
        .collect()
}

/// Ids answered as new events, at most once each.
fn assert_each_answered_once(log: &[LoggedRequest], wid: &str) -> usize {
    let mut answered: BTreeMap<&str, usize> = BTreeMap::new();
    for e in log.iter().filter(|e| of_workflow(e, wid)) {
        if e.status == 200 && e.fault.is_none() && e.repeat_of.is_none() {
            *answered.entry(event_id(e)).or_default() += 1;
        }
    }
    let twice: Vec<_> = answered.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "answered twice as new events: {twice:?}");
    answered.len()
}

#[tokio::test]
async fn an_outage_is_delivered_late_exactly_once_in_order() {
    // Core would have blocked the second step: it ran during the outage, and the late verdict
    // is recorded and counted, not enforced.
    let h = Harness::new(
        r#"
[[rules]]
name = "hold"
verdict = "block"
reason = "on hold"
match = { event_type = "ActivityStarted", "activity_input.0" = "hold" }
"#,
    )
    .await;
    let dir = TempDir::new("openbox-spool");
    let plugin = spooling_plugin(&h, dir.path(), Duration::from_secs(2), no_breaker()).await;
    let wid = unique("spool-outage");
    h.core.core.set_faults(outage()).expect("valid faults");
    let plan = Plan {
        steps: ["e0", "hold", "e2"]
            .map(|t| Step::Echo(t.to_owned()))
            .to_vec(),
        ..Plan::default()
    };
    let result = h
        .run(Some(plugin.clone()), async {
            result_of(&h.start_plan(&wid, plan).await).await
        })
        .await;
    assert_eq!(
        outcome(result).results,
        ["e0", "hold", "e2"],
        "fail_open completes"
    );
    let events = 2 + 2 * 3;
    let during = spool_stats(&plugin);
    assert_eq!(during.spooled, events, "every unanswered event is spooled");
    assert_eq!(during.delivered, 0);

    h.core
        .core
        .set_faults(Faults::default())
        .expect("valid faults");
    let after = drain(&h, &plugin).await;
    assert_eq!((after.delivered, after.dropped, after.torn), (events, 0, 0));
    assert_eq!(after.late_interventions, 1, "the late BLOCK is counted");

    let log = h.core.log().await;
    let refused: Vec<&LoggedRequest> = log
        .iter()
        .filter(|e| of_workflow(e, &wid) && e.fault.is_some() && !is_late(e))
        .collect();
    let late = late_firsts(&log, &wid);
    let ids = |v: &[&LoggedRequest]| v.iter().map(|e| event_id(e).to_owned()).collect::<Vec<_>>();
    assert_eq!(refused.len() as u64, events);
    assert_eq!(
        ids(&late),
        ids(&refused),
        "late, in the order they happened"
    );
    for (first, again) in refused.iter().zip(&late) {
        assert_eq!(
            first.body, again.body,
            "the original body, timestamps included"
        );
    }
    assert_eq!(assert_each_answered_once(&log, &wid) as u64, events);
    let verdicts: Vec<&str> = late.iter().filter_map(|e| e.verdict()).collect();
    assert_eq!(
        verdicts.iter().filter(|v| **v == "block").count(),
        1,
        "{verdicts:?}"
    );
    assert!(
        refused.iter().all(|e| !is_late(e)),
        "live calls are not marked late"
    );
}

#[tokio::test]
async fn events_the_breaker_stopped_are_spooled_and_a_repeat_is_not_a_new_event() {
    let h = Harness::new("").await;
    let dir = TempDir::new("openbox-spool");
    // After 2 timeouts the breaker opens: the rest never reach Core until it closes.
    let breaker = BreakerSettings {
        failure_threshold: 2,
        cool_down: Duration::from_millis(500),
    };
    let plugin = spooling_plugin(&h, dir.path(), Duration::from_millis(300), breaker).await;
    let wid = unique("spool-slow");
    h.core
        .core
        .set_faults(Faults {
            delay_ms: 1_000,
            ..Faults::default()
        })
        .expect("valid faults");
    let result = h
        .run(Some(plugin.clone()), async {
            result_of(&h.start_plan(&wid, echoes(3)).await).await
        })
        .await;
    assert_eq!(outcome(result).results.len(), 3);
    let events = 2 + 2 * 3;
    assert_eq!(spool_stats(&plugin).spooled, events);
    h.core
        .core
        .set_faults(Faults::default())
        .expect("valid faults");
    let after = drain(&h, &plugin).await;
    // Live traffic while the breaker was still open was spooled too.
    assert_eq!(after.delivered, after.spooled, "{after:?}");

    let log = h.core.log().await;
    assert_eq!(
        assert_each_answered_once(&log, &wid) as u64,
        events,
        "every event answered exactly once"
    );
    let late: Vec<&LoggedRequest> = late_firsts(&log, &wid);
    let types: Vec<&str> = late.iter().filter_map(|e| e.event_type()).collect();
    assert_eq!(types.first(), Some(&"WorkflowStarted"), "{types:?}");
    assert_eq!(types.last(), Some(&"WorkflowCompleted"), "{types:?}");

    // Delivered again (Core answered, the worker died before noting it): the same answer,
    // logged as a repeat of the first delivery.
    let first = late[0];
    let again = reqwest::Client::new()
        .post(format!("{}/api/v1/governance/evaluate", h.core.core.url()))
        .bearer_auth(openbox_tests::core::TEST_KEY)
        .header("x-openbox-event-id", event_id(first))
        .header("x-openbox-delivery", "late")
        .json(&first.body)
        .send()
        .await
        .expect("Core answers");
    assert_eq!(again.status(), 200);
    let answer: serde_json::Value = again.json().await.expect("a verdict");
    assert_eq!(answer, first.response);
    let log = h.core.log().await;
    let repeat = log.last().expect("logged");
    assert_eq!(repeat.repeat_of, Some(first.seq));
    assert_eq!(assert_each_answered_once(&log, &wid) as u64, events);
}

/// Kills the child on every path out of the test.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Complete records in the spool's segment files.
fn spooled_lines(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".spool"))
                .filter_map(|e| std::fs::read(e.path()).ok())
                .map(|bytes| bytes.iter().filter(|b| **b == b'\n').count())
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn a_worker_killed_mid_outage_delivers_its_spool_after_restart() {
    let h = Harness::new("").await;
    let dir = TempDir::new("openbox-spool");
    let wid = unique("spool-killed");
    h.core.core.set_faults(outage()).expect("valid faults");
    let mut child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_spool_worker"))
            .env("OPENBOX_SPOOL_TEST_CORE", h.core.core.url())
            .env("OPENBOX_SPOOL_TEST_DIR", dir.path())
            .env("OPENBOX_SPOOL_TEST_WORKFLOW", &wid)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the worker starts"),
    );
    let started = Instant::now();
    while spooled_lines(dir.path()) < 12 {
        assert!(started.elapsed() < NO_HANG, "the worker spools nothing");
        assert!(
            child.0.try_wait().expect("child status").is_none(),
            "the worker ended before it was killed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.0.kill().expect("SIGKILL"); // std sends SIGKILL on Unix
    child.0.wait().expect("the worker is gone");
    let on_disk = spooled_lines(dir.path()) as u64;

    // The restarted worker: same spool, Core back.
    h.core
        .core
        .set_faults(Faults::default())
        .expect("valid faults");
    let plugin = spooling_plugin(&h, dir.path(), Duration::from_secs(2), no_breaker()).await;
    let after = drain(&h, &plugin).await;
    assert_eq!(after.delivered, on_disk, "{after:?}");
    assert!(
        after.torn <= 1,
        "at most the record being written: {after:?}"
    );

    let log = h.core.log().await;
    let refused: Vec<&LoggedRequest> = log
        .iter()
        .filter(|e| of_workflow(e, &wid) && e.fault.is_some() && !is_late(e))
        .collect();
    let late = late_firsts(&log, &wid);
    assert_eq!(late.len() as u64, on_disk);
    // Every event the worker sent before it died was spooled, but the one in flight.
    assert!(
        refused.len() - late.len() <= 1,
        "{} refused, {} delivered late",
        refused.len(),
        late.len()
    );
    for (first, again) in refused.iter().zip(&late) {
        assert_eq!(event_id(first), event_id(again), "in order");
        assert_eq!(first.body, again.body, "the original body");
    }
    let unique_ids: HashSet<&str> = late.iter().map(|e| event_id(e)).collect();
    assert_eq!(unique_ids.len(), late.len(), "each exactly once");
}

/// Only what went ahead without a verdict is spooled: nothing under `fail_closed` (the
/// operation stopped), the lifecycle events under `fail_closed_destructive` (they proceed).
#[tokio::test]
async fn only_what_proceeded_is_spooled_under_the_other_policies() {
    let h = Harness::new("").await;
    h.core.core.set_faults(outage()).expect("valid faults");
    for (policy, completes, spooled) in [
        (ErrorPolicy::FailClosed, false, 0),
        (ErrorPolicy::FailClosedDestructive, true, 2 + 2 * 2),
    ] {
        let dir = TempDir::new("openbox-spool");
        let plugin =
            spooling_plugin_with(&h, dir.path(), Duration::from_secs(2), no_breaker(), policy)
                .await;
        let wid = unique("spool-policy");
        let result = h
            .run(Some(plugin.clone()), async {
                result_of(&h.start_plan(&wid, echoes(2)).await).await
            })
            .await;
        assert_eq!(result.is_ok(), completes, "{policy:?}: {result:?}");
        assert_eq!(spool_stats(&plugin).spooled, spooled, "{policy:?}");
    }
}
