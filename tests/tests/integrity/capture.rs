//! Activity input: every argument of a declared activity reaches Core, and an activity whose
//! arguments cannot be reported is never governed blind without anyone knowing.

use openbox::ErrorPolicy;
use openbox_tests::fixtures::{ChargeReq, Plan, Step, runs_of};
use openbox_tests::harness::{Harness, outcome, result_of};
use openbox_tests::observe::Observer;
use openbox_tests::unique;
use serde_json::json;

use crate::lifecycle;

fn req() -> ChargeReq {
    ChargeReq {
        customer: "ada".into(),
        amount: 250,
        card: "4111111111111111".into(),
    }
}

/// Three arguments, one a struct, declared with `#[openbox::governed_activities]`: Core sees
/// all three, and a guardrail redacts the third before the body runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_argument_of_a_declared_activity_reaches_core() {
    let h = Harness::new(
        r#"
[[rules]]
name = "mask cards"
verdict = "allow"
match = { event_type = "ActivityStarted", activity_type = "ledger_post" }
absent = ["hook_trigger"]
guardrails_result = { input_type = "activity_input", redacted_input = ["acc-1", 250, { card = "****" }] }
"#,
    )
    .await;
    let plugin = h.plugin(ErrorPolicy::FailOpen, |b| b).await;
    let wid = unique("capture");
    let out = h
        .run(Some(plugin), async {
            let plan = Plan {
                steps: vec![Step::Post("acc-1".into(), 250, req())],
                ..Plan::default()
            };
            result_of(&h.start_plan(&wid, plan).await).await
        })
        .await;
    assert_eq!(
        outcome(out).results,
        ["posted 250 to acc-1 for ada card ****"]
    );
    let events = h.events_of(&wid).await;
    assert_eq!(
        lifecycle(&events, "ActivityStarted")[0]["activity_input"],
        json!(["acc-1", 250, {"customer": "ada", "amount": 250, "card": "4111111111111111"}])
    );
    assert_eq!(
        lifecycle(&events, "ActivityCompleted")[0]["activity_input"][2]["card"],
        "****"
    );
}

/// An undeclared two-argument activity: the plugin cannot report its arguments, so it says so
/// (once, naming the activity), and with `require_input_capture` it refuses to run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_whose_arguments_cannot_be_reported_is_never_silent() {
    let obs = Observer::get();
    let _serial = obs.exclusive().await;
    obs.capture_logs();
    let h = Harness::new("").await;
    let lenient = h.plugin(ErrorPolicy::FailOpen, |b| b).await;
    let strict = h
        .plugin(ErrorPolicy::FailOpen, |b| {
            b.options(|o| o.require_input_capture(true))
        })
        .await;
    let (warned, refused) = (unique("uncaptured"), unique("refused"));
    let plan = || Plan {
        steps: vec![Step::Add(2, 3)],
        catch_errors: true,
        ..Plan::default()
    };
    let out = h
        .run(Some(lenient.clone()), async {
            result_of(&h.start_plan(&warned, plan()).await).await
        })
        .await;
    assert_eq!(outcome(out).results, ["5"]);
    let logs = obs.logs();
    assert!(
        logs.contains("cannot report the arguments") && logs.contains("activity_type=\"add\""),
        "no warning named the activity: {logs}"
    );
    assert_eq!(lenient.governor().stats().inputs_not_captured, 1);

    let out = h
        .run(Some(strict), async {
            result_of(&h.start_plan(&refused, plan()).await).await
        })
        .await;
    let result = &outcome(out).results[0];
    assert!(
        result.starts_with("ERR:GovernanceAPIError:") && result.contains("add"),
        "{result}"
    );
    assert_eq!(runs_of(&refused, "add"), 0);
}
