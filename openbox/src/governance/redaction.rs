//! Applying a guardrails `redacted_input` to an activity's input or output; the activity runs with the redacted input, as Core decided.
//!
//! Objects are deep-merged (the redacted keys replace the original ones, other keys stay),
//! anything else is replaced. For the input, an object applies to the first argument and an
//! array applies element by element to the positional arguments; `null` leaves a value as is.
//! An input redaction of any other shape cannot be applied, and the activity must not run with
//! the input Core asked to redact: that is an error, never a warning.

use serde_json::{Map, Value};

/// A `redacted_input` that cannot be applied to the activity's input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "guardrails redacted_input is {found}; an activity input redaction must be an object (for the first argument) or a list (one entry per argument)"
)]
pub struct UnusableRedaction {
    /// What Core sent instead: `a string`, `a number`, `a boolean`.
    pub found: &'static str,
}

/// The input after redaction: `Ok(None)` when `redacted` is `null` (nothing to replace).
pub fn redact_input(
    input: &[Value],
    redacted: &Value,
) -> Result<Option<Vec<Value>>, UnusableRedaction> {
    let patches: Vec<&Value> = match redacted {
        Value::Null => return Ok(None),
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![redacted],
        Value::String(_) => return Err(UnusableRedaction { found: "a string" }),
        Value::Number(_) => return Err(UnusableRedaction { found: "a number" }),
        Value::Bool(_) => return Err(UnusableRedaction { found: "a boolean" }),
    };
    let mut out = input.to_vec();
    for (slot, patch) in out.iter_mut().zip(patches) {
        *slot = apply(slot, patch);
    }
    Ok(Some(out))
}

/// The output after redaction.
pub fn redact_output(output: &Value, redacted: &Value) -> Value {
    apply(output, redacted)
}

fn apply(original: &Value, patch: &Value) -> Value {
    match (original, patch) {
        (_, Value::Null) => original.clone(),
        (Value::Object(o), Value::Object(p)) => Value::Object(merge(o, p)),
        _ => patch.clone(),
    }
}

fn merge(original: &Map<String, Value>, patch: &Map<String, Value>) -> Map<String, Value> {
    let mut out = original.clone();
    for (key, value) in patch {
        let merged = match (out.get(key), value) {
            (Some(Value::Object(o)), Value::Object(p)) => Value::Object(merge(o, p)),
            _ => value.clone(),
        };
        out.insert(key.clone(), merged);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn object_patches_the_first_argument() {
        let input = [
            json!({"prompt": "my ssn is 123", "user": "u1", "meta": {"a": 1, "b": 2}}),
            json!(7),
        ];
        let out = redact_input(&input, &json!({"prompt": "[REDACTED]", "meta": {"b": 0}}))
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            [
                json!({"prompt": "[REDACTED]", "user": "u1", "meta": {"a": 1, "b": 0}}),
                json!(7)
            ]
        );
    }

    #[test]
    fn list_patches_positionally_and_replaces_scalars() {
        let input = [json!("secret"), json!({"k": 1}), json!(3)];
        let out = redact_input(&input, &json!(["[REDACTED]", null, 4, "extra"]))
            .unwrap()
            .unwrap();
        assert_eq!(out, [json!("[REDACTED]"), json!({"k": 1}), json!(4)]);
        assert_eq!(redact_input(&input, &Value::Null), Ok(None));
        for (bad, found) in [
            (json!("x"), "a string"),
            (json!(3), "a number"),
            (json!(true), "a boolean"),
        ] {
            let e = redact_input(&input, &bad).unwrap_err();
            assert_eq!(e.found, found);
            assert!(e.to_string().contains(found));
        }
    }

    proptest::proptest! {
        /// A redaction that names a key replaces its value, at any depth, and keeps the rest.
        #[test]
        fn redacted_keys_never_keep_their_value(
            key in "[a-z]{1,8}",
            other in "[a-z]{1,8}",
            secret in "SECRET[A-Za-z0-9]{4,10}",
            depth in 0..4usize,
        ) {
            proptest::prop_assume!(key != other);
            let mut original = json!({ key.clone(): secret.clone(), other.clone(): "kept" });
            let mut patch = json!({ key.clone(): "[REDACTED]" });
            for _ in 0..depth {
                original = json!({ "n": original });
                patch = json!({ "n": patch });
            }
            let out = redact_input(&[original.clone()], &patch).unwrap().unwrap();
            let text = out[0].to_string();
            proptest::prop_assert!(!text.contains(&secret), "{}", text);
            proptest::prop_assert!(text.contains("kept"));
            let out = redact_output(&original, &patch).to_string();
            proptest::prop_assert!(!out.contains(&secret));
        }
    }

    #[test]
    fn output() {
        assert_eq!(
            redact_output(&json!({"a": 1, "b": 2}), &json!({"b": "[REDACTED]"})),
            json!({"a": 1, "b": "[REDACTED]"})
        );
        assert_eq!(
            redact_output(&json!("saw:my ssn is 123"), &json!("saw:[REDACTED]")),
            json!("saw:[REDACTED]")
        );
        assert_eq!(
            redact_output(&json!([1]), &json!({"x": 1})),
            json!({"x": 1})
        );
    }
}
