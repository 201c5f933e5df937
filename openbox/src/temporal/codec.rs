//! Activity arguments as JSON, and back (for input redaction).
//!
//! The activity interceptor receives already-decoded, typed arguments (`Box<dyn Any>`), never
//! payloads, so it needs to know the type to serialize them. In order of precedence it uses:
//! 1. the codec `#[governed_activity]` registered for the activity (link-time registry);
//! 2. a codec given with [`OpenBoxPluginBuilder::describe_activity`](super::OpenBoxPluginBuilder::describe_activity);
//! 3. common types probed by downcasting: `String`, integers, floats, `bool`, `()`,
//!    `serde_json::Value`, `Vec`/`HashMap`/`Option` of those.
//!
//! An argument of any other type is reported as `[]` (and input redaction of it fails the
//! activity rather than running it unredacted).

use std::any::Any;
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use temporalio_common::ActivityDefinition;
use temporalio_common::data_converters::{
    ActivitySerializationContext, GenericPayloadConverter, PayloadConverter, SerializationContext,
    SerializationContextData,
};
use temporalio_common::protos::temporal::api::common::v1::Payload;
use temporalio_sdk::interceptors::ExecuteActivityInput;

/// How the arguments of one activity type become JSON (one value per argument) and back.
#[derive(Clone, Copy)]
pub struct InputCodec {
    /// `true` when the arguments have this codec's type.
    pub accepts: fn(&ExecuteActivityInput) -> bool,
    /// The arguments as JSON, `None` on a type mismatch.
    pub to_json: fn(&ExecuteActivityInput) -> Option<Vec<Value>>,
    /// Replaces the arguments with these JSON values.
    pub replace: fn(&mut ExecuteActivityInput, &[Value]) -> Result<(), String>,
}

impl std::fmt::Debug for InputCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InputCodec")
    }
}

fn context_data() -> SerializationContextData {
    SerializationContextData::Activity(ActivitySerializationContext::new())
}

/// One payload as JSON: `null` for an empty payload, a placeholder for one that is not JSON.
pub(crate) fn payload_to_json(p: &Payload) -> Value {
    match p.metadata.get("encoding").map(Vec::as_slice) {
        Some(b"json/plain") => serde_json::from_slice(&p.data).unwrap_or(Value::Null),
        Some(b"binary/null") | None => Value::Null,
        Some(other) => Value::String(format!("<{} payload>", String::from_utf8_lossy(other))),
    }
}

/// A JSON payload of `v`, as the default payload converter writes it.
pub(crate) fn json_payload(v: &Value) -> Payload {
    Payload {
        metadata: HashMap::from([("encoding".to_owned(), b"json/plain".to_vec())]),
        data: serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec()),
        external_payloads: vec![],
    }
}

fn accepts_def<A: ActivityDefinition>(input: &ExecuteActivityInput) -> bool {
    input.args_ref::<A::Input>().is_some()
}

fn to_json_def<A: ActivityDefinition>(input: &ExecuteActivityInput) -> Option<Vec<Value>> {
    let args = input.args_ref::<A::Input>()?;
    let pc = PayloadConverter::default();
    let data = context_data();
    let payloads = pc
        .to_payloads(&SerializationContext::new(&data, &pc), args)
        .ok()?;
    Some(payloads.iter().map(payload_to_json).collect())
}

fn replace_def<A: ActivityDefinition>(
    input: &mut ExecuteActivityInput,
    values: &[Value],
) -> Result<(), String>
where
    A::Input: Send + Sync,
{
    let pc = PayloadConverter::default();
    let data = context_data();
    let payloads = values.iter().map(json_payload).collect();
    let typed: A::Input = pc
        .from_payloads(&SerializationContext::new(&data, &pc), payloads)
        .map_err(|e| e.to_string())?;
    let slot = input
        .args_mut::<A::Input>()
        .ok_or("the arguments changed type")?;
    *slot = typed;
    Ok(())
}

impl InputCodec {
    /// The codec of activity definition `A` (its input type), through the default JSON payload
    /// converter.
    pub const fn of<A>() -> Self
    where
        A: ActivityDefinition,
        A::Input: Send + Sync,
    {
        InputCodec {
            accepts: accepts_def::<A>,
            to_json: to_json_def::<A>,
            replace: replace_def::<A>,
        }
    }

    /// The codec of a single serde argument of type `T`.
    pub fn single<T>() -> Self
    where
        T: Serialize + DeserializeOwned + Any + Send + Sync,
    {
        InputCodec {
            accepts: accepts_single::<T>,
            to_json: to_json_single::<T>,
            replace: replace_single::<T>,
        }
    }
}

fn accepts_single<T: Any>(input: &ExecuteActivityInput) -> bool {
    input.args_ref::<T>().is_some()
}

fn to_json_single<T: Serialize + Any>(input: &ExecuteActivityInput) -> Option<Vec<Value>> {
    input
        .args_ref::<T>()
        .map(|v| vec![serde_json::to_value(v).unwrap_or(Value::Null)])
}

fn replace_single<T: DeserializeOwned + Any>(
    input: &mut ExecuteActivityInput,
    values: &[Value],
) -> Result<(), String> {
    let value = values.first().cloned().unwrap_or(Value::Null);
    let typed: T = serde_json::from_value(value).map_err(|e| e.to_string())?;
    *input.args_mut::<T>().ok_or("the arguments changed type")? = typed;
    Ok(())
}

fn accepts_unit(input: &ExecuteActivityInput) -> bool {
    input.args_ref::<()>().is_some()
}

fn to_json_unit(input: &ExecuteActivityInput) -> Option<Vec<Value>> {
    input.args_ref::<()>().map(|_| Vec::new())
}

fn replace_unit(_: &mut ExecuteActivityInput, _: &[Value]) -> Result<(), String> {
    Ok(())
}

macro_rules! probes {
    ($($t:ty),* $(,)?) => {
        [
            InputCodec { accepts: accepts_unit, to_json: to_json_unit, replace: replace_unit },
            $(InputCodec::single::<$t>(),)*
        ]
    };
}

/// Codecs for types common enough to find by downcasting.
fn probes() -> &'static [InputCodec] {
    static PROBES: std::sync::OnceLock<Vec<InputCodec>> = std::sync::OnceLock::new();
    PROBES.get_or_init(|| {
        probes![
            String, bool, i64, i32, u64, u32, i16, u16, i8, u8, f64, f32, Value,
            Option<String>, Vec<String>, Vec<i64>, Vec<u64>, Vec<f64>, Vec<Value>,
            HashMap<String, String>, HashMap<String, Value>, BTreeMap<String, String>, BTreeMap<String, Value>,
        ]
        .to_vec()
    })
}

/// The codec of a common type, found by downcasting.
pub(crate) fn probe(input: &ExecuteActivityInput) -> Option<InputCodec> {
    probes().iter().find(|c| (c.accepts)(input)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_json() {
        assert_eq!(
            payload_to_json(&json_payload(&json!({"a": [1, "x"]}))),
            json!({"a": [1, "x"]})
        );
        let null = Payload {
            metadata: HashMap::from([("encoding".into(), b"binary/null".to_vec())]),
            ..Default::default()
        };
        assert_eq!(payload_to_json(&null), Value::Null);
        let proto = Payload {
            metadata: HashMap::from([("encoding".into(), b"binary/protobuf".to_vec())]),
            ..Default::default()
        };
        assert_eq!(payload_to_json(&proto), json!("<binary/protobuf payload>"));
    }
}
