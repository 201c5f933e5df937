//! Signal arguments as JSON for SignalReceived.
//!
//! Like activity arguments, a signal's input reaches the interceptor typed. The codec comes
//! from `#[governed_workflow]` when the workflow has it, else common types are probed.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;
use temporalio_sdk::workflow_interceptors::HandleSignalInput;

use super::registry::WorkflowDecl;

fn probe<T: Serialize + 'static>(input: &HandleSignalInput) -> Option<Value> {
    input
        .input_ref::<T>()
        .map(|v| serde_json::to_value(v).unwrap_or(Value::Null))
}

const PROBES: &[fn(&HandleSignalInput) -> Option<Value>] = &[
    probe::<String>,
    probe::<bool>,
    probe::<i64>,
    probe::<i32>,
    probe::<u64>,
    probe::<u32>,
    probe::<f64>,
    probe::<Value>,
    probe::<Option<String>>,
    probe::<Vec<String>>,
    probe::<Vec<Value>>,
    probe::<HashMap<String, String>>,
    probe::<HashMap<String, Value>>,
    probe::<BTreeMap<String, Value>>,
];

/// `signal_args`: `[]` for a signal without input, `[value]` otherwise; `[]` as well when the
/// type is unknown (annotate the workflow with `#[governed_workflow]` to report it).
pub(crate) fn signal_args(decl: Option<&WorkflowDecl>, input: &HandleSignalInput) -> Vec<Value> {
    if input.input_ref::<()>().is_some() {
        return Vec::new();
    }
    let declared = decl
        .and_then(|d| d.signals.iter().find(|s| s.name == input.name()))
        .and_then(|s| (s.to_json)(input));
    match declared.or_else(|| PROBES.iter().find_map(|p| p(input))) {
        Some(v) => vec![v],
        None => {
            tracing::debug!(
                signal = input.name(),
                "signal argument of an unknown type is not reported"
            );
            Vec::new()
        }
    }
}
