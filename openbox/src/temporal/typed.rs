//! Typed activity values as JSON, and the codec `#[governed_activities]` declares for each
//! activity definition.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use temporalio_sdk::workflow_interceptors::HandleSignalInput;

use super::codec::InputCodec;

/// The type name of an activity definition (a marker constant of `#[activities]`).
pub fn activity_type_name<A: temporalio_common::ActivityDefinition>(
    definition: &'static A,
) -> &'static str {
    definition.name()
}

/// The codec of all the arguments of an activity definition.
pub const fn codec_of_definition<A>(_definition: &A) -> InputCodec
where
    A: temporalio_common::ActivityDefinition,
    A::Input: Send + Sync,
{
    InputCodec::of::<A>()
}

/// Types the body is annotated with, so `?` inside an `async` block infers its error type.
pub fn annotate<T, F: Future<Output = T>>(f: F) -> F {
    f
}

/// A value as JSON (`null` if it cannot be represented).
pub fn to_json<T: GovernedValue>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Argument `index` of a redacted input, as its Rust type; the error says why it does not fit.
pub fn from_json<T: DeserializeOwned>(values: &[Value], index: usize) -> Result<T, String> {
    let value = values.get(index).cloned().unwrap_or(Value::Null);
    serde_json::from_value(value).map_err(|e| format!("argument {index}: {e}"))
}

/// Compile-time check that a governed activity argument is serde-compatible.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be governed: activity arguments and results must implement `serde::Serialize` and `serde::Deserialize`",
    label = "not serde-compatible",
    note = "OpenBox sends the arguments to Core as JSON and applies guardrail redactions to them"
)]
pub trait GovernedValue: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> GovernedValue for T {}

/// Used by the expansion to point a type error at the offending argument.
pub const fn assert_governed_value<T: GovernedValue>() {}

/// Compile-time check that a signal argument can be reported.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be reported: signal arguments must implement `serde::Serialize`",
    label = "not `Serialize`"
)]
pub trait ReportedValue: Serialize + 'static {}

impl<T: Serialize + 'static> ReportedValue for T {}

/// The JSON of a signal argument of type `T`.
pub fn signal_json<T: ReportedValue>(input: &HandleSignalInput) -> Option<Value> {
    input
        .input_ref::<T>()
        .map(|v| serde_json::to_value(v).unwrap_or(Value::Null))
}

/// Whether `payloads` decode as the input of workflow `W` (see `WorkflowDecl::input_check`).
pub fn workflow_input_check<W>(
    converter: &temporalio_common::data_converters::PayloadConverter,
    payloads: &[temporalio_common::protos::temporal::api::common::v1::Payload],
) -> Result<(), String>
where
    W: temporalio_workflow::workflows::WorkflowImplementation,
{
    use temporalio_common::data_converters::{
        GenericPayloadConverter, SerializationContext, SerializationContextData,
        WorkflowSerializationContext,
    };
    let data = SerializationContextData::Workflow(WorkflowSerializationContext::new());
    converter
        .from_payloads::<<W::Run as temporalio_common::WorkflowDefinition>::Input>(
            &SerializationContext::new(&data, converter),
            payloads.to_vec(),
        )
        .map(drop)
        .map_err(|e| e.to_string())
}
