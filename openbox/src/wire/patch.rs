//! BLOCK with patch: Core refuses the run as it is and names the input it would accept instead.
//!
//! An evaluate (or approval) answer may carry `"patch": {"new_input": <value>}`. It counts only
//! on an exact BLOCK (a HALT always ends the run) and only in the shape Core's contract allows:
//! an object whose one key is `new_input`, the value `null` (restart with the same input), a
//! string, a number, a list or an object — never a boolean — with every number finite and, when
//! integral, within JavaScript's safe range. Anything else is treated as no patch at all, so a
//! malformed patch is an ordinary BLOCK, never a restart with input nobody meant.
//!
//! Inside a Temporal worker the patch travels from where it was answered (an activity, a hook, a
//! carrier activity) to the workflow as a [`PatchRequest`]: the `details` of a non-retryable
//! `GovernancePatch` failure, in the reference's envelope.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest integer JavaScript represents exactly (2^53 − 1).
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A valid `patch` of a BLOCK answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// The input the next run starts with; `null` means the current one.
    pub new_input: Value,
}

impl Patch {
    /// Reads `patch` of an answer object; `None` when absent or not in the allowed shape.
    pub fn from_answer(answer: &Map<String, Value>) -> Option<Patch> {
        let patch = answer.get("patch")?.as_object()?;
        if patch.len() != 1 {
            return None;
        }
        let new_input = patch.get("new_input")?;
        if new_input.is_boolean() || !numbers_are_safe(new_input) {
            return None;
        }
        Some(Patch {
            new_input: new_input.clone(),
        })
    }
}

fn numbers_are_safe(value: &Value) -> bool {
    match value {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u <= MAX_SAFE_INTEGER
            } else if let Some(i) = n.as_i64() {
                i.unsigned_abs() <= MAX_SAFE_INTEGER
            } else {
                n.as_f64().is_some_and(|f| {
                    f.is_finite() && (f.fract() != 0.0 || f.abs() <= MAX_SAFE_INTEGER as f64)
                })
            }
        }
        Value::Array(items) => items.iter().all(numbers_are_safe),
        Value::Object(fields) => fields.values().all(numbers_are_safe),
        Value::Null | Value::Bool(_) | Value::String(_) => true,
    }
}

/// The only envelope version this SDK writes and reads.
pub const PATCH_SCHEMA_VERSION: u64 = 1;

/// A patch on its way from where Core answered to the workflow that restarts: the details of a
/// `GovernancePatch` failure, field for field as the reference writes them, so either SDK's
/// workflow understands the other's activities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchRequest {
    /// The event Core answered (`ActivityStarted`, `SignalReceived`, …).
    pub event_type: String,
    /// Core's id of that evaluation.
    pub governance_event_id: Option<String>,
    /// The hook stage (`started`/`completed`) when a hook evaluation was answered.
    pub hook_stage: Option<String>,
    /// Whether a hook evaluation was answered.
    pub hook_trigger: bool,
    /// The input of the next run (`null` = the current one).
    pub new_input: Value,
    /// Core's reason.
    pub reason: Option<String>,
    /// [`PATCH_SCHEMA_VERSION`].
    pub schema_version: u64,
}

impl PatchRequest {
    /// The request for `patch`, answered to `event_type`.
    pub fn new(
        patch: &Patch,
        event_type: &str,
        reason: Option<&str>,
        governance_event_id: Option<&str>,
    ) -> Self {
        PatchRequest {
            event_type: event_type.to_owned(),
            governance_event_id: governance_event_id.map(str::to_owned),
            hook_stage: None,
            hook_trigger: false,
            new_input: patch.new_input.clone(),
            reason: reason.map(str::to_owned),
            schema_version: PATCH_SCHEMA_VERSION,
        }
    }

    /// Reads an envelope back; `None` for anything but a complete version-1 envelope (the
    /// failure then counts as a plain BLOCK). `new_input` must be present, even as `null`.
    pub fn from_details(details: &Value) -> Option<Self> {
        let obj = details.as_object()?;
        if !obj.contains_key("new_input") || !obj.get("hook_trigger")?.is_boolean() {
            return None;
        }
        let request: PatchRequest = serde_json::from_value(details.clone()).ok()?;
        (request.schema_version == PATCH_SCHEMA_VERSION && !request.event_type.is_empty())
            .then_some(request)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(answer: Value) -> Option<Patch> {
        Patch::from_answer(answer.as_object().unwrap())
    }

    #[test]
    fn only_the_contract_shape_is_a_patch() {
        let ok = |v: Value| parse(json!({ "patch": { "new_input": v } }));
        assert_eq!(
            ok(json!({"text": "x"})).unwrap().new_input,
            json!({"text": "x"})
        );
        assert_eq!(ok(Value::Null).unwrap().new_input, Value::Null);
        assert!(ok(json!("s")).is_some() && ok(json!([1, 2.5])).is_some());
        assert!(ok(json!(9_007_199_254_740_991_u64)).is_some());
        assert!(ok(json!(-9_007_199_254_740_991_i64)).is_some());
        assert!(ok(json!(true)).is_none(), "a boolean is not an input");
        assert!(ok(json!(9_007_199_254_740_992_u64)).is_none());
        assert!(ok(json!({"deep": [1e300]})).is_none());
        assert!(parse(json!({})).is_none());
        assert!(parse(json!({ "patch": null })).is_none());
        assert!(
            parse(json!({ "patch": {} })).is_none(),
            "new_input is required"
        );
        assert!(parse(json!({ "patch": { "new_input": 1, "x": 2 } })).is_none());
        assert!(parse(json!({ "patch": [1] })).is_none());
    }

    #[test]
    fn the_envelope_round_trips_and_rejects_strangers() {
        let patch = Patch {
            new_input: Value::Null,
        };
        let req = PatchRequest::new(&patch, "ActivityStarted", Some("r"), Some("gev-1"));
        let details = serde_json::to_value(&req).unwrap();
        assert_eq!(
            details,
            json!({"event_type": "ActivityStarted", "governance_event_id": "gev-1",
                   "hook_stage": null, "hook_trigger": false, "new_input": null,
                   "reason": "r", "schema_version": 1})
        );
        assert_eq!(PatchRequest::from_details(&details), Some(req));
        let without = |key: &str| {
            let mut d = details.clone();
            d.as_object_mut().unwrap().remove(key);
            PatchRequest::from_details(&d)
        };
        assert!(without("new_input").is_none());
        assert!(without("hook_trigger").is_none());
        assert!(without("event_type").is_none());
        let mut v2 = details.clone();
        v2["schema_version"] = json!(2);
        assert!(PatchRequest::from_details(&v2).is_none());
        assert!(PatchRequest::from_details(&json!("GovernancePatch")).is_none());
    }
}
