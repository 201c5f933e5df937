//! Property tests of the rules-file parser: any text, and TOML shaped like a rules file with
//! values of any type, parses or fails with a `RulesError`, never a panic; a parsed rule set
//! answers any request. `PROPTEST_CASES` sets the number of cases.

use proptest::prelude::*;
use serde_json::json;

use crate::rules::RuleSet;

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\"block\"".to_owned()),
        Just("\"allow\"".to_owned()),
        Just("\"require_approval\"".to_owned()),
        Just("\"maybe\"".to_owned()),
        Just("\"10m\"".to_owned()),
        Just("\"-3s\"".to_owned()),
        Just("\"99999999999999h\"".to_owned()),
        Just("\"\"".to_owned()),
        Just("true".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
        "\"[ -~]{0,16}\"".prop_map(|s| s.replace('\\', "")),
    ]
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("name".to_owned()),
        Just("verdict".to_owned()),
        Just("reason".to_owned()),
        Just("approval_expires_in".to_owned()),
        Just("risk_score".to_owned()),
        Just("constraints".to_owned()),
        Just("absent".to_owned()),
        Just("guardrails_result".to_owned()),
        "[a-z_]{1,10}",
    ]
}

/// TOML text shaped like a rules file.
fn rules_file() -> impl Strategy<Value = String> {
    let rule = (
        prop::collection::vec((field(), scalar()), 0..6),
        prop::collection::vec(("[a-z_.0-9]{1,16}", scalar()), 0..4),
    )
        .prop_map(|(fields, matches)| {
            let mut text = String::from("[[rules]]\n");
            for (k, v) in fields {
                text.push_str(&format!("{k} = {v}\n"));
            }
            let m: Vec<String> = matches
                .into_iter()
                .map(|(k, v)| format!("\"{k}\" = {v}"))
                .collect();
            text.push_str(&format!("match = {{ {} }}\n", m.join(", ")));
            text
        });
    (
        prop::option::of(scalar()),
        prop::collection::vec(rule, 0..4),
    )
        .prop_map(|(expiry, rules)| {
            let mut text = String::new();
            if let Some(e) = expiry {
                text.push_str(&format!("[defaults]\napproval_expires_in = {e}\n"));
            }
            text.push_str(&rules.concat());
            text
        })
}

proptest! {
    #[test]
    fn any_text_parses_or_fails_typed(text in any::<String>()) {
        let _ = RuleSet::from_toml_str(&text, "fuzz");
        let _ = RuleSet::from_json_str(&text, "fuzz");
    }

    #[test]
    fn rules_shaped_toml_parses_or_fails_typed(text in rules_file()) {
        if let Ok(rules) = RuleSet::from_toml_str(&text, "fuzz") {
            let request = json!({
                "event_type": "ActivityStarted",
                "activity_type": "charge",
                "spans": [{ "stage": "started", "hook_type": "http_request" }],
            });
            if let Some(rule) = rules.find(&request) {
                let _ = rule.response();
            }
        }
    }
}
