//! Reading what Temporal recorded: workflow histories (through the `temporal` CLI, as a user
//! would) and failure chains.

use std::process::Command;

use temporalio_client::errors::WorkflowGetResultError;
use temporalio_common::error::IncomingError;

use crate::temporal::TestTemporal;

/// `temporal workflow show --workflow-id <id> --output json` (the latest run).
pub fn history_json(temporal: &TestTemporal, workflow_id: &str) -> String {
    run_history_json(temporal, workflow_id, None)
}

/// The history of one run of `workflow_id` (`None`: the latest).
pub fn run_history_json(
    temporal: &TestTemporal,
    workflow_id: &str,
    run_id: Option<&str>,
) -> String {
    let cli = temporal
        .cli()
        .expect("the Temporal CLI is available to the tests");
    let mut args = vec![
        "workflow",
        "show",
        "--workflow-id",
        workflow_id,
        "--output",
        "json",
        "--address",
        temporal.address(),
    ];
    if let Some(run_id) = run_id {
        args.extend(["--run-id", run_id]);
    }
    let out = Command::new(cli.path())
        .args(args)
        .output()
        .expect("temporal workflow show runs");
    assert!(
        out.status.success(),
        "temporal workflow show failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 history")
}

/// Fails the test if a secret appears in the history of any of `workflow_ids`.
pub fn assert_histories_free_of(
    temporal: &TestTemporal,
    workflow_ids: &[String],
    secrets: &[&str],
) {
    for wid in workflow_ids {
        let history = history_json(temporal, wid);
        assert!(history.len() > 100, "history of {wid} looks empty");
        for secret in secrets {
            assert!(
                !history.contains(secret),
                "{secret:?} found in the history of {wid}"
            );
        }
    }
}

fn type_of(e: &IncomingError) -> String {
    match e {
        IncomingError::Application(af) => af.type_name().unwrap_or("ApplicationError").to_owned(),
        IncomingError::Activity(_) => "ActivityError".into(),
        IncomingError::Terminated(_) => "Terminated".into(),
        IncomingError::Cancelled(_) => "Cancelled".into(),
        IncomingError::Timeout(_) => "Timeout".into(),
        other => format!("{other:?}")
            .split('(')
            .next()
            .unwrap_or("?")
            .to_owned(),
    }
}

/// The failure types from the outside in: `["ActivityError", "GovernanceBlock"]`.
pub fn failure_types(error: &WorkflowGetResultError) -> Vec<String> {
    let WorkflowGetResultError::Failed(e) = error else {
        return vec![format!("{error}")];
    };
    let mut types = Vec::new();
    let mut next: Option<&IncomingError> = Some(e);
    while let Some(e) = next {
        types.push(type_of(e));
        next = e.cause();
    }
    types
}

/// The message of the innermost failure.
pub fn root_message(error: &WorkflowGetResultError) -> String {
    let WorkflowGetResultError::Failed(e) = error else {
        return error.to_string();
    };
    let mut e: &IncomingError = e;
    while let Some(c) = e.cause() {
        e = c;
    }
    e.failure().message.clone()
}
