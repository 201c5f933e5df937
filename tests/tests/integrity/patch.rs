//! BLOCK with patch: Core refuses a run's input and names the one it accepts. The run never goes
//! on with the refused input — it continues as new with the patched one, a bounded number of
//! times, and never with an input the workflow cannot take.

use openbox::{ErrorPolicy, OpenBoxPlugin};
use openbox_tests::core::TestCore;
use openbox_tests::fixtures::{BankWorkflow, ChargeReq, Plan, PlanWorkflow, Step, runs_of};
use openbox_tests::harness::{Harness, outcome, result_of};
use openbox_tests::history::{failure_types, run_history_json};
use openbox_tests::unique;
use serde_json::{Value, json};
use temporalio_client::WorkflowStartOptions;

use crate::approvals::nth_approval;
use crate::lifecycle;

fn echo_plan(text: &str) -> Plan {
    Plan {
        steps: vec![Step::Echo(text.into())],
        ..Plan::default()
    }
}

fn run_ids(starts: &[&Value]) -> Vec<String> {
    starts
        .iter()
        .map(|s| s["run_id"].as_str().unwrap().to_owned())
        .collect()
}

/// An activity's BLOCK with a patch: the first run stops before the body runs and continues as
/// new; the second run starts with the patched input (reported in WorkflowStarted) and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_patch_restarts_the_run_with_the_new_input() {
    let wid = unique("patch-act");
    let patched = serde_json::to_value(echo_plan("patched draft")).unwrap();
    let (h, plugin) = patching(
        json!({ "event_type": "ActivityStarted", "workflow_id": wid, "activity_input.0": "original draft" }),
        patched.clone(),
    )
    .await;
    let result = h
        .run(Some(plugin), async {
            result_of(&h.start_plan(&wid, echo_plan("original draft")).await).await
        })
        .await;
    assert_eq!(outcome(result).results, ["patched draft"]);
    assert_eq!(runs_of(&wid, "echo"), 1, "the refused input never ran");

    let events = h.events_of(&wid).await;
    let starts = lifecycle(&events, "WorkflowStarted");
    assert_eq!(starts.len(), 2, "two runs");
    let runs = run_ids(&starts);
    assert_ne!(runs[0], runs[1]);
    assert_eq!(
        starts[0]["activity_input"],
        json!([echo_plan("original draft")]),
        "WorkflowStarted carries the arguments"
    );
    assert_eq!(starts[1]["activity_input"], json!([patched]));
    // The first run reports the stopped attempt and nothing after it.
    let completed = lifecycle(&events, "ActivityCompleted");
    assert_eq!(completed[0]["run_id"], runs[0].as_str());
    assert_eq!(completed[0]["status"], "failed");
    assert_eq!(completed[0]["error"]["type"], "GovernancePatch");
    for ended in ["WorkflowCompleted", "WorkflowFailed"] {
        assert!(
            lifecycle(&events, ended)
                .iter()
                .all(|e| e["run_id"] == runs[1].as_str()),
            "run 1 sends no {ended}"
        );
    }

    let first = run_history_json(&h.env.temporal, &wid, Some(&runs[0]));
    assert!(
        first.contains("EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW"),
        "{first}"
    );
    assert!(first.contains("GovernancePatch"));
    let second = run_history_json(&h.env.temporal, &wid, Some(&runs[1]));
    assert!(second.contains("openbox_retryable_block_restart_count"));
    assert!(second.contains("CONTINUE_AS_NEW_INITIATOR_WORKFLOW"));
}

/// A patch on WorkflowStarted that always comes back: `null` restarts with the same input, and
/// the chain stops at `max_patch_restarts` with GovernancePatchLimitExceeded (reported in
/// WorkflowFailed). A patched input the workflow cannot take fails the run at once, without a
/// restart that could never start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_are_bounded_and_patched_inputs_must_fit() {
    let (looping, unfit) = (unique("patch-loop"), unique("patch-unfit"));
    let rules = json!({ "rules": [
        {
            "name": "again and again",
            "verdict": "block",
            "match": { "event_type": "WorkflowStarted", "workflow_id": looping },
            "response": { "patch": { "new_input": null } },
        },
        {
            "name": "not a charge",
            "verdict": "block",
            "match": { "event_type": "WorkflowStarted", "workflow_id": unfit },
            "response": { "patch": { "new_input": "not a charge request" } },
        },
    ]});
    let h = Harness::with_core(TestCore::start_json(&rules.to_string()).await).await;
    let plugin = h
        .plugin(ErrorPolicy::FailOpen, |b| {
            b.options(|o| o.max_patch_restarts(2))
        })
        .await;
    let (looped, misfit) = h
        .run(Some(plugin), async {
            let looped = result_of(&h.start_plan(&looping, echo_plan("same")).await).await;
            let req = ChargeReq {
                customer: "ada".into(),
                amount: 5,
                card: "4111".into(),
            };
            let handle = h
                .client()
                .start_workflow(
                    BankWorkflow::run,
                    req,
                    WorkflowStartOptions::new(&h.task_queue, &unfit).build(),
                )
                .await
                .expect("workflow starts");
            (looped, result_of(&handle).await)
        })
        .await;

    let error = looped.unwrap_err();
    assert_eq!(failure_types(&error), ["GovernancePatchLimitExceeded"]);
    let events = h.events_of(&looping).await;
    let starts = lifecycle(&events, "WorkflowStarted");
    assert_eq!(starts.len(), 3, "the first run and two restarts");
    let plan = json!([echo_plan("same")]);
    assert!(
        starts.iter().all(|s| s["activity_input"] == plan),
        "null restarts with the same input"
    );
    let failed = lifecycle(&events, "WorkflowFailed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["error"]["type"], "GovernancePatchLimitExceeded");
    assert_eq!(runs_of(&looping, "echo"), 0);

    let error = misfit.unwrap_err();
    assert_eq!(failure_types(&error), ["GovernancePatchInputInvalid"]);
    let starts = h.events_of(&unfit).await;
    assert_eq!(
        lifecycle(&starts, "WorkflowStarted").len(),
        1,
        "no restart with an input the workflow cannot take"
    );
}

/// A signal's BLOCK with a patch: its handler does not run, and the run waiting for it restarts
/// with the patched input at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_patch_restarts_a_waiting_run() {
    let wid = unique("patch-sig");
    let patched = serde_json::to_value(echo_plan("no wait")).unwrap();
    let (h, plugin) = patching(
        json!({ "event_type": "SignalReceived", "workflow_id": wid }),
        patched,
    )
    .await;
    let result = h
        .run(Some(plugin), async {
            let waiting = Plan {
                wait_for_signal: true,
                ..echo_plan("waited")
            };
            let handle = h.start_plan(&wid, waiting).await;
            handle
                .signal(
                    openbox_tests::fixtures::PlanWorkflow::note,
                    "go".to_owned(),
                    temporalio_client::WorkflowSignalOptions::default(),
                )
                .await
                .unwrap();
            result_of(&handle).await
        })
        .await;
    let out = outcome(result);
    assert_eq!(out.results, ["no wait"]);
    assert!(
        out.notes.is_empty(),
        "the refused signal's handler did not run"
    );
    let starts = h.events_of(&wid).await;
    assert_eq!(lifecycle(&starts, "WorkflowStarted").len(), 2);
}

/// A reviewer who rejects an approval and names the input to use instead: the run restarts
/// with that input rather than failing with ApprovalRejected, and the refused input never ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_rejected_with_a_patch_restarts_the_run() {
    let wid = unique("patch-apr");
    let reviewed = serde_json::to_value(echo_plan("reviewed draft")).unwrap();
    let rules = json!({ "rules": [{
        "name": "drafts need review",
        "verdict": "require_approval",
        "match": { "event_type": "ActivityStarted", "workflow_id": wid, "activity_input.0": "original draft" },
    }]});
    let h = Harness::with_core(TestCore::start_json(&rules.to_string()).await).await;
    let plugin = h.plugin(ErrorPolicy::FailOpen, |b| b).await;
    let result = h
        .run(Some(plugin), async {
            let handle = h.start_plan(&wid, echo_plan("original draft")).await;
            let approval = nth_approval(&h, &wid, 1).await;
            h.core
                .core
                .approvals()
                .reject_with_patch(
                    &approval.id,
                    "test",
                    Some("use the reviewed draft".into()),
                    reviewed.clone(),
                )
                .unwrap();
            result_of(&handle).await
        })
        .await;
    assert_eq!(outcome(result).results, ["reviewed draft"]);
    assert_eq!(runs_of(&wid, "echo"), 1, "the refused input never ran");

    let events = h.events_of(&wid).await;
    let starts = lifecycle(&events, "WorkflowStarted");
    assert_eq!(starts.len(), 2, "two runs");
    assert_eq!(starts[1]["activity_input"], json!([reviewed]));
    let runs = run_ids(&starts);
    let first = run_history_json(&h.env.temporal, &wid, Some(&runs[0]));
    assert!(first.contains("GovernancePatch"), "{first}");
    assert!(first.contains("EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW"));
    assert!(!first.contains("ApprovalRejected"));
}

/// A restart waits for the handlers still running: a signal's async handler whose activity
/// waits for approval finishes (its activity runs and completes in the first run) before the
/// run continues as new, though another signal asked for the restart meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_waits_for_running_signal_handlers() {
    let wid = unique("patch-handlers");
    let patched = serde_json::to_value(echo_plan("patched")).unwrap();
    let rules = json!({ "rules": [
        {
            "name": "slow work needs review",
            "verdict": "require_approval",
            "match": { "event_type": "ActivityStarted", "workflow_id": wid, "activity_input.0": "slow work" },
        },
        {
            "name": "notes restart the run",
            "verdict": "block",
            "match": { "event_type": "SignalReceived", "workflow_id": wid, "signal_name": "note" },
            "response": { "patch": { "new_input": patched } },
        },
    ]});
    let h = Harness::with_core(TestCore::start_json(&rules.to_string()).await).await;
    let plugin = h.plugin(ErrorPolicy::FailOpen, |b| b).await;
    let result = h
        .run(Some(plugin), async {
            let waiting = Plan {
                wait_for_signal: true,
                ..echo_plan("never")
            };
            let handle = h.start_plan(&wid, waiting).await;
            let options = temporalio_client::WorkflowSignalOptions::default;
            handle
                .signal(PlanWorkflow::work, "slow work".to_owned(), options())
                .await
                .unwrap();
            let approval = nth_approval(&h, &wid, 1).await;
            handle
                .signal(PlanWorkflow::note, "restart now".to_owned(), options())
                .await
                .unwrap();
            // The restart is asked for; the run must still be waiting for the work handler.
            wait_for_event(&h, &wid, "SignalReceived", 2).await;
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            h.core
                .core
                .approvals()
                .decide(&approval.id, true, "test", None)
                .unwrap();
            result_of(&handle).await
        })
        .await;
    assert_eq!(outcome(result).results, ["patched"]);

    let events = h.events_of(&wid).await;
    let starts = lifecycle(&events, "WorkflowStarted");
    assert_eq!(starts.len(), 2, "two runs");
    let runs = run_ids(&starts);
    let completed = lifecycle(&events, "ActivityCompleted");
    assert!(
        completed.iter().any(|c| c["run_id"] == runs[0].as_str()
            && c["status"] == "completed"
            && c["activity_input"] == json!(["slow work"])),
        "the work handler's activity completed in the first run: {completed:#?}"
    );
    assert_eq!(runs_of(&wid, "echo"), 2, "slow work, then the patched run");
}

/// Waits until Core has `n` lifecycle events of `event_type` for `wid`.
async fn wait_for_event(h: &Harness, wid: &str, event_type: &str, n: usize) {
    for _ in 0..1200 {
        if lifecycle(&h.events_of(wid).await, event_type).len() >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("Core never got {n} {event_type} events for {wid}");
}

/// A dev Core answering BLOCK with a patch to `new_input` to requests matching `matches` (JSON
/// rules: they can say `null`), and a plugin for it.
async fn patching(matches: Value, new_input: Value) -> (Harness, OpenBoxPlugin) {
    let rules = json!({ "rules": [{
        "name": "rewrite",
        "verdict": "block",
        "reason": "rewrite the draft",
        "match": matches,
        "response": { "governance_event_id": "gev-patch-1", "patch": { "new_input": new_input } },
    }]});
    let h = Harness::with_core(TestCore::start_json(&rules.to_string()).await).await;
    let plugin = h.plugin(ErrorPolicy::FailOpen, |b| b).await;
    (h, plugin)
}
