//! Observe (shadow) mode on the real Temporal dev server and the dev Core: every evaluation is
//! still sent, marked `x-openbox-enforcement: observe`; what Core decided is counted as what
//! would have happened; nothing is blocked, halted, redacted or held for approval — and with
//! Core gone, nothing stops even under `fail_closed`.

use std::time::Duration;

use openbox::metrics::OBSERVED_VERDICTS;
use openbox::{Enforcement, ErrorPolicy, HookKind};
use openbox_tests::core::config_for;
use openbox_tests::fixtures::{ChargeReq, Plan, Prompt, Step, runs_of};
use openbox_tests::harness::{Harness, outcome, result_of};
use openbox_tests::http_server::TestHttpServer;
use openbox_tests::observe::Observer;
use openbox_tests::unique;
use serde_json::Value;

/// Rules that would stop or change every step of [`plan`].
const STRICT_RULES: &str = r#"
[[rules]]
name = "halt the start"
verdict = "halt"
match = { event_type = "WorkflowStarted" }

[[rules]]
name = "block charges"
verdict = "block"
match = { event_type = "ActivityStarted", activity_type = "charge" }
absent = ["hook_trigger"]

[[rules]]
name = "transfers need approval"
verdict = "require_approval"
match = { event_type = "ActivityStarted", activity_type = "transfer" }
absent = ["hook_trigger"]

[[rules]]
name = "redact prompts"
verdict = "allow"
match = { event_type = "ActivityStarted", activity_type = "summarize" }
absent = ["hook_trigger"]
guardrails_result = { input_type = "activity_input", redacted_input = [{ prompt = "[REDACTED]", user = "u1" }] }

[[rules]]
name = "no outbound GETs"
verdict = "block"
match = { hook_trigger = true, "spans.0.hook_type" = "http_request" }
"#;

fn charge() -> ChargeReq {
    ChargeReq {
        customer: "c1".into(),
        amount: 7,
        card: "4111".into(),
    }
}

fn plan(url: &str) -> Plan {
    Plan {
        steps: vec![
            Step::Charge(charge()),
            Step::Transfer(5),
            Step::Summarize(Prompt {
                prompt: "my ssn is 123-45-6789".into(),
                user: "u1".into(),
            }),
            Step::Fetch(format!("{url}/observed")),
        ],
        catch_errors: true,
        ..Plan::default()
    }
}

fn observed(headers: &std::collections::BTreeMap<String, String>) -> bool {
    headers.get("x-openbox-enforcement").map(String::as_str) == Some("observe")
}

fn would_have(obs: &Observer, event_type: &str, hook: &str, what: &str) -> u64 {
    obs.counter(
        OBSERVED_VERDICTS,
        &[
            ("event_type", event_type),
            ("hook", hook),
            ("would_have", what),
        ],
    )
}

/// Everything observed: each step runs as if Core allowed it, Core saw every evaluation marked,
/// no approval request was opened, and what would have happened is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_everywhere_records_verdicts_and_enforces_none() {
    let obs = Observer::get();
    let _serial = obs.exclusive().await;
    let server = TestHttpServer::start().await;
    let h = Harness::new(STRICT_RULES).await;
    let plugin = h
        .plugin(ErrorPolicy::FailClosed, |b| {
            b.describe_activity(openbox_tests::fixtures::Shop::summarize)
                .options(|o| o.enforcement(Enforcement::Observe))
        })
        .await;
    let count = |what: &str, event: &str, hook: &str| would_have(obs, event, hook, what);
    let before = [
        count("halted", "WorkflowStarted", "false"),
        count("blocked", "ActivityStarted", "false"),
        count("approval", "ActivityStarted", "false"),
        count("redacted", "ActivityStarted", "false"),
        count("blocked", "ActivityStarted", "true"),
    ];
    let interventions0 = plugin.governor().stats().observed_interventions;
    let wid = unique("observe-all");
    let result = h
        .run(Some(plugin.clone()), async {
            result_of(&h.start_plan(&wid, plan(&server.url)).await).await
        })
        .await;
    let out = outcome(result);
    assert_eq!(
        out.results[0], "charged c1 7 card 4111",
        "the block was not enforced"
    );
    assert!(
        out.results[1].starts_with("transferred 5"),
        "no approval wait: {}",
        out.results[1]
    );
    assert_eq!(
        out.results[2], "saw:my ssn is 123-45-6789",
        "the redaction was not applied"
    );
    assert_eq!(out.results[3], "fetched 200", "the GET went out");
    assert_eq!(server.received("/observed").len(), 1);
    assert_eq!(runs_of(&wid, "charge"), 1);

    let events = h.events_of(&wid).await;
    assert!(!events.is_empty());
    for e in &events {
        assert!(
            observed(&e.headers),
            "every evaluation is marked: {}",
            e.body
        );
    }
    let rules_hit: Vec<&str> = events.iter().filter_map(|e| e.rule.as_deref()).collect();
    for rule in [
        "halt the start",
        "block charges",
        "transfers need approval",
        "redact prompts",
        "no outbound GETs",
    ] {
        assert!(
            rules_hit.contains(&rule),
            "Core evaluated {rule:?}: {rules_hit:?}"
        );
    }
    assert!(
        h.core.core.approvals().list().is_empty(),
        "no approval request is opened for an observed evaluation"
    );
    assert!(
        !events.iter().any(|e| e.path.ends_with("/approval")),
        "nothing polls for an approval"
    );
    let after = [
        count("halted", "WorkflowStarted", "false"),
        count("blocked", "ActivityStarted", "false"),
        count("approval", "ActivityStarted", "false"),
        count("redacted", "ActivityStarted", "false"),
        count("blocked", "ActivityStarted", "true"),
    ];
    let delta: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    // The hook is blocked at `started` and at `completed`.
    assert_eq!(delta, vec![1, 1, 1, 1, 2], "would_have counts by event");
    assert_eq!(
        plugin.governor().stats().observed_interventions - interventions0,
        6
    );
    let completed = events
        .iter()
        .find(|e| {
            e.body["event_type"] == "ActivityCompleted" && e.body["activity_type"] == "summarize"
        })
        .expect("summarize completed");
    assert_eq!(
        completed.body["activity_input"][0]["prompt"],
        Value::from("my ssn is 123-45-6789"),
        "Core's redaction is reported, not applied"
    );
}

/// Observe scoped to one activity type and one hook kind: the rest is enforced as usual, and
/// only the observed evaluations carry the header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_by_activity_type_and_hook_kind() {
    let obs = Observer::get();
    let _serial = obs.exclusive().await;
    let server = TestHttpServer::start().await;
    let rules = r#"
[[rules]]
name = "block charges"
verdict = "block"
match = { event_type = "ActivityStarted", activity_type = "charge" }
absent = ["hook_trigger"]

[[rules]]
name = "block transfers"
verdict = "block"
match = { event_type = "ActivityStarted", activity_type = "transfer" }
absent = ["hook_trigger"]

[[rules]]
name = "no outbound GETs"
verdict = "block"
match = { hook_trigger = true, "spans.0.hook_type" = "http_request" }
"#;
    let h = Harness::new(rules).await;
    let plugin = h
        .plugin(ErrorPolicy::FailOpen, |b| {
            b.options(|o| {
                o.observe_activity_types(["charge"])
                    .observe_hooks([HookKind::Http])
            })
        })
        .await;
    let wid = unique("observe-some");
    let result = h
        .run(Some(plugin), async {
            let plan = Plan {
                steps: vec![
                    Step::Charge(charge()),
                    Step::Transfer(5),
                    Step::Fetch(format!("{}/scoped", server.url)),
                ],
                catch_errors: true,
                ..Plan::default()
            };
            result_of(&h.start_plan(&wid, plan).await).await
        })
        .await;
    let out = outcome(result);
    assert_eq!(
        out.results[0], "charged c1 7 card 4111",
        "charge is observed"
    );
    assert!(
        out.results[1].starts_with("ERR:GovernanceBlock:"),
        "transfer is enforced: {}",
        out.results[1]
    );
    assert_eq!(out.results[2], "fetched 200", "HTTP hooks are observed");
    assert_eq!(runs_of(&wid, "transfer"), 0);
    let events = h.events_of(&wid).await;
    for e in &events {
        let body = &e.body;
        let expect = body["activity_type"] == "charge" || body["hook_trigger"] == true;
        assert_eq!(observed(&e.headers), expect, "marked iff observed: {body}");
    }
}

/// Core gone under `fail_closed`, everything observed: the workflow completes; each missing
/// verdict is counted as what would have been `halted_no_verdict`, and in the stats as an event
/// that went on without Core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_mode_never_stops_for_a_missing_verdict() {
    let obs = Observer::get();
    let _serial = obs.exclusive().await;
    let h = Harness::new("").await;
    let config = config_for(
        &h.core.core.url(),
        ErrorPolicy::FailClosed,
        Duration::from_secs(1),
    );
    let plugin = h
        .plugin(ErrorPolicy::FailClosed, |b| {
            b.config(config)
                .options(|o| o.enforcement(Enforcement::Observe))
        })
        .await;
    let governor = plugin.governor().clone();
    h.core.core.kill();
    let halted0 = would_have(obs, "ActivityStarted", "false", "halted_no_verdict");
    let wid = unique("observe-down");
    let result = h
        .run(Some(plugin), async {
            let plan = Plan {
                steps: vec![Step::Echo("still runs".into())],
                ..Plan::default()
            };
            result_of(&h.start_plan(&wid, plan).await).await
        })
        .await;
    assert_eq!(outcome(result).results, vec!["still runs".to_owned()]);
    assert_eq!(
        would_have(obs, "ActivityStarted", "false", "halted_no_verdict") - halted0,
        1
    );
    // Nothing was stopped: the stats count what went on without Core, not a halt.
    let stats = governor.stats();
    assert_eq!(stats.halted_no_verdict, 0, "{stats:?}");
    assert!(stats.lost_fail_open >= 1, "{stats:?}");
}
