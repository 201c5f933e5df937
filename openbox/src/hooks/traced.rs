//! What `#[traced]` expands to: a `function_call` hook around a function body.

use std::fmt::{Debug, Display};

use serde::Serialize;
use serde_json::Value;

use super::{HookCall, HookError};
use crate::wire::{FunctionCallSpan, HookSpan, SpanKind};

/// One `#[traced]` function, as declared.
#[derive(Debug)]
pub struct TracedSpec {
    /// The reported function name.
    pub name: &'static str,
    /// `module_path!()` of the function.
    pub module: &'static str,
    /// Report the arguments at `started`.
    pub capture_args: bool,
    /// Report the result at `completed`.
    pub capture_result: bool,
    /// Longest `args` / `result` text, in characters.
    pub max_arg_length: usize,
}

/// A traced call inside a governed activity.
pub struct TracedCall {
    call: HookCall,
    spec: &'static TracedSpec,
}

fn cut(text: String, max: usize) -> String {
    crate::text::truncate(&text, max, crate::text::Cut::Marked)
}

/// JSON text with the separators of Python's `json.dumps` (`", "` and `": "`), as the
/// reference sends `args`.
pub(crate) fn python_json(value: &Value) -> String {
    struct PySeparators;
    impl serde_json::ser::Formatter for PySeparators {
        fn begin_array_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first { Ok(()) } else { w.write_all(b", ") }
        }
        fn begin_object_key<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first { Ok(()) } else { w.write_all(b", ") }
        }
        fn begin_object_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
        ) -> std::io::Result<()> {
            w.write_all(b": ")
        }
    }
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PySeparators);
    match value.serialize(&mut ser) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => "null".to_owned(),
    }
}

/// `str(result)` as the reference reports it: strings as they are, scalars printed, `null` for
/// none, JSON text for lists and objects.
fn result_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_owned(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        _ => python_json(value),
    }
}

impl TracedCall {
    /// The call, or `None` outside a governed activity (then nothing is evaluated).
    pub fn begin(spec: &'static TracedSpec, span: &tracing::Span) -> Option<TracedCall> {
        let call = HookCall::begin(spec.name, SpanKind::Internal, Some(span))?;
        let mut attributes = serde_json::Map::new();
        attributes.insert("code.function".into(), spec.name.into());
        attributes.insert("code.namespace".into(), spec.module.into());
        Some(TracedCall {
            call: call.with_attributes(attributes),
            spec,
        })
    }

    fn detail(
        &self,
        args: Option<String>,
        result: Option<String>,
        error: Option<String>,
    ) -> HookSpan {
        HookSpan::FunctionCall(FunctionCallSpan {
            function: self.spec.name.to_owned(),
            module: self.spec.module.to_owned(),
            args,
            result,
            error,
        })
    }

    fn args_text(&self, args: impl FnOnce() -> Vec<Value>) -> Option<String> {
        self.spec.capture_args.then(|| {
            let mut doc = serde_json::Map::new();
            doc.insert("args".into(), Value::Array(args()));
            doc.insert("kwargs".into(), Value::Object(serde_json::Map::new()));
            cut(python_json(&Value::Object(doc)), self.spec.max_arg_length)
        })
    }

    fn outcome(
        &self,
        result: Option<Value>,
        error: Option<String>,
    ) -> (Option<String>, Option<String>) {
        let result = result
            .filter(|_| self.spec.capture_result)
            .map(|v| cut(result_text(&v), self.spec.max_arg_length));
        (result, error)
    }

    /// `started`; `args` is only called when arguments are captured.
    pub async fn started(&self, args: impl FnOnce() -> Vec<Value>) -> Result<(), HookError> {
        let detail = self.detail(self.args_text(args), None, None);
        self.call.started(detail).await
    }

    /// [`TracedCall::started`] for a sync function.
    pub fn started_blocking(&self, args: impl FnOnce() -> Vec<Value>) -> Result<(), HookError> {
        let detail = self.detail(self.args_text(args), None, None);
        self.call.started_blocking(detail)
    }

    /// `completed` with the result (when captured) or the error.
    pub async fn completed(
        self,
        result: Option<Value>,
        error: Option<String>,
    ) -> Result<(), HookError> {
        let (result, error) = self.outcome(result, error);
        self.call.completed(self.detail(None, result, error)).await
    }

    /// [`TracedCall::completed`] for a sync function.
    pub fn completed_blocking(
        self,
        result: Option<Value>,
        error: Option<String>,
    ) -> Result<(), HookError> {
        let (result, error) = self.outcome(result, error);
        self.call
            .completed_blocking(self.detail(None, result, error))
    }
}

/// Wraps a reference for the capture methods below: `Serialize` values become JSON, other
/// `Debug` values their debug text.
pub struct Capture<'a, T: ?Sized>(pub &'a T);

/// Capture of a `Serialize` value (preferred).
pub trait CaptureSerialize {
    /// The value as JSON.
    fn capture_serialize_or_debug(&self) -> Value;
}

impl<T: Serialize + ?Sized> CaptureSerialize for Capture<'_, T> {
    fn capture_serialize_or_debug(&self) -> Value {
        serde_json::to_value(self.0).unwrap_or(Value::Null)
    }
}

/// Capture of a `Debug` value (when it is not `Serialize`).
pub trait CaptureDebug {
    /// The value's debug text.
    fn capture_serialize_or_debug(&self) -> Value;
}

impl<T: Debug + ?Sized> CaptureDebug for &Capture<'_, T> {
    fn capture_serialize_or_debug(&self) -> Value {
        Value::String(format!("{:?}", self.0))
    }
}

/// Wraps an error for the text methods below: `Display` preferred, `Debug` otherwise.
pub struct ErrorText<'a, T: ?Sized>(pub &'a T);

/// Error text through `Display`.
pub trait ErrorTextDisplay {
    /// The error's text.
    fn openbox_error_text(&self) -> String;
}

impl<T: Display + ?Sized> ErrorTextDisplay for ErrorText<'_, T> {
    fn openbox_error_text(&self) -> String {
        self.0.to_string()
    }
}

/// Error text through `Debug`.
pub trait ErrorTextDebug {
    /// The error's debug text.
    fn openbox_error_text(&self) -> String;
}

impl<T: Debug + ?Sized> ErrorTextDebug for &ErrorText<'_, T> {
    fn openbox_error_text(&self) -> String {
        format!("{:?}", self.0)
    }
}

/// Converts a governance stop into the traced function's error type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot carry a governance stop from #[traced]",
    label = "the error type of this #[traced] function",
    note = "implement `From<openbox::hooks::HookError>` for it (anyhow::Error, Box<dyn Error>, io::Error and ActivityError already convert)"
)]
pub trait FromHookError: From<HookError> {}

impl<E: From<HookError>> FromHookError for E {}

/// `Err` for a stopped call of a function returning `Result<_, E>`.
pub fn stopped<E: FromHookError>(e: HookError) -> E {
    E::from(e)
}

/// A stopped call of a function that cannot return an error: it must not return normally.
/// The activity fails with the verdict (recorded before this panic).
pub fn stopped_panic(e: HookError) -> ! {
    panic!("{e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_style_args_and_results() {
        assert_eq!(
            python_json(&json!({"args": ["a", 1], "kwargs": {}})),
            r#"{"args": ["a", 1], "kwargs": {}}"#
        );
        assert_eq!(result_text(&json!("x")), "x");
        assert_eq!(result_text(&json!(273)), "273");
        assert_eq!(result_text(&Value::Null), "null");
        assert_eq!(result_text(&json!([1, 2])), "[1, 2]");
        assert_eq!(cut("abcdef".into(), 3), "abc...[truncated]");
    }

    #[test]
    // The borrows select the fallback trait (autoref specialization): they are not needless.
    #[allow(clippy::needless_borrow)]
    fn capture_prefers_serialize_then_debug() {
        #[derive(Debug)]
        struct OnlyDebug(#[allow(dead_code)] u8);
        #[allow(unused_imports)]
        use super::{CaptureDebug as _, CaptureSerialize as _};
        assert_eq!((&Capture(&"s")).capture_serialize_or_debug(), json!("s"));
        assert_eq!(
            (&Capture(&OnlyDebug(3))).capture_serialize_or_debug(),
            json!("OnlyDebug(3)")
        );
        let e = std::io::Error::other("boom");
        #[allow(unused_imports)]
        use super::{ErrorTextDebug as _, ErrorTextDisplay as _};
        assert_eq!((&ErrorText(&e)).openbox_error_text(), "boom");
    }
}
