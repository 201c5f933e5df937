//! Property tests of everything parsed from Core: response bodies, approval answers and verdict
//! strings. Whatever Core (or something in its place) sends, parsing returns a value or a typed
//! error and never panics. `PROPTEST_CASES` sets the number of cases (long runs: see README).

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::time::SystemTime;

use super::{ApprovalStatus, EvaluateResponse, PATCH_SCHEMA_VERSION, Patch, PatchRequest, Verdict};

/// The verdict spellings Core uses, a few near misses, and noise.
fn verdictish() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("allow".to_owned()),
        Just("ALLOW".to_owned()),
        Just("continue".to_owned()),
        Just("constrain".to_owned()),
        Just("require_approval".to_owned()),
        Just("request_approval".to_owned()),
        Just("block".to_owned()),
        Just("halt".to_owned()),
        Just("stop".to_owned()),
        Just(" allow ".to_owned()),
        Just("".to_owned()),
        ".{0,24}",
    ]
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        verdictish().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Keys of the response schema (so the parser's branches are reached) and noise.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("verdict".to_owned()),
        Just("action".to_owned()),
        Just("reason".to_owned()),
        Just("risk_score".to_owned()),
        Just("guardrails_result".to_owned()),
        Just("input_type".to_owned()),
        Just("redacted_input".to_owned()),
        Just("validation_passed".to_owned()),
        Just("reasons".to_owned()),
        Just("approval_id".to_owned()),
        Just("approval_expiration_time".to_owned()),
        Just("expired".to_owned()),
        Just("constraints".to_owned()),
        Just("governance_event_id".to_owned()),
        Just("patch".to_owned()),
        Just("new_input".to_owned()),
        Just("hook_trigger".to_owned()),
        Just("event_type".to_owned()),
        Just("schema_version".to_owned()),
        "[a-z_]{1,12}",
    ]
}

/// A response-shaped object: schema keys with values of any type.
fn response_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(key(), json_value(), 0..10).prop_map(|m| {
        let mut obj = Map::new();
        obj.extend(m);
        Value::Object(obj)
    })
}

proptest! {
    #[test]
    fn evaluate_response_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = EvaluateResponse::from_slice(&body);
        let _ = ApprovalStatus::from_slice(&body, SystemTime::now());
    }

    #[test]
    fn truncated_json_never_panics(value in response_object(), cut in any::<prop::sample::Index>()) {
        let text = serde_json::to_vec(&value).unwrap();
        let end = cut.index(text.len() + 1);
        let _ = EvaluateResponse::from_slice(&text[..end]);
        let _ = ApprovalStatus::from_slice(&text[..end], SystemTime::now());
    }

    #[test]
    fn response_objects_parse_or_fail_typed(value in response_object()) {
        let parsed = EvaluateResponse::from_value(&value);
        // A parsed response's verdict came from the body: never a silent default.
        if let Ok(r) = &parsed {
            let field = value.get("verdict").or_else(|| value.get("action"));
            prop_assert!(field.is_some(), "verdict out of nothing: {value}");
            prop_assert!(r.risk_score.is_finite());
        }
        let _ = ApprovalStatus::from_slice(&serde_json::to_vec(&value).unwrap(), SystemTime::now());
    }

    #[test]
    fn a_parsed_patch_is_never_a_boolean_or_an_unsafe_number(new_input in json_value(), extra in any::<bool>()) {
        let mut patch = json!({ "new_input": new_input });
        if extra {
            patch["other"] = json!(1);
        }
        let answer = json!({ "verdict": "block", "patch": patch });
        let parsed = Patch::from_answer(answer.as_object().unwrap());
        if let Some(p) = &parsed {
            prop_assert!(!extra, "a patch with a second key");
            prop_assert!(!p.new_input.is_boolean());
            prop_assert_eq!(&p.new_input, &answer["patch"]["new_input"]);
        }
        let r = EvaluateResponse::from_value(&answer).unwrap();
        prop_assert_eq!(r.patch_directive(), parsed.as_ref());
        let halt = EvaluateResponse::from_value(&json!({ "verdict": "halt", "patch": answer["patch"] })).unwrap();
        prop_assert!(halt.patch_directive().is_none(), "HALT never restarts");
    }

    #[test]
    fn patch_envelopes_parse_or_are_refused(details in response_object()) {
        if let Some(req) = PatchRequest::from_details(&details) {
            prop_assert_eq!(req.schema_version, PATCH_SCHEMA_VERSION);
            prop_assert!(details.get("new_input").is_some());
        }
    }

    #[test]
    fn verdict_strings_parse_or_fail_typed(s in verdictish()) {
        match Verdict::parse(&s) {
            Ok(v) => prop_assert_eq!(Verdict::parse(v.as_str()).ok(), Some(v)),
            Err(e) => prop_assert_eq!(e.0, s),
        }
    }

    #[test]
    fn any_string_as_verdict_never_panics(s in any::<String>()) {
        let _ = Verdict::parse(&s);
        let body = json!({ "verdict": s });
        let _ = EvaluateResponse::from_value(&body);
    }
}
