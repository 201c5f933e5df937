//! The activity lifecycle: every ActivityStarted is followed by an ActivityCompleted, and an
//! input redaction that cannot be applied fails the activity instead of running it unredacted.

use openbox::ErrorPolicy;
use openbox_tests::fixtures::{BankWorkflow, ChargeReq, Note, Plan, Prompt, Shop, Step, runs_of};
use openbox_tests::harness::{Harness, outcome, result_of};
use openbox_tests::unique;
use temporalio_client::{WorkflowSignalOptions, WorkflowStartOptions};

use crate::lifecycle as of;

/// A BLOCK on ActivityStarted stops the body, and Core still hears how the attempt ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_at_activity_started_is_followed_by_activity_completed() {
    let h = Harness::new(
        r#"
[[rules]]
name = "no echo"
verdict = "block"
reason = "echo is frozen"
match = { event_type = "ActivityStarted", activity_type = "echo" }
"#,
    )
    .await;
    let plugin = h.plugin(ErrorPolicy::FailOpen, |b| b).await;
    let wid = unique("block-start");
    let out = h
        .run(Some(plugin), async {
            let plan = Plan {
                steps: vec![Step::Echo("hi".into())],
                catch_errors: true,
                ..Plan::default()
            };
            result_of(&h.start_plan(&wid, plan).await).await
        })
        .await;
    assert_eq!(
        outcome(out).results,
        ["ERR:GovernanceBlock:Governance blocked: echo is frozen"]
    );
    assert_eq!(runs_of(&wid, "echo"), 0);
    let events = h.events_of(&wid).await;
    let started = of(&events, "ActivityStarted");
    let completed = of(&events, "ActivityCompleted");
    assert_eq!((started.len(), completed.len()), (1, 1));
    assert_eq!(completed[0]["activity_id"], started[0]["activity_id"]);
    assert_eq!(completed[0]["status"], "failed");
    assert_eq!(completed[0]["error"]["type"], "GovernanceBlock");
    assert_eq!(
        completed[0]["error"]["message"],
        "Governance blocked: echo is frozen"
    );
}

/// A `redacted_input` of the wrong shape (plugin path), and one whose values do not fit the
/// argument types (`#[governed_activity]` path): the body never runs, the failure names the
/// problem, and ActivityCompleted reports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_input_redaction_fails_closed_and_completes() {
    let h = Harness::new(
        r#"
[[rules]]
name = "scalar redaction"
verdict = "allow"
match = { event_type = "ActivityStarted", activity_type = "summarize" }
absent = ["hook_trigger"]
guardrails_result = { input_type = "activity_input", redacted_input = "[REDACTED]" }

[[rules]]
name = "ill-typed redaction"
verdict = "allow"
match = { event_type = "ActivityStarted", activity_type = "bank_pay" }
absent = ["hook_trigger"]
guardrails_result = { input_type = "activity_input", redacted_input = [{ customer = 5 }, "memo"] }
"#,
    )
    .await;
    let plugin = h
        .plugin(ErrorPolicy::FailOpen, |b| {
            b.describe_activity(Shop::summarize)
        })
        .await;
    let wid = unique("scalar-redaction");
    let bank_wid = unique("typed-redaction");
    let (out, bank) = h
        .run(Some(plugin), async {
            let plan = Plan {
                steps: vec![Step::Summarize(Prompt {
                    prompt: "my ssn is 123-45-6789".into(),
                    user: "u1".into(),
                })],
                catch_errors: true,
                ..Plan::default()
            };
            let out = result_of(&h.start_plan(&wid, plan).await).await;
            let handle = h
                .client()
                .start_workflow(
                    BankWorkflow::run,
                    ChargeReq {
                        customer: "ada".into(),
                        amount: 5,
                        card: "4111".into(),
                    },
                    WorkflowStartOptions::new(&h.task_queue, &bank_wid).build(),
                )
                .await
                .unwrap();
            handle
                .signal(
                    BankWorkflow::memo,
                    Note {
                        text: "rent".into(),
                        priority: 1,
                    },
                    WorkflowSignalOptions::default(),
                )
                .await
                .unwrap();
            (out, result_of(&handle).await)
        })
        .await;
    let result = &outcome(out).results[0];
    assert!(
        result.starts_with("ERR:GuardrailsValidationFailed:") && result.contains("a string"),
        "{result}"
    );
    assert_eq!(
        runs_of(&wid, "summarize"),
        0,
        "the body never saw the input"
    );
    assert!(bank.is_err(), "the ill-typed redaction failed bank_pay");
    assert_eq!(runs_of(&bank_wid, "bank_pay"), 0);
    for (id, activity) in [(&wid, "summarize"), (&bank_wid, "bank_pay")] {
        let events = h.events_of(id).await;
        let completed = of(&events, "ActivityCompleted");
        assert_eq!(completed.len(), 1, "{activity}: ActivityCompleted is sent");
        assert_eq!(completed[0]["status"], "failed");
        assert_eq!(completed[0]["error"]["type"], "GuardrailsValidationFailed");
    }
}
