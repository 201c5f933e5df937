//! Workflow events: guardrails that fail validation stop the event's effect, as they stop an
//! activity — the run does not start (its arguments are in WorkflowStarted for them to judge),
//! the signal handler does not run.

use openbox::ErrorPolicy;
use openbox_tests::fixtures::{Plan, PlanWorkflow, Step, runs_of};
use openbox_tests::harness::{Harness, outcome, result_of};
use openbox_tests::history::failure_types;
use openbox_tests::unique;
use temporalio_client::WorkflowSignalOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guardrail_failures_stop_workflow_events() {
    let (refused, signalled) = (unique("wf-guard"), unique("sig-guard"));
    let rules = format!(
        r#"
[[rules]]
name = "refused start"
verdict = "allow"
match = {{ event_type = "WorkflowStarted", workflow_id = "{refused}", "activity_input.0.steps.0.Echo" = "pii" }}
guardrails_result = {{ validation_passed = false, reasons = [{{ reason = "pii in the start" }}] }}

[[rules]]
name = "refused signal"
verdict = "constrain"
match = {{ event_type = "SignalReceived", workflow_id = "{signalled}", "signal_args.0" = "pii" }}
guardrails_result = {{ validation_passed = false, reasons = [{{ reason = "pii in the signal" }}] }}
"#
    );
    let h = Harness::new(&rules).await;
    let plugin = h.plugin(ErrorPolicy::FailOpen, |b| b).await;
    let (start, signal) = h
        .run(Some(plugin), async {
            let plan = Plan {
                steps: vec![Step::Echo("x".into())],
                ..Plan::default()
            };
            let pii = Plan {
                steps: vec![Step::Echo("pii".into())],
                ..Plan::default()
            };
            let a = h.start_plan(&refused, pii).await;
            let b = h
                .start_plan(
                    &signalled,
                    Plan {
                        wait_for_signal: true,
                        ..plan
                    },
                )
                .await;
            for note in ["pii", "fine"] {
                b.signal(
                    PlanWorkflow::note,
                    note.to_owned(),
                    WorkflowSignalOptions::default(),
                )
                .await
                .unwrap();
            }
            (result_of(&a).await, result_of(&b).await)
        })
        .await;
    let error = start.unwrap_err();
    assert_eq!(failure_types(&error), ["GuardrailsValidationFailed"]);
    assert_eq!(runs_of(&refused, "echo"), 0, "the run did not start");
    assert_eq!(
        outcome(signal).notes,
        ["fine"],
        "the refused signal's handler did not run"
    );
}
