//! lapin (AMQP 0-9-1, RabbitMQ): [`GovernedChannel`] wraps a `lapin::Channel`; its
//! [`basic_publish`](GovernedChannel::basic_publish) takes lapin's arguments and is evaluated
//! before the message is sent. The [`Acknowledgement`] it returns resolves to lapin's
//! `Confirmation` once the broker confirmed the message (with publisher confirms enabled by
//! `confirm_select`; else at once, `NotRequested`), and is evaluated at `completed` then: a
//! `Nack` is reported as the error `the broker refused the message (nack)`, a message the
//! broker returned (mandatory, unroutable) with its reply code and text.
//!
//! ```no_run
//! # async fn demo(channel: lapin::Channel) -> Result<(), Box<dyn std::error::Error>> {
//! use lapin::{BasicProperties, options::BasicPublishOptions};
//! let orders = openbox::hooks::messaging::amqp::GovernedChannel::new(channel)
//!     .server("127.0.0.1", 5672);
//! let confirmation = orders
//!     .basic_publish(
//!         "orders".into(),
//!         "orders.created".into(),
//!         BasicPublishOptions::default(),
//!         br#"{"order": 42}"#,
//!         BasicProperties::default().with_content_type("application/json".into()),
//!     )
//!     .await? // Core allowed it and lapin sent it
//!     .await?; // the broker confirmed it and Core allowed what it said
//! # let _ = confirmation; Ok(()) }
//! ```
//!
//! Only publishes are governed: declare queues, consume and acknowledge through
//! [`GovernedChannel::inner`].

use lapin::message::BasicReturnMessage;
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation};
use serde_json::{Map, Value, json};

use super::{Acknowledgement, Outgoing, PublishCall, PublishError};

/// A lapin channel whose publishes are governed.
#[derive(Debug, Clone)]
pub struct GovernedChannel {
    inner: Channel,
    server: Option<(String, u16)>,
}

impl GovernedChannel {
    /// Wraps `channel`.
    pub fn new(channel: Channel) -> Self {
        GovernedChannel {
            inner: channel,
            server: None,
        }
    }

    /// Names the broker (`server.address` / `server.port`; lapin's channel does not know it).
    pub fn server(mut self, host: impl Into<String>, port: u16) -> Self {
        self.server = Some((host.into(), port));
        self
    }

    /// The wrapped channel: everything but publishing (declare, consume, acknowledge, enable
    /// confirms). A message published through it is not governed.
    pub fn inner(&self) -> &Channel {
        &self.inner
    }

    /// `Channel::basic_publish`, governed: evaluated before the message is sent (a BLOCK: it is
    /// never sent), and again when the returned [`Acknowledgement`] is awaited.
    pub async fn basic_publish(
        &self,
        exchange: ShortString,
        routing_key: ShortString,
        options: BasicPublishOptions,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<Acknowledgement<Confirmation, lapin::Error>, PublishError<lapin::Error>> {
        let message = Outgoing {
            system: "rabbitmq",
            operation: "publish",
            module: module_path!(),
            destination: exchange.as_str(),
            routing_key: Some(routing_key.as_str()),
            headers: properties
                .headers()
                .as_ref()
                .map(headers)
                .unwrap_or_default(),
            properties: described(&properties, options),
            payload,
            server: self.server.as_ref(),
        };
        let send = self.inner.basic_publish(
            exchange.clone(),
            routing_key.clone(),
            options,
            payload,
            properties,
        );
        let (confirm, call) = super::publish_acknowledged(message, send).await?;
        Ok(Acknowledgement::new(confirm, call, judge))
    }
}

/// `completed`'s result and error for a confirmation.
fn judge(
    call: &PublishCall,
    outcome: &Result<Confirmation, lapin::Error>,
) -> (Value, Option<String>) {
    match outcome {
        Err(e) => (Value::Null, Some(e.to_string())),
        Ok(confirmation) => {
            let (word, returned) = match confirmation {
                Confirmation::Ack(returned) => ("ack", returned.as_ref()),
                Confirmation::Nack(returned) => ("nack", returned.as_ref()),
                Confirmation::NotRequested => ("not_requested", None),
            };
            let mut result = Map::new();
            result.insert("confirmation".into(), word.into());
            if let Some(returned) = returned {
                result.insert("returned".into(), returned_message(call, returned));
            }
            let error = confirmation
                .is_nack()
                .then(|| "the broker refused the message (nack)".to_owned());
            (Value::Object(result), error)
        }
    }
}

fn returned_message(call: &PublishCall, returned: &BasicReturnMessage) -> Value {
    json!({
        "reply_code": returned.reply_code,
        "reply_text": returned.reply_text.as_str(),
        "payload": call.payload(&returned.delivery.data),
    })
}

/// Header values as text (nested tables and arrays as JSON).
fn headers(table: &FieldTable) -> Vec<(String, String)> {
    table
        .inner()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value_text(value)))
        .collect()
}

fn value_text(value: &AMQPValue) -> String {
    match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::Timestamp(n) => n.to_string(),
        AMQPValue::Float(n) => n.to_string(),
        AMQPValue::Double(n) => n.to_string(),
        AMQPValue::Void => String::new(),
        AMQPValue::FieldTable(t) => {
            let map: Map<String, Value> = headers(t)
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            Value::Object(map).to_string()
        }
        AMQPValue::FieldArray(items) => Value::Array(
            items
                .as_slice()
                .iter()
                .map(|v| Value::String(value_text(v)))
                .collect(),
        )
        .to_string(),
        // Decimals and byte arrays: their own notation.
        other => format!("{other:?}"),
    }
}

/// The properties a policy may look at (never the headers: those are reported masked).
fn described(p: &BasicProperties, options: BasicPublishOptions) -> Map<String, Value> {
    let mut out = Map::new();
    let mut text = |key: &str, v: &Option<ShortString>| {
        if let Some(v) = v {
            out.insert(key.into(), v.as_str().into());
        }
    };
    text("content_type", p.content_type());
    text("content_encoding", p.content_encoding());
    text("correlation_id", p.correlation_id());
    text("reply_to", p.reply_to());
    text("expiration", p.expiration());
    text("message_id", p.message_id());
    text("type", p.kind());
    text("app_id", p.app_id());
    if let Some(mode) = p.delivery_mode() {
        out.insert("delivery_mode".into(), (*mode).into());
    }
    if let Some(priority) = p.priority() {
        out.insert("priority".into(), (*priority).into());
    }
    out.insert("mandatory".into(), options.mandatory.into());
    out.insert("immediate".into(), options.immediate.into());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_become_text() {
        let mut inner = std::collections::BTreeMap::new();
        inner.insert(
            ShortString::from("x-token"),
            AMQPValue::LongString("t-1".into()),
        );
        inner.insert(ShortString::from("retries"), AMQPValue::LongInt(3));
        let mut nested = std::collections::BTreeMap::new();
        nested.insert(ShortString::from("a"), AMQPValue::Boolean(true));
        inner.insert(
            ShortString::from("meta"),
            AMQPValue::FieldTable(FieldTable::from(nested)),
        );
        let h = headers(&FieldTable::from(inner));
        assert_eq!(
            h,
            [
                ("meta".to_owned(), r#"{"a":"true"}"#.to_owned()),
                ("retries".to_owned(), "3".to_owned()),
                ("x-token".to_owned(), "t-1".to_owned()),
            ]
        );
    }

    #[test]
    fn properties_exclude_headers() {
        let p = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        let d = described(&p, BasicPublishOptions::default());
        assert_eq!(d["content_type"], "application/json");
        assert_eq!(d["delivery_mode"], 2);
        assert!(!d.contains_key("headers"));
    }
}
