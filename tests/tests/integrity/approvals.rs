//! Approvals are keyed by the request Core opened, not by the activity: a grant never lets
//! through an operation, a completion or a later request that asked for approval again.

use std::time::Duration;

use openbox::ErrorPolicy;
use openbox_dev::{Approval, ApprovalState};
use openbox_tests::fixtures::{Plan, Step, runs_of};
use openbox_tests::harness::{Harness, PlanHandle, outcome, result_of};
use openbox_tests::http_server::TestHttpServer;
use openbox_tests::unique;

use crate::lifecycle;

/// Waits until the dev Core holds `n` approval requests for `wid`; returns the newest.
pub(crate) async fn nth_approval(h: &Harness, wid: &str, n: usize) -> Approval {
    for _ in 0..1200 {
        let all: Vec<Approval> = h
            .core
            .core
            .approvals()
            .list()
            .into_iter()
            .filter(|a| a.key.workflow_id == wid)
            .collect();
        if all.len() >= n {
            return all.into_iter().next().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no approval request #{n} for {wid}");
}

/// Waits until the worker has polled the approval of `wid` `n` more times than `since`.
async fn polls_after(h: &Harness, wid: &str, since: usize, n: usize) -> usize {
    for _ in 0..1200 {
        let polls = h
            .events_of(wid)
            .await
            .iter()
            .filter(|e| e.path == "/api/v1/governance/approval")
            .count();
        if polls >= since + n {
            return polls;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the worker stopped polling the approval of {wid}");
}

async fn polls(h: &Harness, wid: &str) -> usize {
    polls_after(h, wid, 0, 0).await
}

fn approve(h: &Harness, approval: &Approval) {
    assert_eq!(approval.state, ApprovalState::Pending, "{approval:?}");
    h.core
        .core
        .approvals()
        .decide(&approval.id, true, "test", None)
        .unwrap();
}

fn plan(step: Step) -> Plan {
    Plan {
        steps: vec![step],
        ..Plan::default()
    }
}

async fn start(h: &Harness, wid: &str, step: Step) -> PlanHandle {
    h.start_plan(wid, plan(step)).await
}

/// (a) After ActivityStarted's approval, an HTTP call inside the activity asks for approval of
/// its own: the activity waits for that one, and the body does not run again on the old grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_does_not_cover_an_operation_that_asks_again() {
    let server = TestHttpServer::start().await;
    let wid = unique("apr-hook");
    let rules = format!(
        r#"
[[rules]]
name = "start needs a human"
verdict = "require_approval"
match = {{ event_type = "ActivityStarted", workflow_id = "{wid}" }}
absent = ["hook_trigger"]

[[rules]]
name = "the call needs a human too"
verdict = "require_approval"
match = {{ workflow_id = "{wid}", hook_trigger = true, "spans.0.hook_type" = "http_request", "spans.0.stage" = "started" }}
"#
    );
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let result = h
        .run(Some(plugin), async {
            let handle = start(&h, &wid, Step::Fetch(format!("{}/x", server.url))).await;
            approve(&h, &nth_approval(&h, &wid, 1).await);
            let second = nth_approval(&h, &wid, 2).await;
            assert!(
                second.subject.contains("http_request"),
                "{}",
                second.subject
            );
            // Several attempts poll while the call's request is pending: none runs the body.
            let seen = polls(&h, &wid).await;
            polls_after(&h, &wid, seen, 3).await;
            assert_eq!(
                runs_of(&wid, "fetch"),
                1,
                "the body re-ran on the old grant"
            );
            assert!(server.received("/x").is_empty());
            approve(&h, &second);
            result_of(&handle).await
        })
        .await;
    assert_eq!(outcome(result).results, ["fetched 200"]);
    assert_eq!(runs_of(&wid, "fetch"), 2);
    assert_eq!(
        server.received("/x").len(),
        1,
        "the call went out once, approved"
    );
}

/// (b) ActivityCompleted answered REQUIRE_APPROVAL with a new request: the result is held until
/// that request is granted, whatever became of ActivityStarted's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_waits_for_its_own_approval() {
    let wid = unique("apr-done");
    let rules = format!(
        r#"
[[rules]]
name = "start needs a human"
verdict = "require_approval"
match = {{ event_type = "ActivityStarted", workflow_id = "{wid}" }}
absent = ["hook_trigger"]

[[rules]]
name = "the result needs a human"
verdict = "require_approval"
match = {{ event_type = "ActivityCompleted", workflow_id = "{wid}" }}
"#
    );
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let (result, approved_at) = h
        .run(Some(plugin), async {
            let handle = start(&h, &wid, Step::Transfer(10)).await;
            approve(&h, &nth_approval(&h, &wid, 1).await);
            let second = nth_approval(&h, &wid, 2).await;
            assert!(
                second.subject.starts_with("ActivityCompleted"),
                "{}",
                second.subject
            );
            let seen = polls(&h, &wid).await;
            polls_after(&h, &wid, seen, 3).await;
            let approved_at = h.core.core.request_count();
            approve(&h, &second);
            (result_of(&handle).await, approved_at)
        })
        .await;
    assert!(outcome(result).results[0].starts_with("transferred 10"));
    assert_eq!(runs_of(&wid, "transfer"), 1, "the body ran once");
    let events = h.events_of(&wid).await;
    let done = events
        .iter()
        .find(|e| e.event_type() == Some("WorkflowCompleted"))
        .expect("the workflow completed");
    assert!(
        done.seq > approved_at,
        "the result was delivered before its approval (WorkflowCompleted #{} vs approval at #{approved_at})",
        done.seq
    );
}

/// (c) Core asks again right after a grant (another rule on the retried ActivityStarted): that
/// is a new request, and the body waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_again_after_a_grant_is_a_new_request() {
    let wid = unique("apr-again");
    let rules = format!(
        r#"
[[rules]]
name = "first look"
verdict = "require_approval"
match = {{ event_type = "ActivityStarted", workflow_id = "{wid}", attempt = 1 }}
absent = ["hook_trigger"]

[[rules]]
name = "second look"
verdict = "require_approval"
match = {{ event_type = "ActivityStarted", workflow_id = "{wid}", attempt = 2 }}
absent = ["hook_trigger"]
"#
    );
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailClosed, |b| b).await;
    let result = h
        .run(Some(plugin), async {
            let handle = start(&h, &wid, Step::Transfer(20)).await;
            approve(&h, &nth_approval(&h, &wid, 1).await);
            let second = nth_approval(&h, &wid, 2).await;
            assert!(second.subject.contains("second look"), "{}", second.subject);
            let seen = polls(&h, &wid).await;
            polls_after(&h, &wid, seen, 3).await;
            assert_eq!(
                runs_of(&wid, "transfer"),
                0,
                "the body ran on the first grant"
            );
            approve(&h, &second);
            result_of(&handle).await
        })
        .await;
    assert!(outcome(result).results[0].starts_with("transferred 20"));
    assert_eq!(runs_of(&wid, "transfer"), 1);
    // Attempts waiting for approval did not end the activity: one ActivityCompleted, for the
    // attempt that ran.
    let events = h.events_of(&wid).await;
    assert!(lifecycle(&events, "ActivityStarted").len() >= 3);
    let completed = lifecycle(&events, "ActivityCompleted");
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0]["status"], "completed");
}
