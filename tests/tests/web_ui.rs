//! The dev Core's web page in headless Chromium: a worker runs a workflow whose activity needs
//! approval; the page shows the pending request, the test clicks Approve, and the workflow
//! completes. Along the way: live events, filters, redactions in the JSON view, rules reload.
//! Screenshots go to `<target>/tmp/web_ui/`.

use std::path::PathBuf;
use std::time::Duration;

use openbox::ErrorPolicy;
use openbox_tests::browser::Browser;
use openbox_tests::core::TestCore;
use openbox_tests::fixtures::{Plan, Prompt, Shop, Step};
use openbox_tests::harness::{Harness, outcome, result_of};
use openbox_tests::unique;

const WAIT: Duration = Duration::from_secs(60);

const RULES: &str = r#"
[defaults]
approval_expires_in = "10m"

[[rules]]
name = "transfers need a human"
verdict = "require_approval"
reason = "transfers need sign-off"
match = { event_type = "ActivityStarted", activity_type = "transfer" }
absent = ["hook_trigger"]

[[rules]]
name = "redact prompts"
verdict = "allow"
match = { event_type = "ActivityStarted", activity_type = "summarize" }
guardrails_result = { input_type = "activity_input", redacted_input = { prompt = "[REDACTED]" }, validation_passed = true }
"#;

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web_ui")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_from_the_page_completes_the_workflow() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (core, rules_path) = TestCore::start_with_rules_file(RULES).await;
    let h = Harness::with_core(core).await;
    let url = h.core.core.url();
    let wid = unique("web");
    let other = unique("web-other");
    let plugin = h
        .plugin(ErrorPolicy::FailClosed, |b| {
            b.describe_activity(Shop::summarize)
        })
        .await;
    let shots = screenshots();

    let result = h
        .run(Some(plugin), async {
            browser.goto(&format!("{url}/")).await;
            browser.wait_for("#status", "live", WAIT).await;
            // The page shows the rules file it answers from.
            browser
                .wait_for("#rules", "transfers need a human", WAIT)
                .await;

            let other_run = h
                .start_plan(
                    &other,
                    Plan {
                        steps: vec![Step::Echo("unrelated".into())],
                        ..Plan::default()
                    },
                )
                .await;
            let handle = h
                .start_plan(
                    &wid,
                    Plan {
                        steps: vec![
                            Step::Summarize(Prompt {
                                prompt: "the secret plan".into(),
                                user: "ada".into(),
                            }),
                            Step::Transfer(250),
                        ],
                        ..Plan::default()
                    },
                )
                .await;
            result_of(&other_run)
                .await
                .expect("the other workflow completes");

            // The pending approval arrives live, with its expiry and buttons.
            let card_text = browser
                .wait_for("li.approval[data-state=pending]", &wid, WAIT)
                .await;
            assert!(card_text.contains("transfer"), "{card_text}");
            assert!(card_text.contains("expires in"), "{card_text}");
            assert!(card_text.contains("transfers need a human"), "{card_text}");

            // Events arrive live; the workflow filter hides the other workflow's events.
            browser.wait_for("#events tr.event", &other, WAIT).await;
            let filter = browser.find_all("#filter-workflow").await.remove(0);
            browser.type_into(&filter, &wid).await;
            // (Verdicts are upper-cased by the page's style, and WebDriver reads rendered text.)
            browser
                .wait_for("#events tr.event", "REQUIRE_APPROVAL", WAIT)
                .await;
            for text in browser.texts("#events tr.event").await {
                assert!(
                    text.contains(&wid),
                    "filtered row of another workflow: {text}"
                );
            }
            // The JSON of the summarize evaluation shows the redaction the rule asked for.
            browser
                .click_in("#events tr.event", "summarize", "", WAIT)
                .await;
            browser
                .wait_for("tr.detail .redacted", "[REDACTED]", WAIT)
                .await;
            browser
                .screenshot(&shots.join("1-pending-approval.png"))
                .await;

            // Approve from the page.
            browser
                .click_in(
                    "li.approval[data-state=pending]",
                    &wid,
                    "button.approve",
                    WAIT,
                )
                .await;
            browser
                .wait_for("li.approval[data-state=approved]", "approved by web", WAIT)
                .await;
            let out = outcome(result_of(&handle).await);
            browser
                .wait_for("#events tr.event", "ActivityCompleted", WAIT)
                .await;
            browser.screenshot(&shots.join("2-approved.png")).await;

            // Rules: edit the file, press Reload, see the new rule.
            std::fs::write(
                &rules_path,
                format!(
                    "{RULES}\n[[rules]]\nname = \"added while running\"\nverdict = \"block\"\n\
                     match = {{ activity_type = \"nothing-matches-this\" }}\n"
                ),
            )
            .expect("rules file rewritten");
            browser.click_in("#reload-rules", "Reload", "", WAIT).await;
            browser
                .wait_for("#rules", "added while running", WAIT)
                .await;
            browser
                .wait_for("#rules-message", "reloaded 3 rule", WAIT)
                .await;
            // A broken file is refused and said so; the old rules stay.
            std::fs::write(&rules_path, "[[rules]]\nverdict = \"maybe\"\n").expect("rewritten");
            browser.click_in("#reload-rules", "Reload", "", WAIT).await;
            browser.wait_for("#rules-message", "rule 1", WAIT).await;
            browser
                .wait_for("#rules", "added while running", WAIT)
                .await;
            browser.screenshot(&shots.join("3-rules.png")).await;
            out
        })
        .await;

    // An observed run: the same approval rule, shown as observed, and no request opened.
    let observing = h
        .plugin(ErrorPolicy::FailClosed, |b| {
            b.options(|o| o.enforcement(openbox::Enforcement::Observe))
        })
        .await;
    let observed = unique("web-observed");
    let observed_out = h
        .run(Some(observing), async {
            let handle = h
                .start_plan(
                    &observed,
                    Plan {
                        steps: vec![Step::Transfer(9)],
                        ..Plan::default()
                    },
                )
                .await;
            let out = outcome(result_of(&handle).await);
            let filter = browser.find_all("#filter-workflow").await.remove(0);
            browser.clear(&filter).await;
            browser.type_into(&filter, &observed).await;
            browser
                .wait_for(
                    "#events tr.event .v-observed",
                    "OBSERVED: REQUIRE_APPROVAL",
                    WAIT,
                )
                .await;
            browser.screenshot(&shots.join("4-observed.png")).await;
            out
        })
        .await;
    assert!(
        observed_out.results[0].starts_with("transferred 9"),
        "{:?}",
        observed_out.results
    );
    browser.close().await;

    assert_eq!(
        result.results[0], "saw:[REDACTED]",
        "the activity got the redacted input"
    );
    assert!(
        result.results[1].starts_with("transferred 250"),
        "{:?}",
        result.results
    );
    let decided = h.core.core.approvals().list();
    assert_eq!(decided.len(), 1);
    assert_eq!(
        decided[0].state,
        openbox_dev::ApprovalState::Approved {
            by: "web".into(),
            reason: None
        }
    );
    eprintln!("screenshots in {}", shots.display());
}
