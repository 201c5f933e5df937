//! Every example body printed in the wire contract, parsed into the Rust types and serialized
//! back: the result must be the *same JSON* (same keys, same types, same values).
//!
//! The blocks are kept in `testdata/contract-blocks.txt`. When the contract itself is present
//! (`../shared/spec/wire-contract.md` beside the repository, as in CI), the test also checks
//! that the copy is still exactly the contract's list of ```json blocks, so a new example in the
//! contract fails here until it is covered.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::*;

const BLOCKS: &str = include_str!("testdata/contract-blocks.txt");

/// The envelope the contract prints in prose around the http span fragment (block 7).
const HTTP_ENVELOPE: &str = r#"{"source":"workflow-telemetry","event_type":"ActivityStarted","workflow_id":"ref-wf-57cd80e1","run_id":"01a20b7d-…","workflow_type":"ResearchWorkflow","activity_id":"3","activity_type":"fetch_page","task_queue":"ref-4761d8bb","attempt":1,"activity_input":["http://127.0.0.1:18080/"],"activity_output":null,"#;

fn blocks_of(text: &str, marker: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with(marker) {
            if let Some(b) = current.take() {
                blocks.push(b);
            }
            current = Some(String::new());
            continue;
        }
        if marker == "```json" && line.starts_with("```") {
            if let Some(b) = current.take() {
                blocks.push(b);
            }
            continue;
        }
        if let Some(b) = current.as_mut() {
            b.push_str(line);
            b.push('\n');
        }
    }
    if let Some(b) = current {
        blocks.push(b);
    }
    blocks
}

fn committed_blocks() -> Vec<String> {
    blocks_of(BLOCKS, "#### block")
}

/// Parses `json` as `T`, serializes it back and requires identical JSON.
fn round_trip<T: Serialize + DeserializeOwned>(json: &str) -> (T, Value) {
    let original: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let typed: T = serde_json::from_value(original.clone())
        .unwrap_or_else(|e| panic!("does not parse as {}: {e}", std::any::type_name::<T>()));
    let back = serde_json::to_value(&typed).unwrap();
    assert_same_json("$", &original, &back);
    (typed, back)
}

/// Same keys, same JSON types, same values — with a path in the message when not.
fn assert_same_json(path: &str, want: &Value, got: &Value) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            let wk: Vec<_> = w.keys().collect();
            let gk: Vec<_> = g.keys().collect();
            assert_eq!(wk, gk, "key set differs at {path}");
            for (k, wv) in w {
                assert_same_json(&format!("{path}.{k}"), wv, &g[k]);
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            assert_eq!(w.len(), g.len(), "array length differs at {path}");
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                assert_same_json(&format!("{path}[{i}]"), wv, gv);
            }
        }
        (Value::Number(w), Value::Number(g)) => {
            assert_eq!(w.is_f64(), g.is_f64(), "integer/float differs at {path}");
            assert_eq!(w, g, "value differs at {path}");
        }
        _ => assert_eq!(want, got, "value or type differs at {path}"),
    }
}

fn check_lifecycle(json: &str, event_type: &str) {
    let (event, back) = round_trip::<LifecycleEvent>(json);
    assert_eq!(event.event_type(), event_type);
    assert!(
        back.get("hook_trigger").is_none(),
        "hook_trigger must be absent on lifecycle events"
    );
    assert_eq!(back["source"], "workflow-telemetry");
}

fn check_hook_body(json: &str, hook_type: &str, stage: HookStage) {
    let (hook, back) = round_trip::<HookEvaluation>(json);
    assert_eq!(back["hook_trigger"], Value::Bool(true));
    assert_eq!(back["event_type"], "ActivityStarted");
    assert_eq!(back["span_count"], 1);
    assert_eq!(hook.spans[0].hook.hook_type(), hook_type);
    assert_eq!(hook.spans[0].stage, stage);
}

/// A span block wrapped into the hook envelope of the http example, as Core would receive it.
fn in_envelope(span: &str) -> String {
    format!(
        "{HTTP_ENVELOPE}\"spans\":[{}],\"span_count\":1,\"hook_trigger\":true,\"timestamp\":\"2026-11-24T02:58:37.888Z\"}}",
        span.trim()
    )
}

#[test]
fn committed_blocks_are_the_contracts_blocks() {
    let contract =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spec/wire-contract.md");
    match std::fs::read_to_string(&contract) {
        Ok(text) => assert_eq!(
            blocks_of(&text, "```json"),
            committed_blocks(),
            "the contract's example bodies changed: update testdata/contract-blocks.txt and this test"
        ),
        Err(_) => eprintln!(
            "{} not found: checking the committed copy only",
            contract.display()
        ),
    }
}

#[test]
fn every_contract_example_round_trips() {
    let blocks = committed_blocks();
    assert_eq!(blocks.len(), 11, "one check per example below");
    check_lifecycle(&blocks[0], "WorkflowStarted");
    check_lifecycle(&blocks[1], "SignalReceived");
    check_lifecycle(&blocks[2], "WorkflowCompleted");
    check_lifecycle(&blocks[3], "WorkflowFailed");
    check_lifecycle(&blocks[4], "ActivityStarted");
    check_lifecycle(&blocks[5], "ActivityCompleted");
    // Block 7 is the `"spans": …` tail of an http hook body whose envelope is given in prose.
    let http = format!("{HTTP_ENVELOPE}{}}}", blocks[6].trim());
    check_hook_body(&http, "http_request", HookStage::Completed);
    // Blocks 8-10 are bare span objects: as spans, and inside an envelope.
    for (block, hook_type, stage) in [
        (&blocks[7], "file_operation", HookStage::Completed),
        (&blocks[8], "db_query", HookStage::Completed),
        (&blocks[9], "function_call", HookStage::Started),
    ] {
        let (span, _) = round_trip::<Span>(block);
        assert_eq!(span.hook.hook_type(), hook_type);
        check_hook_body(&in_envelope(block), hook_type, stage);
    }
    round_trip::<ApprovalRequest>(&blocks[10]);
}

#[test]
fn example_values_land_in_the_right_fields() {
    let blocks = committed_blocks();
    let (event, _) = round_trip::<LifecycleEvent>(&blocks[3]);
    let LifecycleEvent::WorkflowFailed(failed) = event else {
        panic!("not WorkflowFailed")
    };
    let cause = failed.error.cause.unwrap();
    assert_eq!(cause.error_type.as_deref(), Some("GovernanceBlock"));
    assert_eq!(cause.non_retryable, Some(true));
    assert_eq!(failed.error.root_cause.unwrap().non_retryable, None);

    let (event, _) = round_trip::<LifecycleEvent>(&blocks[5]);
    let LifecycleEvent::ActivityCompleted(done) = event else {
        panic!("not ActivityCompleted")
    };
    assert_eq!(done.status, ActivityStatus::Completed);
    assert_eq!(done.activity.attempt, 1);
    assert_eq!(done.start_time, 1795490524.9296076);
    assert!(done.error.is_none());

    let (span, _) = round_trip::<Span>(&blocks[8]);
    let HookSpan::DbQuery(db) = span.hook else {
        panic!("not a db span")
    };
    assert_eq!(db.rowcount, Some(Some(1)));
    assert_eq!(db.server_port, None);
}

#[test]
fn rust_built_bodies_have_the_reference_key_sets() {
    use std::sync::Arc;
    let activity = Arc::new(ActivityIdentity {
        multi_agent_session_id: None,
        workflow_id: "w".into(),
        run_id: "r".into(),
        workflow_type: "W".into(),
        activity_id: "1".into(),
        activity_type: "a".into(),
        task_queue: "q".into(),
        attempt: 2,
    });
    let started = LifecycleEvent::ActivityStarted(ActivityStarted {
        source: WorkflowTelemetry,
        activity: activity.clone(),
        timestamp: time::now_timestamp(),
        activity_input: Arc::new(vec![]),
    });
    let v = serde_json::to_value(&started).unwrap();
    let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "activity_id",
            "activity_input",
            "activity_type",
            "attempt",
            "event_type",
            "run_id",
            "source",
            "task_queue",
            "timestamp",
            "workflow_id",
            "workflow_type"
        ]
    );
    assert_eq!(v["activity_input"], serde_json::json!([]));

    // A db span at `started` has no rowcount key at all.
    let span = Span {
        span_id: "0000000000000000".into(),
        trace_id: "0".repeat(32),
        parent_span_id: None,
        name: "SELECT".into(),
        kind: SpanKind::Client,
        stage: HookStage::Started,
        start_time: 1,
        end_time: None,
        duration_ns: None,
        attributes: Default::default(),
        status: SpanStatus::from_error(None),
        events: vec![],
        hook: HookSpan::DbQuery(DbQuerySpan {
            db_system: "postgresql".into(),
            db_name: Some("test".into()),
            db_operation: "SELECT".into(),
            db_statement: "SELECT 1".into(),
            server_address: Some("127.0.0.1".into()),
            server_port: Some(5432),
            rowcount: None,
            error: None,
        }),
        activity_id: "1".into(),
    };
    let hook = HookEvaluation::new(activity, Arc::new(vec![]), span, time::now_timestamp());
    let v = serde_json::to_value(&hook).unwrap();
    assert!(v["spans"][0].get("rowcount").is_none());
    assert_eq!(v["spans"][0]["hook_type"], "db_query");
    assert_eq!(v["activity_output"], Value::Null);
    let reparsed: HookEvaluation = serde_json::from_value(v).unwrap();
    assert_eq!(reparsed, hook);
}
