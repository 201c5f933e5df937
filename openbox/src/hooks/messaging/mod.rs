//! Governed message publishes: a message an agent publishes is evaluated by Core before it
//! leaves the process — a BLOCK at `started` means the broker never receives it — and again
//! when the broker acknowledged it (where the protocol has an acknowledgement).
//!
//! | Wrapper | Library | Governed | `completed` carries |
//! |---|---|---|---|
//! | `amqp::GovernedChannel` (feature `lapin`) | lapin | `basic_publish` | the publisher confirm (ack / nack / not requested), a returned message |
//! | `nats::GovernedNats` (feature `async-nats`) | async-nats | `publish*`, `request*` | core NATS has no acknowledgement; a request's reply |
//! | `nats::GovernedJetStream` (feature `async-nats`) | async-nats | `publish`, `publish_with_headers` | the JetStream ack (stream, sequence, duplicate) |
//! | `mqtt::GovernedMqttClient` (feature `rumqttc`) | rumqttc | `publish`, `publish_bytes` | PUBACK (QoS 1) or PUBCOMP (QoS 2), read from the event loop |
//!
//! Consuming is not governed: a message received is not evaluated.
//!
//! # What Core receives
//!
//! A `function_call` span (the hook type Core's contract has for work that is neither HTTP, a
//! database nor a file), kind `CLIENT`, `function` `MessagePublish`, `module` the wrapper's
//! module, named `publish <destination>` (`request <subject>` for a NATS request) as
//! OpenTelemetry names a send, with the attributes OpenTelemetry gives messaging:
//! `messaging.system` (`rabbitmq`, `nats`, `mqtt`), `messaging.operation.type` (`send`),
//! `messaging.operation.name`, `messaging.destination.name` (exchange, subject or topic),
//! `messaging.rabbitmq.destination.routing_key`, `messaging.message.body.size`, and
//! `server.address` / `server.port` when known.
//!
//! `args` at `started` is `{"args": [], "kwargs": {…}}` with `destination`, `routing_key` (AMQP),
//! `headers` (values under sensitive names masked), the message's `properties` (AMQP content
//! type, delivery mode, ids; MQTT QoS and retain), `payload_size`, and `payload`: the payload as
//! text, masked — JSON by key (also JSON inside strings), other text word by word as command
//! lines are (`password=…`, `Authorization: Bearer …`, URLs, credential-shaped words) — and cut
//! to 16 384 characters; a payload that is not UTF-8 is not sent (`payload` is `null`).
//! `result` at `completed` is the acknowledgement, and `error` says why the publish failed or
//! the broker refused it.
//!
//! Every publish counts as able to change something: with Core unreachable,
//! `fail_closed_destructive` stops it. A governance stop is [`PublishError::Governance`].

#[cfg(feature = "lapin")]
#[cfg_attr(docsrs, doc(cfg(feature = "lapin")))]
pub mod amqp;
#[cfg(feature = "rumqttc")]
#[cfg_attr(docsrs, doc(cfg(feature = "rumqttc")))]
pub mod mqtt;
#[cfg(feature = "async-nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "async-nats")))]
pub mod nats;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::{HookCall, HookError};
use crate::secrets::SensitiveNames;
use crate::wire::{FunctionCallSpan, HookSpan, SpanKind};

/// The `function` of a publish span.
const FUNCTION: &str = "MessagePublish";
/// Longest payload text reported, in characters (the whole size is `payload_size`).
const MAX_PAYLOAD_CHARS: usize = 16_384;
/// Longest header value reported, in characters.
const MAX_HEADER_CHARS: usize = 1_024;

/// Why a governed publish did not happen or did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError<E> {
    /// Core stopped it: at `started` the message was not sent; at `completed` it was, and the
    /// activity fails with the verdict even if this error is swallowed.
    #[error(transparent)]
    Governance(#[from] HookError),
    /// The client library or the broker failed it (not a governance decision).
    #[error(transparent)]
    Broker(E),
}

impl<E> PublishError<E> {
    /// The governance stop, if that is what this is.
    pub fn governance(&self) -> Option<&HookError> {
        match self {
            PublishError::Governance(e) => Some(e),
            PublishError::Broker(_) => None,
        }
    }
}

/// One message about to be published, as the wrappers read it from their library's call.
pub(crate) struct Outgoing<'a> {
    /// `messaging.system`.
    pub system: &'static str,
    /// `messaging.operation.name` (`publish`, `request`).
    pub operation: &'static str,
    /// The wrapper's module (`module` of the span).
    pub module: &'static str,
    /// Exchange, subject or topic.
    pub destination: &'a str,
    /// AMQP's routing key.
    pub routing_key: Option<&'a str>,
    /// Header names and values, as text.
    pub headers: Vec<(String, String)>,
    /// Message properties worth a policy's attention (content type, QoS, …).
    pub properties: Map<String, Value>,
    /// The payload.
    pub payload: &'a [u8],
    /// The broker, when known.
    pub server: Option<&'a (String, u16)>,
}

/// A governed publish: its hook call and the `args` its spans carry.
pub(crate) struct PublishCall {
    call: HookCall,
    module: &'static str,
    /// For what the broker sends back (a returned message, a reply).
    #[cfg_attr(not(any(feature = "lapin", feature = "async-nats")), allow(dead_code))]
    names: SensitiveNames,
    args: String,
}

impl PublishCall {
    /// The call for `message` in the current activity, or `None` outside a governed activity.
    pub(crate) fn begin(message: &Outgoing<'_>) -> Option<Self> {
        // AMQP's default exchange has the empty name; RabbitMQ calls it `amq.default`.
        let shown = match message.destination {
            "" => "amq.default",
            named => named,
        };
        let name = format!("{} {shown}", message.operation);
        let call = HookCall::begin(name, SpanKind::Client, None)?;
        let names = call.scope.sensitive_names().clone();
        let args = super::traced::python_json(&json!({
            "args": [],
            "kwargs": kwargs(message, &names),
        }));
        Some(PublishCall {
            call: call.with_attributes(attributes(message)),
            module: message.module,
            names,
            args,
        })
    }

    fn span(
        &self,
        args: Option<String>,
        result: Option<String>,
        error: Option<String>,
    ) -> HookSpan {
        HookSpan::FunctionCall(FunctionCallSpan {
            function: FUNCTION.to_owned(),
            module: self.module.to_owned(),
            args,
            result,
            error,
        })
    }

    /// The `started` evaluation: `Err` means the message must not be sent.
    pub(crate) async fn started(&self) -> Result<(), HookError> {
        self.call
            .started(self.span(Some(self.args.clone()), None, None))
            .await
    }

    /// The `completed` evaluation of a publish that ended with `result` (or failed: `error`).
    pub(crate) async fn completed(
        &self,
        result: Value,
        error: Option<String>,
    ) -> Result<(), HookError> {
        let result = super::traced::python_json(&result);
        self.call
            .completed(self.span(None, Some(result), error))
            .await
    }

    /// Reports the end without waiting for a verdict (an acknowledgement nobody awaited).
    pub(crate) fn completed_detached(self, result: Value) {
        let result = super::traced::python_json(&result);
        let span = self.span(None, Some(result), None);
        self.call.completed_detached(span);
    }

    /// A received payload (a request's reply) as it may reach Core.
    #[cfg(any(feature = "lapin", feature = "async-nats"))]
    pub(crate) fn payload(&self, payload: &[u8]) -> Value {
        payload_text(payload, &self.names).map_or(Value::Null, Value::String)
    }

    /// Received headers as they may reach Core.
    #[cfg(feature = "async-nats")]
    pub(crate) fn headers(&self, headers: &[(String, String)]) -> Value {
        masked_headers(headers, &self.names)
    }
}

fn attributes(message: &Outgoing<'_>) -> Map<String, Value> {
    let mut a = Map::new();
    a.insert("messaging.system".into(), message.system.into());
    a.insert("messaging.operation.type".into(), "send".into());
    a.insert("messaging.operation.name".into(), message.operation.into());
    a.insert(
        "messaging.destination.name".into(),
        message.destination.into(),
    );
    if let Some(key) = message.routing_key {
        a.insert(
            "messaging.rabbitmq.destination.routing_key".into(),
            key.into(),
        );
    }
    a.insert(
        "messaging.message.body.size".into(),
        message.payload.len().into(),
    );
    if let Some((host, port)) = message.server {
        a.insert("server.address".into(), host.clone().into());
        a.insert("server.port".into(), (*port).into());
    }
    a
}

fn kwargs(message: &Outgoing<'_>, names: &SensitiveNames) -> Value {
    let mut k = Map::new();
    k.insert("destination".into(), message.destination.into());
    if let Some(key) = message.routing_key {
        k.insert("routing_key".into(), key.into());
    }
    k.insert("headers".into(), masked_headers(&message.headers, names));
    k.insert(
        "properties".into(),
        Value::Object(message.properties.clone()),
    );
    k.insert("payload_size".into(), message.payload.len().into());
    k.insert(
        "payload".into(),
        payload_text(message.payload, names).map_or(Value::Null, Value::String),
    );
    Value::Object(k)
}

/// Headers as an object (a repeated name's values joined with `, `), each value under a
/// sensitive name masked and every value masked word by word, then cut.
fn masked_headers(headers: &[(String, String)], names: &SensitiveNames) -> Value {
    let mut out = Map::new();
    for (name, value) in headers {
        let shown = if names.is_sensitive(name) {
            crate::secrets::REDACTED.to_owned()
        } else {
            crate::text::truncate(
                &super::words::text(value, names),
                MAX_HEADER_CHARS,
                crate::text::Cut::Marked,
            )
        };
        match out.get_mut(name) {
            Some(Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(&shown);
            }
            _ => {
                out.insert(name.clone(), shown.into());
            }
        }
    }
    Value::Object(out)
}

/// The payload as text Core may see, or `None` when it is not text. JSON is masked by key
/// (also JSON inside its strings), anything else word by word; masked before it is cut, so that
/// no cut leaves a secret unrecognised.
fn payload_text(payload: &[u8], names: &SensitiveNames) -> Option<String> {
    let text = std::str::from_utf8(payload).ok()?;
    let masked = match serde_json::from_str::<Value>(text) {
        Ok(mut value) if value.is_object() || value.is_array() => {
            crate::secrets::mask_nested_json(&mut value, names);
            value.to_string()
        }
        _ => super::words::text(text, names),
    };
    Some(super::truncate_body(&masked, MAX_PAYLOAD_CHARS))
}

/// Governs a publish whose outcome is known when `send` returns: `started` first (a BLOCK:
/// `send` is never polled, nothing is sent), then `completed` with `outcome`'s description of
/// the result. Outside a governed activity, `send` alone.
#[cfg(feature = "async-nats")]
pub(crate) async fn publish<T, E: std::fmt::Display>(
    message: Outgoing<'_>,
    send: impl Future<Output = Result<T, E>>,
    outcome: impl FnOnce(&PublishCall, &T) -> Value,
) -> Result<T, PublishError<E>> {
    let Some(call) = PublishCall::begin(&message) else {
        return send.await.map_err(PublishError::Broker);
    };
    call.started().await?;
    match send.await {
        Ok(value) => {
            let result = outcome(&call, &value);
            call.completed(result, None).await?;
            Ok(value)
        }
        Err(e) => {
            call.completed(Value::Null, Some(e.to_string())).await?;
            Err(PublishError::Broker(e))
        }
    }
}

/// Governs the first half of a publish whose broker acknowledges it later: `started` (a BLOCK:
/// nothing is sent), then `send`, whose failure is reported as `completed` at once. On success,
/// the call goes on to [`Acknowledgement::new`].
pub(crate) async fn publish_acknowledged<T, E: std::fmt::Display>(
    message: Outgoing<'_>,
    send: impl Future<Output = Result<T, E>>,
) -> Result<(T, Option<PublishCall>), PublishError<E>> {
    let Some(call) = PublishCall::begin(&message) else {
        return Ok((send.await.map_err(PublishError::Broker)?, None));
    };
    call.started().await?;
    match send.await {
        Ok(value) => Ok((value, Some(call))),
        Err(e) => {
            call.completed(Value::Null, Some(e.to_string())).await?;
            Err(PublishError::Broker(e))
        }
    }
}

/// The broker's acknowledgement of a governed publish: awaiting it waits for the broker, then
/// for Core's `completed` verdict on what the broker said (a BLOCK there is
/// [`PublishError::Governance`]). Dropped unawaited, the publish is reported as sent with its
/// acknowledgement not awaited.
#[must_use = "the broker's acknowledgement is evaluated when awaited"]
pub struct Acknowledgement<T, E> {
    inner: BoxFuture<'static, Result<T, PublishError<E>>>,
}

impl<T, E> std::fmt::Debug for Acknowledgement<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acknowledgement").finish_non_exhaustive()
    }
}

/// Reports a publish whose acknowledgement was never awaited when dropped still holding it.
struct Unreported(Option<PublishCall>);

impl Drop for Unreported {
    fn drop(&mut self) {
        if let Some(call) = self.0.take() {
            call.completed_detached(json!({"acknowledgement": "not awaited"}));
        }
    }
}

impl<T: Send + 'static, E: Send + 'static> Acknowledgement<T, E> {
    /// Waits for `ack`; `judge` describes its outcome as `(result, error)` for `completed`
    /// (`error`: the broker refused the message, or the wait failed).
    pub(crate) fn new<F>(
        ack: F,
        call: Option<PublishCall>,
        judge: impl FnOnce(&PublishCall, &Result<T, E>) -> (Value, Option<String>) + Send + 'static,
    ) -> Self
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let mut pending = Unreported(call);
        Acknowledgement {
            inner: Box::pin(async move {
                let outcome = ack.await;
                if let Some(call) = pending.0.take() {
                    let (result, error) = judge(&call, &outcome);
                    call.completed(result, error).await?;
                }
                outcome.map_err(PublishError::Broker)
            }),
        }
    }
}

impl<T, E> Future for Acknowledgement<T, E> {
    type Output = Result<T, PublishError<E>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n() -> SensitiveNames {
        SensitiveNames::default()
    }

    #[test]
    fn json_payloads_are_masked_by_key_also_inside_strings() {
        let p = br#"{"order": 7, "password": "hunter2", "note": "{\"api_key\": \"k-1\"}"}"#;
        let text = payload_text(p, &n()).unwrap();
        assert!(!text.contains("hunter2") && !text.contains("k-1"), "{text}");
        assert!(text.contains("\"order\":7"), "{text}");
    }

    #[test]
    fn text_payloads_are_masked_word_by_word() {
        let text = payload_text(
            b"deploy with token=abc123 and Authorization: Bearer zzz",
            &n(),
        )
        .unwrap();
        assert_eq!(
            text,
            "deploy with token=[REDACTED] and Authorization: [REDACTED] [REDACTED]"
        );
        assert_eq!(payload_text(&[0xff, 0xfe, 0x00], &n()), None);
    }

    #[test]
    fn long_payloads_are_cut_after_masking() {
        let long = format!(
            "password={} {}",
            "s".repeat(10),
            "x".repeat(MAX_PAYLOAD_CHARS)
        );
        let text = payload_text(long.as_bytes(), &n()).unwrap();
        assert!(text.starts_with("password=[REDACTED] "), "{}", &text[..40]);
        assert!(text.ends_with("total chars]"), "cut with its marker");
    }

    #[test]
    fn sensitive_headers_are_masked_and_repeats_joined() {
        let h = |pairs: &[(&str, &str)]| {
            let v: Vec<(String, String)> = pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            masked_headers(&v, &n())
        };
        assert_eq!(
            h(&[
                ("x-api-key", "k"),
                ("trace", "a"),
                ("trace", "b"),
                ("note", "password=p")
            ]),
            json!({"x-api-key": "[REDACTED]", "trace": "a, b", "note": "password=[REDACTED]"})
        );
    }

    proptest! {
        /// A secret under a sensitive key never survives, however the JSON payload nests it
        /// (objects, arrays, JSON encoded into strings).
        #[test]
        fn no_nested_secret_survives(depth in 0usize..5, secret in "[a-z0-9]{8,16}") {
            let mut v = json!({"password": secret});
            for i in 0..depth {
                v = if i % 2 == 0 { json!({"wrapped": v.to_string()}) } else { json!([v]) };
            }
            let text = payload_text(v.to_string().as_bytes(), &n()).unwrap();
            prop_assert!(!text.contains(&secret), "{}", text);
        }
    }
}
