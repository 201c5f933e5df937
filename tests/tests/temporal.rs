//! Governance of real workflows on the real Temporal dev server, judged by the dev Core's event
//! log and by the workflows' outcomes.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use openbox::ErrorPolicy;
use openbox_dev::{Approval, ApprovalState, LoggedRequest};
use openbox_tests::fixtures::{
    BankWorkflow, ChargeReq, Note, Plan, PlanWorkflow, Prompt, Shop, Step, runs_of,
};
use openbox_tests::harness::{Harness, event_types, event_types_start_sorted, outcome, result_of};
use openbox_tests::history::{failure_types, root_message};
use openbox_tests::unique;
use serde_json::{Value, json};
use temporalio_client::{WorkflowFetchHistoryOptions, WorkflowSignalOptions, WorkflowStartOptions};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

const TIERS: [&str; 5] = ["allow", "constrain", "require_approval", "block", "halt"];

fn charge() -> ChargeReq {
    ChargeReq {
        customer: "ada".into(),
        amount: 1200,
        card: "4111111111111111".into(),
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

/// A rule answering `tier` to `event_type` events of workflow `wid` (lifecycle events only).
fn rule(tier: &str, event_type: &str, wid: &str) -> String {
    format!(
        "[[rules]]\nname = \"{tier} {event_type} {wid}\"\nverdict = \"{tier}\"\nreason = \"{tier} by test\"\n\
         match = {{ event_type = \"{event_type}\", workflow_id = \"{wid}\" }}\nabsent = [\"hook_trigger\"]\n"
    )
}

/// Waits until the dev Core has a pending approval for `wid`.
async fn pending_approval(h: &Harness, wid: &str) -> Approval {
    for _ in 0..600 {
        if let Some(a) = h
            .core
            .core
            .approvals()
            .list()
            .into_iter()
            .find(|a| a.key.workflow_id == wid)
        {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no approval request for {wid}");
}

fn of_type<'a>(events: &'a [LoggedRequest], event_type: &str) -> Vec<&'a LoggedRequest> {
    events
        .iter()
        .filter(|e| !e.is_hook() && e.event_type() == Some(event_type))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_events_with_the_reference_key_sets_and_no_key_in_history() {
    let h = Harness::new(
        "[[rules]]\nverdict = \"block\"\nmatch = { event_type = \"ActivityStarted\", activity_type = \"charge\" }\n",
    )
    .await;
    let plugin = h.plugin(ErrorPolicy::FailOpen, |b| b).await;
    let (ok, failed) = (unique("wf-ok"), unique("wf-fail"));
    let (out, err) = h
        .run(Some(plugin), async {
            let a = h
                .start_plan(
                    &ok,
                    Plan {
                        steps: vec![Step::Echo("hi".into()), Step::Add(2, 3)],
                        wait_for_signal: true,
                        catch_errors: false,
                    },
                )
                .await;
            a.signal(
                PlanWorkflow::note,
                "go".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .unwrap();
            let b = h
                .start_plan(
                    &failed,
                    Plan {
                        steps: vec![Step::Charge(charge())],
                        ..Plan::default()
                    },
                )
                .await;
            (result_of(&a).await, result_of(&b).await)
        })
        .await;
    let out = outcome(out);
    assert_eq!(out.results, ["hi", "5"]);
    assert_eq!(out.notes, ["go"]);
    assert_eq!(
        failure_types(&err.unwrap_err()),
        ["ActivityError", "GovernanceBlock"]
    );

    let events = h.events_of(&ok).await;
    assert_eq!(
        event_types_start_sorted(&events),
        [
            "WorkflowStarted",
            "SignalReceived",
            "ActivityStarted",
            "ActivityCompleted",
            "ActivityStarted",
            "ActivityCompleted",
            "WorkflowCompleted"
        ]
    );
    let lifecycle = |t: &str| of_type(&events, t)[0].body.clone();
    let common = [
        "event_type",
        "run_id",
        "source",
        "workflow_id",
        "workflow_type",
        "timestamp",
    ];
    let with = |extra: &[&str]| set(&[&common[..], extra].concat());
    // 2.0.0's key set: WorkflowStarted carries the run's arguments.
    assert_eq!(
        keys(&lifecycle("WorkflowStarted")),
        with(&["task_queue", "activity_input"])
    );
    assert_eq!(
        keys(&lifecycle("SignalReceived")),
        with(&["task_queue", "signal_args", "signal_name"])
    );
    assert_eq!(
        keys(&lifecycle("WorkflowCompleted")),
        with(&["workflow_output"])
    );
    let activity = [
        "activity_id",
        "activity_type",
        "task_queue",
        "attempt",
        "activity_input",
    ];
    assert_eq!(keys(&lifecycle("ActivityStarted")), with(&activity));
    let completed = [
        &activity[..],
        &[
            "status",
            "start_time",
            "end_time",
            "duration_ms",
            "span_count",
            "spans",
            "activity_output",
            "error",
        ],
    ]
    .concat();
    assert_eq!(keys(&lifecycle("ActivityCompleted")), with(&completed));
    for e in &events {
        assert!(
            e.body.get("hook_trigger").is_none(),
            "hook_trigger must be absent on lifecycle events"
        );
        assert_eq!(e.body["source"], "workflow-telemetry");
    }
    assert_eq!(lifecycle("SignalReceived")["signal_args"], json!(["go"]));
    assert_eq!(lifecycle("SignalReceived")["signal_name"], "note");
    assert_eq!(
        lifecycle("ActivityStarted")["activity_input"],
        json!(["hi"])
    );
    assert_eq!(lifecycle("ActivityStarted")["attempt"], 1);
    assert_eq!(lifecycle("ActivityCompleted")["activity_output"], "hi");
    assert_eq!(lifecycle("ActivityCompleted")["status"], "completed");
    assert_eq!(
        lifecycle("WorkflowCompleted")["workflow_output"],
        json!({"results": ["hi", "5"], "notes": ["go"]})
    );

    let failed_events = h.events_of(&failed).await;
    assert_eq!(
        event_types(&failed_events),
        [
            "WorkflowStarted",
            "ActivityStarted",
            "ActivityCompleted",
            "WorkflowFailed"
        ],
        "a BLOCK at ActivityStarted is followed by ActivityCompleted (failed)"
    );
    let wf_failed = &of_type(&failed_events, "WorkflowFailed")[0].body;
    assert_eq!(keys(wf_failed), with(&["error"]));
    assert_eq!(wf_failed["error"]["type"], "ActivityError");
    assert_eq!(wf_failed["error"]["cause"]["error_type"], "GovernanceBlock");
    assert_eq!(wf_failed["error"]["cause"]["non_retryable"], true);
    let cause_message = wf_failed["error"]["cause"]["message"].as_str().unwrap();
    assert!(
        cause_message.starts_with("GovernanceBlock: "),
        "an application failure reads \"<type>: <message>\", as the reference sends it: {cause_message}"
    );
    assert_eq!(
        runs_of(&failed, "charge"),
        0,
        "a BLOCK at ActivityStarted stops the body"
    );

    h.assert_no_key_in_histories(&[ok, failed]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdict_tiers_on_activity_started() {
    let wids: Vec<String> = TIERS.iter().map(|t| unique(&format!("as-{t}"))).collect();
    let rules: String = TIERS
        .iter()
        .zip(&wids)
        .map(|(t, w)| rule(t, "ActivityStarted", w))
        .collect();
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailOpen, |b| b).await;
    let results = h
        .run(Some(plugin), async {
            let mut handles = Vec::new();
            for wid in &wids {
                handles.push(
                    h.start_plan(
                        wid,
                        Plan {
                            steps: vec![Step::Charge(charge())],
                            ..Plan::default()
                        },
                    )
                    .await,
                );
            }
            let approval = pending_approval(&h, &wids[2]).await;
            h.core
                .core
                .approvals()
                .decide(&approval.id, true, "test", None)
                .unwrap();
            let mut results = Vec::new();
            for handle in &handles {
                results.push(result_of(handle).await);
            }
            results
        })
        .await;
    let mut results = results.into_iter();
    for tier in ["allow", "constrain", "require_approval"] {
        let out = outcome(results.next().unwrap());
        assert_eq!(
            out.results,
            ["charged ada 1200 card 4111111111111111"],
            "{tier}"
        );
    }
    let blocked = results.next().unwrap().unwrap_err();
    assert_eq!(
        failure_types(&blocked),
        ["ActivityError", "GovernanceBlock"]
    );
    assert_eq!(root_message(&blocked), "Governance blocked: block by test");
    let halted = results.next().unwrap().unwrap_err();
    assert_eq!(failure_types(&halted)[0], "GovernanceHalt");
    assert_eq!(root_message(&halted), "Governance HALT: halt by test");

    assert_eq!(runs_of(&wids[0], "charge"), 1);
    assert_eq!(runs_of(&wids[2], "charge"), 1, "approved activity ran once");
    assert_eq!(runs_of(&wids[3], "charge"), 0, "blocked activity never ran");
    assert_eq!(runs_of(&wids[4], "charge"), 0, "halted activity never ran");
    // Approval: attempt 1 asks, a later attempt polls, is approved, re-evaluates and runs.
    let approval_events = h.events_of(&wids[2]).await;
    let started: Vec<i64> = of_type(&approval_events, "ActivityStarted")
        .iter()
        .map(|e| e.body["attempt"].as_i64().unwrap())
        .collect();
    assert!(started.len() >= 2 && started[0] == 1, "{started:?}");
    assert_eq!(
        of_type(&approval_events, "ActivityStarted")
            .last()
            .unwrap()
            .verdict(),
        Some("allow")
    );
    assert!(
        approval_events
            .iter()
            .any(|e| e.path == "/api/v1/governance/approval" && e.verdict() == Some("allow"))
    );
    assert_eq!(
        of_type(&h.events_of(&wids[4]).await, "WorkflowFailed")[0].body["error"]["type"],
        "GovernanceHalt"
    );
    h.assert_no_key_in_histories(&wids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdict_tiers_on_activity_completed() {
    let wids: Vec<String> = TIERS.iter().map(|t| unique(&format!("ac-{t}"))).collect();
    let rules: String = TIERS
        .iter()
        .zip(&wids)
        .map(|(t, w)| rule(t, "ActivityCompleted", w))
        .collect();
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailOpen, |b| b).await;
    let results = h
        .run(Some(plugin), async {
            let mut handles = Vec::new();
            for wid in &wids {
                handles.push(
                    h.start_plan(
                        wid,
                        Plan {
                            steps: vec![Step::Echo("x".into())],
                            ..Plan::default()
                        },
                    )
                    .await,
                );
            }
            let approval = pending_approval(&h, &wids[2]).await;
            h.core
                .core
                .approvals()
                .decide(&approval.id, true, "test", None)
                .unwrap();
            let mut results = Vec::new();
            for handle in &handles {
                results.push(result_of(handle).await);
            }
            results
        })
        .await;
    let mut results = results.into_iter();
    for tier in ["allow", "constrain", "require_approval"] {
        assert_eq!(outcome(results.next().unwrap()).results, ["x"], "{tier}");
    }
    let blocked = results.next().unwrap().unwrap_err();
    assert_eq!(
        failure_types(&blocked),
        ["ActivityError", "GovernanceBlock"]
    );
    let halted = results.next().unwrap().unwrap_err();
    assert_eq!(failure_types(&halted)[0], "GovernanceHalt");
    for (wid, tier) in wids.iter().zip(TIERS) {
        assert_eq!(
            runs_of(wid, "echo"),
            1,
            "{tier}: the body runs once, approval waits within the attempt"
        );
    }
    h.assert_no_key_in_histories(&wids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdict_tiers_on_workflow_started_and_completed() {
    let started: Vec<String> = TIERS.iter().map(|t| unique(&format!("ws-{t}"))).collect();
    let completed: Vec<String> = TIERS.iter().map(|t| unique(&format!("wc-{t}"))).collect();
    let rules: String = TIERS
        .iter()
        .zip(&started)
        .map(|(t, w)| rule(t, "WorkflowStarted", w))
        .chain(
            TIERS
                .iter()
                .zip(&completed)
                .map(|(t, w)| rule(t, "WorkflowCompleted", w)),
        )
        .collect();
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailOpen, |b| b).await;
    let all: Vec<String> = started.iter().chain(&completed).cloned().collect();
    let results = h
        .run(Some(plugin), async {
            let mut handles = Vec::new();
            for wid in &all {
                handles.push(
                    h.start_plan(
                        wid,
                        Plan {
                            steps: vec![Step::Echo("x".into())],
                            ..Plan::default()
                        },
                    )
                    .await,
                );
            }
            let mut results = Vec::new();
            for handle in &handles {
                results.push(result_of(handle).await);
            }
            results
        })
        .await;
    let (on_start, on_complete) = results.split_at(5);
    for (i, tier) in TIERS.iter().enumerate() {
        match *tier {
            "block" => {
                assert_eq!(
                    failure_types(on_start[i].as_ref().unwrap_err()),
                    ["GovernanceBlock"]
                );
                assert_eq!(
                    failure_types(on_complete[i].as_ref().unwrap_err()),
                    ["GovernanceBlock"]
                );
            }
            "halt" => {
                assert_eq!(
                    failure_types(on_start[i].as_ref().unwrap_err()),
                    ["GovernanceHalt"]
                );
                assert_eq!(
                    failure_types(on_complete[i].as_ref().unwrap_err()),
                    ["GovernanceHalt"]
                );
            }
            _ => {
                assert_eq!(on_start[i].as_ref().unwrap().results, ["x"], "{tier}");
                assert_eq!(on_complete[i].as_ref().unwrap().results, ["x"], "{tier}");
            }
        }
    }
    // BLOCK/HALT on WorkflowStarted: no user code ran.
    for i in [3, 4] {
        assert_eq!(runs_of(&started[i], "echo"), 0);
        assert_eq!(
            event_types(&h.events_of(&started[i]).await),
            ["WorkflowStarted", "WorkflowFailed"]
        );
    }
    // BLOCK/HALT on WorkflowCompleted: the body ran, the run still fails.
    for i in [3, 4] {
        assert_eq!(runs_of(&completed[i], "echo"), 1);
    }
    h.assert_no_key_in_histories(&all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdict_tiers_on_signal_received() {
    let wids: Vec<String> = TIERS.iter().map(|t| unique(&format!("sig-{t}"))).collect();
    let rules: String = TIERS
        .iter()
        .zip(&wids)
        .map(|(t, w)| {
            format!(
                "[[rules]]\nverdict = \"{t}\"\nreason = \"{t} by test\"\n\
                 match = {{ event_type = \"SignalReceived\", workflow_id = \"{w}\", \"signal_args.0\" = \"first\" }}\n"
            )
        })
        .collect();
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailOpen, |b| b).await;
    let results = h
        .run(Some(plugin), async {
            let mut handles = Vec::new();
            for wid in &wids {
                let handle = h
                    .start_plan(
                        wid,
                        Plan {
                            steps: vec![Step::Echo("x".into())],
                            wait_for_signal: true,
                            catch_errors: false,
                        },
                    )
                    .await;
                handle
                    .signal(
                        PlanWorkflow::note,
                        "first".to_string(),
                        WorkflowSignalOptions::default(),
                    )
                    .await
                    .unwrap();
                handles.push(handle);
            }
            // The blocked workflow still waits; a second, allowed note lets it finish.
            for _ in 0..200 {
                if !of_type(&h.events_of(&wids[3]).await, "SignalReceived").is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            handles[3]
                .signal(
                    PlanWorkflow::note,
                    "second".to_string(),
                    WorkflowSignalOptions::default(),
                )
                .await
                .unwrap();
            let mut results = Vec::new();
            for handle in &handles {
                results.push(result_of(handle).await);
            }
            results
        })
        .await;
    for (i, tier) in ["allow", "constrain", "require_approval"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            results[i].as_ref().unwrap().notes,
            ["first"],
            "{tier}: the handler ran"
        );
    }
    assert_eq!(
        results[3].as_ref().unwrap().notes,
        ["second"],
        "block: the handler of the blocked signal did not run"
    );
    assert_eq!(
        failure_types(results[4].as_ref().unwrap_err()),
        ["GovernanceHalt"]
    );
    assert_eq!(
        runs_of(&wids[4], "echo"),
        0,
        "a HALT on the signal ended the run before its activity"
    );
    h.assert_no_key_in_histories(&wids);
}

/// Without human approval — for every activity or for some types — REQUIRE_APPROVAL blocks at
/// once (non-retryable), opens nothing to wait on, and the body never runs; other types still wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_off_blocks_instead_of_waiting() {
    let (skipped, off, waits) = (unique("hitl-skip"), unique("hitl-off"), unique("hitl-on"));
    let rules = format!(
        "{}{}{}",
        rule("require_approval", "ActivityStarted", &skipped),
        rule("require_approval", "ActivityStarted", &off),
        rule("require_approval", "ActivityStarted", &waits),
    );
    let h = Harness::new(&rules).await;
    let plan = |step: Step| Plan {
        steps: vec![step],
        ..Plan::default()
    };
    let charge = || {
        Step::Charge(ChargeReq {
            customer: "c-1".into(),
            amount: 5,
            card: "4111".into(),
        })
    };
    let skipping = h
        .plugin(ErrorPolicy::FailOpen, |b| {
            b.options(|o| o.skip_approval_activity_types(["charge"]))
        })
        .await;
    let (skipped_result, waiting) = h
        .run(Some(skipping), async {
            let skipped_result = result_of(&h.start_plan(&skipped, plan(charge())).await).await;
            // Another type still waits for a human.
            let handle = h.start_plan(&waits, plan(Step::Transfer(5))).await;
            let waiting = pending_approval(&h, &waits).await;
            h.core
                .core
                .approvals()
                .decide(&waiting.id, false, "test", None)
                .unwrap();
            let _ = result_of(&handle).await;
            (skipped_result, waiting)
        })
        .await;
    assert!(waiting.subject.contains("ActivityStarted"), "{waiting:?}");
    let no_hitl = h
        .plugin(ErrorPolicy::FailOpen, |b| {
            b.options(|o| o.approvals_enabled(false))
        })
        .await;
    let off_result = h
        .run(Some(no_hitl), async {
            result_of(&h.start_plan(&off, plan(charge())).await).await
        })
        .await;
    for (wid, result) in [(&skipped, skipped_result), (&off, off_result)] {
        let error = result.unwrap_err();
        assert_eq!(
            failure_types(&error),
            ["ActivityError", "GovernanceBlock"],
            "{wid}"
        );
        assert!(
            root_message(&error).contains("human approval is disabled"),
            "{wid}: {}",
            root_message(&error)
        );
        assert_eq!(runs_of(wid, "charge"), 0, "{wid}: the body never ran");
        let polls = h
            .events_of(wid)
            .await
            .iter()
            .filter(|e| e.path.ends_with("/governance/approval"))
            .count();
        assert_eq!(polls, 0, "{wid}: nobody waits on an approval");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_rejected_and_expired() {
    let (rejected, expired, timed_out) =
        (unique("apr-rej"), unique("apr-exp"), unique("apr-timeout"));
    let rules = format!(
        "{}{}[[rules]]\nverdict = \"require_approval\"\napproval_expires_in = \"1s\"\n\
         match = {{ event_type = \"ActivityStarted\", workflow_id = \"{expired}\" }}\n",
        rule("require_approval", "ActivityStarted", &rejected),
        rule("require_approval", "ActivityStarted", &timed_out),
    );
    let h = Harness::new(&rules).await;
    // The SDK-side timeout (2 s) ends the wait of `timed_out`, whose request never expires in Core.
    let plugin = h
        .plugin(ErrorPolicy::FailOpen, |b| {
            b.options(|o| o.approval_timeout(Duration::from_secs(2)))
        })
        .await;
    let results = h
        .run(Some(plugin), async {
            let plan = || Plan {
                steps: vec![Step::Transfer(500)],
                ..Plan::default()
            };
            let a = h.start_plan(&rejected, plan()).await;
            let b = h.start_plan(&expired, plan()).await;
            let c = h.start_plan(&timed_out, plan()).await;
            let approval = pending_approval(&h, &rejected).await;
            h.core
                .core
                .approvals()
                .decide(&approval.id, false, "test", Some("too much".into()))
                .unwrap();
            (
                result_of(&a).await,
                result_of(&b).await,
                result_of(&c).await,
            )
        })
        .await;
    let rejected_err = results.0.unwrap_err();
    assert_eq!(
        failure_types(&rejected_err),
        ["ActivityError", "ApprovalRejected"]
    );
    assert_eq!(root_message(&rejected_err), "Activity rejected: too much");
    assert_eq!(
        failure_types(&results.1.unwrap_err()),
        ["ActivityError", "ApprovalExpired"]
    );
    let timed_out_err = results.2.unwrap_err();
    assert_eq!(
        failure_types(&timed_out_err),
        ["ActivityError", "ApprovalExpired"]
    );
    assert!(
        root_message(&timed_out_err).contains("no decision within 2s"),
        "{}",
        root_message(&timed_out_err)
    );
    for wid in [&rejected, &expired, &timed_out] {
        assert_eq!(runs_of(wid, "transfer"), 0, "{wid}: the activity never ran");
    }
    let expired_approval = h
        .core
        .core
        .approvals()
        .list()
        .into_iter()
        .find(|a| a.key.workflow_id == expired)
        .unwrap();
    assert!(expired_approval.expired);
    h.assert_no_key_in_histories(&[rejected, expired, timed_out]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_granted_while_the_retry_lands_on_another_worker() {
    let wid = unique("apr-2nd");
    let h = Harness::new(&rule("require_approval", "ActivityStarted", &wid)).await;
    let first = h.plugin(ErrorPolicy::FailOpen, |b| b).await;
    // Worker 1 runs attempt 1 (which asks for approval) and then stops.
    let handle = h
        .run(Some(first), async {
            let handle = h
                .start_plan(
                    &wid,
                    Plan {
                        steps: vec![Step::Transfer(700)],
                        ..Plan::default()
                    },
                )
                .await;
            let approval = pending_approval(&h, &wid).await;
            assert_eq!(approval.state, ApprovalState::Pending);
            handle
        })
        .await;
    let approval = pending_approval(&h, &wid).await;
    h.core
        .core
        .approvals()
        .decide(&approval.id, true, "test", None)
        .unwrap();
    // Worker 2 is a fresh plugin: it never asked, so it learns the decision from Core.
    let second = h.plugin(ErrorPolicy::FailOpen, |b| b).await;
    let result = h
        .run(Some(second), async { result_of(&handle).await })
        .await;
    let out = outcome(result);
    assert!(
        out.results[0].starts_with("transferred 700 on attempt "),
        "{:?}",
        out.results
    );
    let attempt: u32 = out.results[0].rsplit(' ').next().unwrap().parse().unwrap();
    assert!(attempt >= 2);
    assert_eq!(runs_of(&wid, "transfer"), 1);
    let events = h.events_of(&wid).await;
    let last_started = of_type(&events, "ActivityStarted")
        .last()
        .unwrap()
        .body
        .clone();
    assert_eq!(last_started["attempt"], attempt);
    h.assert_no_key_in_histories(std::slice::from_ref(&wid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redaction_reaches_the_activity_and_the_events() {
    let wid = unique("redact");
    let rules = r#"
[[rules]]
name = "redact prompts"
verdict = "allow"
match = { event_type = "ActivityStarted", activity_type = "summarize" }
absent = ["hook_trigger"]
guardrails_result = { input_type = "activity_input", redacted_input = { prompt = "[REDACTED]" }, validation_passed = true }

[[rules]]
name = "redact echo output"
verdict = "allow"
match = { event_type = "ActivityCompleted", activity_type = "echo" }
guardrails_result = { input_type = "activity_output", redacted_input = "[REDACTED OUTPUT]" }

[[rules]]
name = "redact add"
verdict = "allow"
match = { event_type = "ActivityStarted", activity_type = "add" }
absent = ["hook_trigger"]
guardrails_result = { input_type = "activity_input", redacted_input = [0, 0] }

[[rules]]
name = "pii in charge"
verdict = "allow"
match = { event_type = "ActivityStarted", activity_type = "charge" }
absent = ["hook_trigger"]
guardrails_result = { validation_passed = false, reasons = [{ type = "pii", field = "card", reason = "card number" }, { reason = "no raw PANs" }] }
"#;
    let h = Harness::new(rules).await;
    // `summarize` takes a custom struct: the plugin is told its type; `add` is not described.
    let plugin = h
        .plugin(ErrorPolicy::FailOpen, |b| {
            b.describe_activity(Shop::summarize)
        })
        .await;
    let prompt = Prompt {
        prompt: "my ssn is 123-45-6789".into(),
        user: "u1".into(),
    };
    let out = h
        .run(Some(plugin), async {
            let plan = Plan {
                steps: vec![
                    Step::Summarize(prompt.clone()),
                    Step::Echo("secret output".into()),
                    Step::Charge(charge()),
                    Step::Add(2, 3),
                ],
                catch_errors: true,
                ..Plan::default()
            };
            result_of(&h.start_plan(&wid, plan).await).await
        })
        .await;
    let out = outcome(out);
    assert_eq!(
        out.results[0], "saw:[REDACTED]",
        "the activity ran with the redacted input (D4)"
    );
    assert_eq!(
        out.results[1], "[REDACTED OUTPUT]",
        "the workflow got the redacted output"
    );
    assert_eq!(
        out.results[2],
        "ERR:GuardrailsValidationFailed:Guardrails validation failed: card number; no raw PANs"
    );
    let events = h.events_of(&wid).await;
    let completed = of_type(&events, "ActivityCompleted");
    assert_eq!(
        completed[0].body["activity_input"],
        json!([{"prompt": "[REDACTED]", "user": "u1"}])
    );
    assert_eq!(completed[0].body["activity_output"], "saw:[REDACTED]");
    assert_eq!(
        of_type(&events, "ActivityStarted")[0].body["activity_input"][0]["prompt"],
        "my ssn is 123-45-6789"
    );
    assert!(
        out.results[3].starts_with("ERR:GuardrailsValidationFailed:")
            && out.results[3].contains("not captured"),
        "a redaction that cannot be applied fails the activity instead of running it unredacted: {}",
        out.results[3]
    );
    assert_eq!(runs_of(&wid, "charge"), 0);
    assert_eq!(runs_of(&wid, "add"), 0);
    let wf_done = of_type(&events, "WorkflowCompleted")[0].body.clone();
    assert!(
        !wf_done.to_string().contains("secret output"),
        "output redaction happened before the workflow saw it"
    );
    h.assert_no_key_in_histories(std::slice::from_ref(&wid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_down_under_fail_open_and_fail_closed() {
    let h = Harness::new("").await;
    let open = h.plugin(ErrorPolicy::FailOpen, |b| b).await;
    let closed = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    // Core goes away after the start-up key check.
    h.core.core.kill();
    let (open_wid, closed_wid) = (unique("down-open"), unique("down-closed"));
    let plan = || Plan {
        steps: vec![Step::Echo("still works".into())],
        ..Plan::default()
    };
    let open_result = h
        .run(Some(open.clone()), async {
            result_of(&h.start_plan(&open_wid, plan()).await).await
        })
        .await;
    assert_eq!(
        outcome(open_result).results,
        ["still works"],
        "fail_open: the workflow completes without Core"
    );
    let lost = open.governor().stats().lost_fail_open;
    assert!(
        lost >= 4,
        "every event Core did not get is counted ({lost})"
    );
    let closed_result = h
        .run(Some(closed), async {
            result_of(&h.start_plan(&closed_wid, plan()).await).await
        })
        .await;
    let err = closed_result.unwrap_err();
    assert_eq!(failure_types(&err), ["GovernanceHalt"]);
    assert!(
        root_message(&err).starts_with("Governance HALT: Governance API error"),
        "{}",
        root_message(&err)
    );
    assert_eq!(
        runs_of(&closed_wid, "echo"),
        0,
        "fail_closed: nothing governed ran"
    );
    h.assert_no_key_in_histories(&[open_wid, closed_wid]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_governed_history_makes_no_core_calls() {
    let wid = unique("replay");
    let h = Harness::new("").await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let handle = h
        .run(Some(plugin.clone()), async {
            let handle = h
                .start_plan(
                    &wid,
                    Plan {
                        steps: vec![Step::Echo("a".into()), Step::Add(1, 2)],
                        wait_for_signal: true,
                        catch_errors: false,
                    },
                )
                .await;
            handle
                .signal(
                    PlanWorkflow::note,
                    "n".to_string(),
                    WorkflowSignalOptions::default(),
                )
                .await
                .unwrap();
            outcome(result_of(&handle).await);
            handle
        })
        .await;
    let history = handle.fetch_history(WorkflowFetchHistoryOptions::default());
    let calls_before = h.core.core.request_count();
    let replayer = WorkflowReplayer::new(
        WorkflowReplayerOptions::new()
            .worker_plugin(plugin)
            .register_workflow::<PlanWorkflow>()
            .unwrap()
            .build(),
    )
    .unwrap();
    replayer
        .replay_workflow(history)
        .await
        .expect("replay is deterministic");
    assert_eq!(
        h.core.core.request_count(),
        calls_before,
        "replay made no Core call"
    );
    h.assert_no_key_in_histories(std::slice::from_ref(&wid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_started_before_governance_continue_and_replay() {
    let wid = unique("pre-gov");
    let h = Harness::new("").await;
    // An ungoverned worker starts the run; it waits for a signal.
    let handle = h
        .run(None, async {
            let handle = h
                .start_plan(
                    &wid,
                    Plan {
                        steps: vec![Step::Echo("late".into())],
                        wait_for_signal: true,
                        catch_errors: false,
                    },
                )
                .await;
            // Let the first workflow task complete on this worker.
            for _ in 0..100 {
                let history = handle
                    .fetch_history(WorkflowFetchHistoryOptions::default())
                    .into_events()
                    .await
                    .unwrap();
                if history.len() >= 4 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            handle
        })
        .await;
    let switched_on = SystemTime::now();
    // Governance is switched on; the run was started before, so its history stays ungoverned.
    let plugin = h
        .plugin(ErrorPolicy::FailClosed, |b| {
            b.options(|o| o.workflows_started_after(switched_on))
        })
        .await;
    let result = h
        .run(Some(plugin.clone()), async {
            handle
                .signal(
                    PlanWorkflow::note,
                    "resume".to_string(),
                    WorkflowSignalOptions::default(),
                )
                .await
                .unwrap();
            result_of(&handle).await
        })
        .await;
    assert_eq!(outcome(result).results, ["late"]);
    let events = event_types(&h.events_of(&wid).await);
    assert_eq!(
        events,
        ["ActivityStarted", "ActivityCompleted"],
        "activities governed, no workflow events for the old run"
    );
    let replayer = |plugin| {
        WorkflowReplayer::new(
            WorkflowReplayerOptions::new()
                .worker_plugin(plugin)
                .register_workflow::<PlanWorkflow>()
                .unwrap()
                .build(),
        )
        .unwrap()
    };
    replayer(plugin)
        .replay_workflow(handle.fetch_history(WorkflowFetchHistoryOptions::default()))
        .await
        .expect("the cut-off keeps the old run's replay deterministic");
    // Without the cut-off, governance would add commands the history does not have.
    let naive = h.plugin(ErrorPolicy::FailOpen, |b| b).await;
    let err = replayer(naive)
        .replay_workflow(handle.fetch_history(WorkflowFetchHistoryOptions::default()))
        .await
        .expect_err("governing a run that started ungoverned is nondeterministic");
    assert!(err.to_string().contains("nondetermin"), "{err}");
    h.assert_no_key_in_histories(std::slice::from_ref(&wid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotated_activities_and_workflow_report_typed_values() {
    let wid = unique("bank");
    let rules = r#"
[[rules]]
name = "mask card"
verdict = "allow"
match = { event_type = "ActivityStarted", activity_type = "bank_pay" }
absent = ["hook_trigger"]
guardrails_result = { input_type = "activity_input", redacted_input = [{ card = "****" }] }
"#;
    let h = Harness::new(rules).await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let result = h
        .run(Some(plugin), async {
            let handle = h
                .client()
                .start_workflow(
                    BankWorkflow::run,
                    charge(),
                    WorkflowStartOptions::new(&h.task_queue, &wid).build(),
                )
                .await
                .unwrap();
            let note = Note {
                text: "rent".into(),
                priority: 2,
            };
            handle
                .signal(BankWorkflow::memo, note, WorkflowSignalOptions::default())
                .await
                .unwrap();
            result_of(&handle).await
        })
        .await;
    let results = result.unwrap();
    assert_eq!(
        results[0], "paid ada 1200 card **** (rent)",
        "typed input redaction of a two-argument activity"
    );
    assert_eq!(results[1], "audit ada");
    let events = h.events_of(&wid).await;
    let signal = &of_type(&events, "SignalReceived")[0].body;
    assert_eq!(
        signal["signal_args"],
        json!([{"text": "rent", "priority": 2}]),
        "struct signal argument via #[governed_workflow]"
    );
    assert_eq!(signal["signal_name"], "memo");
    let started = of_type(&events, "ActivityStarted");
    assert_eq!(started[0].body["activity_type"], "bank_pay");
    assert_eq!(
        started[0].body["activity_input"],
        json!([{"customer": "ada", "amount": 1200, "card": "4111111111111111"}, "rent"])
    );
    assert_eq!(started[1].body["activity_type"], "Bank::audit");
    assert_eq!(
        started[1].body["activity_input"],
        json!([{"prompt": "audit ada", "user": "rent"}])
    );
    let completed = of_type(&events, "ActivityCompleted");
    assert_eq!(completed[0].body["activity_input"][0]["card"], "****");
    assert_eq!(
        completed[1].body["activity_output"],
        Value::Null,
        "capture_output = false"
    );
    assert_eq!(runs_of(&wid, "bank_pay"), 1);
    h.assert_no_key_in_histories(std::slice::from_ref(&wid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_annotated_items_are_governed_when_asked() {
    let (plain, annotated) = (unique("plain"), unique("annotated"));
    let h = Harness::new("").await;
    let plugin = h
        .plugin(ErrorPolicy::FailClosed, |b| {
            b.options(|o| o.only_annotated())
        })
        .await;
    h.run(Some(plugin), async {
        let a = h
            .start_plan(
                &plain,
                Plan {
                    steps: vec![Step::Echo("x".into())],
                    ..Plan::default()
                },
            )
            .await;
        let b = h
            .client()
            .start_workflow(
                BankWorkflow::run,
                charge(),
                WorkflowStartOptions::new(&h.task_queue, &annotated).build(),
            )
            .await
            .unwrap();
        b.signal(
            BankWorkflow::memo,
            Note {
                text: "t".into(),
                priority: 1,
            },
            WorkflowSignalOptions::default(),
        )
        .await
        .unwrap();
        outcome(result_of(&a).await);
        result_of(&b).await.unwrap();
    })
    .await;
    assert!(
        h.events_of(&plain).await.is_empty(),
        "neither the plain workflow nor its plain activity is governed"
    );
    assert_eq!(
        event_types_start_sorted(&h.events_of(&annotated).await),
        [
            "WorkflowStarted",
            "SignalReceived",
            "ActivityStarted",
            "ActivityCompleted",
            "ActivityStarted",
            "ActivityCompleted",
            "WorkflowCompleted"
        ]
    );
    h.assert_no_key_in_histories(&[plain, annotated]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_lists_extend_the_defaults() {
    let wid = unique("skips");
    let h = Harness::new("").await;
    let plugin = h
        .plugin(ErrorPolicy::FailClosed, |b| {
            b.options(|o| {
                o.skip_activity_types(["echo"])
                    .skip_signals(["note"])
                    .send_start_event(false)
            })
        })
        .await;
    h.run(Some(plugin), async {
        let handle = h
            .start_plan(
                &wid,
                Plan {
                    steps: vec![Step::Echo("x".into()), Step::Add(1, 1)],
                    wait_for_signal: true,
                    catch_errors: false,
                },
            )
            .await;
        handle
            .signal(
                PlanWorkflow::note,
                "n".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .unwrap();
        outcome(result_of(&handle).await);
    })
    .await;
    let events = h.events_of(&wid).await;
    assert_eq!(
        event_types(&events),
        ["ActivityStarted", "ActivityCompleted", "WorkflowCompleted"]
    );
    assert!(
        events
            .iter()
            .all(|e| e.body.get("activity_type").and_then(Value::as_str) != Some("echo"))
    );
    assert!(
        events
            .iter()
            .all(|e| e.body.get("activity_type").and_then(Value::as_str)
                != Some("send_governance_event")),
        "the carrier stays skipped"
    );
    h.assert_no_key_in_histories(std::slice::from_ref(&wid));
}

/// `enforce_task_queues`: a worker whose queue is not named sends nothing; naming it governs
/// the same plan fully.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_enforced_task_queues_are_governed() {
    let h = Harness::new("").await;
    let plan = || Plan {
        steps: vec![Step::Echo("x".into())],
        ..Plan::default()
    };
    let (elsewhere, here) = (unique("queues-elsewhere"), unique("queues-here"));
    let plugin = h
        .plugin(ErrorPolicy::FailClosed, |b| {
            b.options(|o| o.enforce_task_queues(["some-other-queue"]))
        })
        .await;
    h.run(Some(plugin), async {
        outcome(result_of(&h.start_plan(&elsewhere, plan()).await).await);
    })
    .await;
    let queue = h.task_queue.clone();
    let plugin = h
        .plugin(ErrorPolicy::FailClosed, |b| {
            b.options(|o| o.enforce_task_queues(["some-other-queue", queue.as_str()]))
        })
        .await;
    h.run(Some(plugin), async {
        outcome(result_of(&h.start_plan(&here, plan()).await).await);
    })
    .await;
    assert!(
        h.events_of(&elsewhere).await.is_empty(),
        "a worker on a queue that is not enforced sends nothing"
    );
    assert_eq!(
        event_types(&h.events_of(&here).await),
        [
            "WorkflowStarted",
            "ActivityStarted",
            "ActivityCompleted",
            "WorkflowCompleted"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governed_activity_governs_itself_without_the_plugin() {
    let (unconfigured, governed) = (unique("bank-unconfigured"), unique("bank-standalone"));
    let h = Harness::new("").await;
    let start = |wid: String| {
        let h = &h;
        async move {
            let handle = h
                .client()
                .start_workflow(
                    BankWorkflow::run,
                    charge(),
                    WorkflowStartOptions::new(&h.task_queue, &wid).build(),
                )
                .await
                .unwrap();
            handle
                .signal(
                    BankWorkflow::memo,
                    Note {
                        text: "n".into(),
                        priority: 1,
                    },
                    WorkflowSignalOptions::default(),
                )
                .await
                .unwrap();
            result_of(&handle).await
        }
    };
    // No plugin and no governor: an annotated activity refuses to run ungoverned.
    let err = h.run(None, start(unconfigured.clone())).await.unwrap_err();
    assert_eq!(failure_types(&err), ["ActivityError", "GovernanceAPIError"]);
    assert!(
        root_message(&err).starts_with("OpenBox is not configured"),
        "{}",
        root_message(&err)
    );
    assert_eq!(runs_of(&unconfigured, "bank_pay"), 0);

    let governor =
        openbox::Governor::connect(h.core.config(ErrorPolicy::FailClosed), Default::default())
            .await
            .unwrap();
    assert!(governor.install_global());
    let results = h.run(None, start(governed.clone())).await.unwrap();
    assert_eq!(results[0], "paid ada 1200 card 4111111111111111 (n)");
    let events = h.events_of(&governed).await;
    assert_eq!(
        event_types(&events),
        [
            "ActivityStarted",
            "ActivityCompleted",
            "ActivityStarted",
            "ActivityCompleted"
        ],
        "the macro governs both activities (async and sync body); no plugin, no workflow events"
    );
    assert_eq!(events[0].body["activity_input"][1], "n");
    assert_eq!(
        events[3].body["activity_output"],
        Value::Null,
        "capture_output = false"
    );
    assert_eq!(
        governor.stats().open_scopes,
        0,
        "no per-activity state left"
    );
    h.assert_no_key_in_histories(&[unconfigured, governed]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composes_with_another_worker_plugin() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use temporalio_sdk::SimplePlugin;
    use temporalio_sdk::interceptors::{
        ActivityInboundInterceptor, ExecuteActivityInput, ExecuteActivityOutput, Next,
    };

    struct Counting(Arc<AtomicUsize>);
    impl ActivityInboundInterceptor for Counting {
        fn execute_activity<'a>(
            &'a self,
            input: ExecuteActivityInput,
            next: Next<'a, ExecuteActivityInput, ExecuteActivityOutput<'a>>,
        ) -> ExecuteActivityOutput<'a> {
            self.0.fetch_add(1, Ordering::SeqCst);
            next.run(input)
        }
    }
    let seen = Arc::new(AtomicUsize::new(0));
    let other = SimplePlugin::builder("other")
        .activity_inbound_interceptors(vec![
            Arc::new(Counting(seen.clone())) as Arc<dyn ActivityInboundInterceptor>
        ])
        .build();
    let wid = unique("compose");
    let h = Harness::new("").await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    // Both plugins on one worker, as a user registers them.
    let options = temporalio_sdk::WorkerOptions::new(&h.task_queue)
        .worker_plugin(other)
        .worker_plugin(plugin)
        .register_activities(Shop)
        .register_workflow::<PlanWorkflow>()
        .unwrap()
        .build();
    let out = h
        .env
        .with_worker(options, async {
            result_of(
                &h.start_plan(
                    &wid,
                    Plan {
                        steps: vec![Step::Echo("both".into())],
                        ..Plan::default()
                    },
                )
                .await,
            )
            .await
        })
        .await;
    assert_eq!(outcome(out).results, ["both"]);
    assert!(
        seen.load(Ordering::SeqCst) >= 2,
        "the other plugin's interceptor ran (echo + carrier)"
    );
    assert_eq!(event_types(&h.events_of(&wid).await).len(), 4);
    h.assert_no_key_in_histories(std::slice::from_ref(&wid));
}

/// A workflow started with a multi-agent session in its memo: every event of the run — workflow
/// events, activities and the HTTP call inside one — carries the session, the activities get it
/// through a Temporal header (in the history), and a handoff from workflow code reaches Core with
/// the reference's body. A BLOCK on a handoff is the workflow's to handle; a HALT ends the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_reaches_every_event_and_handoffs_are_governed() {
    use openbox_tests::http_server::TestHttpServer;
    use temporalio_common::MemoValues;

    let server = TestHttpServer::start().await;
    let (wid, blocked, halted) = (
        unique("session"),
        unique("handoff-block"),
        unique("handoff-halt"),
    );
    let (sid, refused_sid, halting_sid) = (unique("sid"), unique("sid-no"), unique("sid-halt"));
    let rules = format!(
        "[[rules]]\nverdict = \"block\"\nreason = \"not to billing\"\n\
         match = {{ event_type = \"Handoff\", multi_agent_session_id = \"{refused_sid}\" }}\n\
         [[rules]]\nverdict = \"halt\"\nreason = \"stop the chain\"\n\
         match = {{ event_type = \"Handoff\", multi_agent_session_id = \"{halting_sid}\" }}\n"
    );
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailOpen, |b| b).await;
    let handoff = |session: &str| Step::Handoff {
        session: session.to_owned(),
        from: "did:aip:triage".to_owned(),
    };
    let h = &h;
    let start = |wid: &str, session: &str, plan: Plan| {
        let mut memo = MemoValues::new();
        memo.insert("openbox_multi_agent_session_id", session.to_owned());
        let options = WorkflowStartOptions::new(&h.task_queue, wid)
            .memo(memo)
            .build();
        async move {
            h.client()
                .start_workflow(PlanWorkflow::run, plan, options)
                .await
                .expect("workflow starts")
        }
    };
    let (done, refused, stopped) = h
        .run(Some(plugin), async {
            let main = start(
                &wid,
                &sid,
                Plan {
                    steps: vec![
                        Step::Fetch(format!("{}/page", server.url)),
                        handoff(&sid),
                        Step::Echo("after".into()),
                    ],
                    wait_for_signal: true,
                    ..Plan::default()
                },
            )
            .await;
            main.signal(
                PlanWorkflow::note,
                "go".to_owned(),
                WorkflowSignalOptions::default(),
            )
            .await
            .unwrap();
            let refused = start(
                &blocked,
                &refused_sid,
                Plan {
                    steps: vec![handoff(&refused_sid), Step::Echo("instead".into())],
                    catch_errors: true,
                    ..Plan::default()
                },
            )
            .await;
            let stopped = start(
                &halted,
                &halting_sid,
                Plan {
                    steps: vec![handoff(&halting_sid), Step::Echo("never".into())],
                    catch_errors: true,
                    ..Plan::default()
                },
            )
            .await;
            (
                result_of(&main).await,
                result_of(&refused).await,
                result_of(&stopped).await,
            )
        })
        .await;
    assert_eq!(
        outcome(done).results,
        ["fetched 200", "handoff:Some(Allow)", "after"]
    );

    let events = h.events_of(&wid).await;
    let types = event_types_start_sorted(&events);
    assert_eq!(
        types,
        [
            "WorkflowStarted",
            "SignalReceived",
            "ActivityStarted",
            "hook:ActivityStarted",
            "hook:ActivityStarted",
            "ActivityCompleted",
            "ActivityStarted",
            "ActivityCompleted",
            "WorkflowCompleted"
        ]
    );
    for e in &events {
        assert_eq!(
            e.body["multi_agent_session_id"],
            sid,
            "{:?} carries the session",
            e.event_type()
        );
    }
    let handoffs: Vec<Value> = h
        .core
        .log()
        .await
        .into_iter()
        .filter(|e| e.event_type() == Some("Handoff"))
        .map(|e| e.body)
        .collect();
    let ours: Vec<&Value> = handoffs
        .iter()
        .filter(|b| b["multi_agent_session_id"] == sid)
        .collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(
        keys(ours[0]),
        set(&[
            "event_type",
            "from_agent_did",
            "multi_agent_session_id",
            "source",
            "timestamp"
        ])
    );
    assert_eq!(ours[0]["from_agent_did"], "did:aip:triage");
    let history = openbox_tests::history::history_json(&h.env.temporal, &wid);
    assert!(
        history.contains("openbox-multi-agent-session-id"),
        "the activities get the session in a header"
    );

    assert_eq!(
        outcome(refused).results,
        ["ERR:handoff:Governance blocked: not to billing", "instead"],
        "a refused handoff is the workflow's to handle"
    );
    let error = stopped.unwrap_err();
    assert_eq!(failure_types(&error), ["GovernanceHalt"]);
    assert_eq!(runs_of(&halted, "echo"), 0, "a HALT ends the run");
}

/// A worker whose requests are signed runs a workflow — workflow events, activity events and an
/// HTTP call's hook evaluations — against a Core that accepts only that agent's signatures;
/// a worker with another key does not start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signing_worker_passes_a_verifying_core_and_a_wrong_key_does_not_start() {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use openbox::{AgentIdentity, OpenBoxError, OpenBoxPlugin};
    use openbox_tests::core::{TestCore, config_builder_for};
    use openbox_tests::http_server::TestHttpServer;

    const DID: &str = "did:aip:9b2c4e1a-3f5d-4a7b-8c6e-1d2f3a4b5c6d";
    let seed = STANDARD.encode([21u8; 32]);
    let public = AgentIdentity::new(DID, &seed).unwrap().public_key_base64();
    let server = TestHttpServer::start().await;
    let h = Harness::with_core(TestCore::start_signed(DID, &public).await).await;
    let plugin_with = |key: String| {
        let config = config_builder_for(
            &h.core.core.url(),
            ErrorPolicy::FailClosed,
            Duration::from_secs(5),
        )
        .agent_identity(DID, key)
        .build()
        .unwrap();
        async move { OpenBoxPlugin::builder().config(config).build().await }
    };
    match plugin_with(STANDARD.encode([22u8; 32])).await {
        Err(OpenBoxError::SignatureRejected { rejection, .. }) => {
            assert_eq!(rejection.code(), "signature_invalid")
        }
        other => panic!("a wrong key must not start: {other:?}"),
    }
    let plugin = plugin_with(seed.clone())
        .await
        .expect("the right key starts");
    let wid = unique("signed");
    let result = h
        .run(Some(plugin), async {
            let plan = Plan {
                steps: vec![
                    Step::Echo("signed".into()),
                    Step::Fetch(format!("{}/page", server.url)),
                ],
                ..Plan::default()
            };
            result_of(&h.start_plan(&wid, plan).await).await
        })
        .await;
    assert_eq!(outcome(result).results, ["signed", "fetched 200"]);
    let events = h.events_of(&wid).await;
    assert_eq!(
        event_types(&events),
        [
            "WorkflowStarted",
            "ActivityStarted",
            "ActivityCompleted",
            "ActivityStarted",
            "hook:ActivityStarted",
            "hook:ActivityStarted",
            "ActivityCompleted",
            "WorkflowCompleted"
        ]
    );
    assert!(events.iter().all(|e| e.status == 200
        && e.headers.get("x-openbox-agent-did").map(String::as_str) == Some(DID)));
    h.assert_no_key_in_histories(std::slice::from_ref(&wid));
    let history = openbox_tests::history::history_json(&h.env.temporal, &wid);
    assert!(
        !history.contains(&seed),
        "the private key is not in the history"
    );
}
