//! Typed activity values as JSON, and the codecs `#[governed_activity]` and
//! `#[governed_activities]` generate for an activity's arguments (0 to 6, matching the `Input`
//! type `#[activities]` derives, or any activity definition).

use std::any::Any;
use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use temporalio_sdk::interceptors::ExecuteActivityInput;
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

// ---- input codecs for 0..=6 arguments, matching the `Input` type `#[activities]` derives ----

fn accepts<T: Any>(input: &ExecuteActivityInput) -> bool {
    input.args_ref::<T>().is_some()
}

fn no_args_json(input: &ExecuteActivityInput) -> Option<Vec<Value>> {
    input.args_ref::<()>().map(|_| Vec::new())
}

fn no_args_replace(_: &mut ExecuteActivityInput, _: &[Value]) -> Result<(), String> {
    Ok(())
}

/// The codec of an activity without arguments.
pub const fn codec0() -> InputCodec {
    InputCodec {
        accepts: accepts::<()>,
        to_json: no_args_json,
        replace: no_args_replace,
    }
}

fn one_json<A: GovernedValue>(input: &ExecuteActivityInput) -> Option<Vec<Value>> {
    input.args_ref::<A>().map(|a| vec![to_json(a)])
}

fn one_replace<A: GovernedValue>(
    input: &mut ExecuteActivityInput,
    values: &[Value],
) -> Result<(), String> {
    let typed: A = serde_json::from_value(values.first().cloned().unwrap_or(Value::Null))
        .map_err(|e| e.to_string())?;
    *input.args_mut::<A>().ok_or("the arguments changed type")? = typed;
    Ok(())
}

/// The codec of an activity with one argument.
pub const fn codec1<A: GovernedValue + Sync>() -> InputCodec {
    InputCodec {
        accepts: accepts::<A>,
        to_json: one_json::<A>,
        replace: one_replace::<A>,
    }
}

macro_rules! multi_codec {
    ($fname:ident, $multi:ident, $json:ident, $replace:ident; $($idx:tt : $t:ident),+) => {
        fn $json<$($t: GovernedValue),+>(input: &ExecuteActivityInput) -> Option<Vec<Value>> {
            use temporalio_common::data_converters::$multi;
            input.args_ref::<$multi<$($t),+>>().map(|m| vec![$(to_json(&m.$idx)),+])
        }

        fn $replace<$($t: GovernedValue),+>(input: &mut ExecuteActivityInput, values: &[Value]) -> Result<(), String> {
            use temporalio_common::data_converters::$multi;
            let typed = $multi($(
                serde_json::from_value::<$t>(values.get($idx).cloned().unwrap_or(Value::Null))
                    .map_err(|e| format!("argument {}: {e}", $idx))?
            ),+);
            *input.args_mut::<$multi<$($t),+>>().ok_or("the arguments changed type")? = typed;
            Ok(())
        }

        /// The codec of an activity with this many arguments.
        pub const fn $fname<$($t: GovernedValue + Sync),+>() -> InputCodec {
            use temporalio_common::data_converters::$multi;
            InputCodec { accepts: accepts::<$multi<$($t),+>>, to_json: $json::<$($t),+>, replace: $replace::<$($t),+> }
        }
    };
}

multi_codec!(codec2, MultiArgs2, json2, replace2; 0: A, 1: B);
multi_codec!(codec3, MultiArgs3, json3, replace3; 0: A, 1: B, 2: C);
multi_codec!(codec4, MultiArgs4, json4, replace4; 0: A, 1: B, 2: C, 3: D);
multi_codec!(codec5, MultiArgs5, json5, replace5; 0: A, 1: B, 2: C, 3: D, 4: E);
multi_codec!(codec6, MultiArgs6, json6, replace6; 0: A, 1: B, 2: C, 3: D, 4: E, 5: F);
