//! async-nats: [`GovernedNats`] wraps an `async_nats::Client` — `publish*` and `request*` are
//! evaluated before the message is sent — and [`GovernedJetStream`] a JetStream context, whose
//! publishes return an [`Acknowledgement`] evaluated at `completed` with the stream's ack
//! (`{"stream", "sequence", "duplicate", "domain"}`).
//!
//! ```no_run
//! # async fn demo(client: async_nats::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use openbox::hooks::messaging::nats::GovernedNats;
//! let nats = GovernedNats::new(client);
//! nats.publish("events.created", "order 42".into()).await?;
//! let reply = nats.request("pricing.quote", r#"{"sku": "A1"}"#.into()).await?;
//! let ack = nats.jetstream().publish("orders.new", "order 42".into()).await?.await?;
//! # let _ = (reply, ack); Ok(()) }
//! ```
//!
//! Core NATS has no acknowledgement: a publish's `completed` says the client accepted it
//! (`{"acknowledgement": null}`). A request's `completed` carries the reply (subject, headers
//! masked, payload masked and cut). Subscribing is not governed: use [`GovernedNats::inner`].

use async_nats::jetstream::context::{PublishAckFuture, PublishError as JetStreamPublishError};
use async_nats::jetstream::publish::PublishAck;
use async_nats::{Client, HeaderMap, Message, PublishError, RequestError, Subject, ToSubject};
use std::future::IntoFuture;

use bytes::Bytes;
use serde_json::{Value, json};

use super::{Acknowledgement, Outgoing, PublishCall, PublishError as GovernedError};

/// An async-nats client whose publishes and requests are governed.
#[derive(Debug, Clone)]
pub struct GovernedNats {
    inner: Client,
    server: Option<(String, u16)>,
}

impl GovernedNats {
    /// Wraps `client` (`server.address` / `server.port` are the server's, as it announced
    /// them).
    pub fn new(client: Client) -> Self {
        let info = client.server_info();
        let server = (!info.host.is_empty()).then(|| (info.host.clone(), info.port));
        GovernedNats {
            inner: client,
            server,
        }
    }

    /// The wrapped client: subscribe, flush, drain. A message published through it is not
    /// governed.
    pub fn inner(&self) -> &Client {
        &self.inner
    }

    /// A governed JetStream context on this client (`async_nats::jetstream::new`).
    pub fn jetstream(&self) -> GovernedJetStream {
        GovernedJetStream {
            inner: async_nats::jetstream::new(self.inner.clone()),
            server: self.server.clone(),
        }
    }

    fn outgoing<'a>(
        &'a self,
        operation: &'static str,
        subject: &'a Subject,
        headers: Option<&HeaderMap>,
        payload: &'a [u8],
    ) -> Outgoing<'a> {
        Outgoing {
            system: "nats",
            operation,
            module: module_path!(),
            destination: subject.as_str(),
            routing_key: None,
            headers: headers.map(header_pairs).unwrap_or_default(),
            properties: serde_json::Map::new(),
            payload,
            server: self.server.as_ref(),
        }
    }

    /// `Client::publish`, governed.
    pub async fn publish(
        &self,
        subject: impl ToSubject,
        payload: Bytes,
    ) -> Result<(), GovernedError<PublishError>> {
        let subject = subject.to_subject();
        let message = self.outgoing("publish", &subject, None, &payload);
        let send = self.inner.publish(subject.clone(), payload.clone());
        super::publish(message, send, |_, _| sent()).await
    }

    /// `Client::publish_with_headers`, governed (header values under sensitive names masked).
    pub async fn publish_with_headers(
        &self,
        subject: impl ToSubject,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<(), GovernedError<PublishError>> {
        let subject = subject.to_subject();
        let message = self.outgoing("publish", &subject, Some(&headers), &payload);
        let send =
            self.inner
                .publish_with_headers(subject.clone(), headers.clone(), payload.clone());
        super::publish(message, send, |_, _| sent()).await
    }

    /// `Client::publish_with_reply`, governed.
    pub async fn publish_with_reply(
        &self,
        subject: impl ToSubject,
        reply: impl ToSubject,
        payload: Bytes,
    ) -> Result<(), GovernedError<PublishError>> {
        let subject = subject.to_subject();
        let mut message = self.outgoing("publish", &subject, None, &payload);
        let reply = reply.to_subject();
        message
            .properties
            .insert("reply_to".into(), reply.as_str().into());
        let send = self
            .inner
            .publish_with_reply(subject.clone(), reply.clone(), payload.clone());
        super::publish(message, send, |_, _| sent()).await
    }

    /// `Client::request`, governed: evaluated before the request is sent, and with its reply.
    pub async fn request(
        &self,
        subject: impl ToSubject,
        payload: Bytes,
    ) -> Result<Message, GovernedError<RequestError>> {
        let subject = subject.to_subject();
        let message = self.outgoing("request", &subject, None, &payload);
        let send = self.inner.request(subject.clone(), payload.clone());
        super::publish(message, send, reply).await
    }

    /// `Client::request_with_headers`, governed.
    pub async fn request_with_headers(
        &self,
        subject: impl ToSubject,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<Message, GovernedError<RequestError>> {
        let subject = subject.to_subject();
        let message = self.outgoing("request", &subject, Some(&headers), &payload);
        let send =
            self.inner
                .request_with_headers(subject.clone(), headers.clone(), payload.clone());
        super::publish(message, send, reply).await
    }
}

/// A JetStream context whose publishes are governed, from [`GovernedNats::jetstream`] or
/// [`GovernedJetStream::new`].
#[derive(Debug, Clone)]
pub struct GovernedJetStream {
    inner: async_nats::jetstream::Context,
    server: Option<(String, u16)>,
}

impl GovernedJetStream {
    /// Wraps `context` (a context made with `async_nats::jetstream::new` or its builder).
    pub fn new(context: async_nats::jetstream::Context) -> Self {
        let server = {
            let info = context.client().server_info();
            (!info.host.is_empty()).then(|| (info.host.clone(), info.port))
        };
        GovernedJetStream {
            inner: context,
            server,
        }
    }

    /// The wrapped context: streams, consumers, key-value and object stores. A message
    /// published through it is not governed.
    pub fn inner(&self) -> &async_nats::jetstream::Context {
        &self.inner
    }

    /// `Context::publish`, governed: evaluated before the message is sent; the returned
    /// [`Acknowledgement`] resolves to the stream's ack, evaluated at `completed`.
    pub async fn publish(
        &self,
        subject: impl ToSubject,
        payload: Bytes,
    ) -> Result<
        Acknowledgement<PublishAck, JetStreamPublishError>,
        GovernedError<JetStreamPublishError>,
    > {
        self.send(subject.to_subject(), None, payload).await
    }

    /// `Context::publish_with_headers`, governed.
    pub async fn publish_with_headers(
        &self,
        subject: impl ToSubject,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<
        Acknowledgement<PublishAck, JetStreamPublishError>,
        GovernedError<JetStreamPublishError>,
    > {
        self.send(subject.to_subject(), Some(headers), payload)
            .await
    }

    async fn send(
        &self,
        subject: Subject,
        headers: Option<HeaderMap>,
        payload: Bytes,
    ) -> Result<
        Acknowledgement<PublishAck, JetStreamPublishError>,
        GovernedError<JetStreamPublishError>,
    > {
        let message = Outgoing {
            system: "nats",
            operation: "publish",
            module: module_path!(),
            destination: subject.as_str(),
            routing_key: None,
            headers: headers.as_ref().map(header_pairs).unwrap_or_default(),
            properties: serde_json::Map::from_iter([("jetstream".to_owned(), true.into())]),
            payload: &payload,
            server: self.server.as_ref(),
        };
        let send = async {
            match headers.clone() {
                Some(h) => {
                    self.inner
                        .publish_with_headers(subject.clone(), h, payload.clone())
                        .await
                }
                None => self.inner.publish(subject.clone(), payload.clone()).await,
            }
        };
        let (pending, call) = super::publish_acknowledged(message, send).await?;
        Ok(Acknowledgement::new(
            PublishAckFuture::into_future(pending),
            call,
            judge_ack,
        ))
    }
}

fn judge_ack(
    _: &PublishCall,
    outcome: &Result<PublishAck, JetStreamPublishError>,
) -> (Value, Option<String>) {
    match outcome {
        Ok(ack) => (
            json!({
                "stream": ack.stream,
                "sequence": ack.sequence,
                "duplicate": ack.duplicate,
                "domain": ack.domain,
            }),
            None,
        ),
        Err(e) => (Value::Null, Some(e.to_string())),
    }
}

/// Core NATS: the client accepted the message; the protocol acknowledges nothing.
fn sent() -> Value {
    json!({"acknowledgement": null})
}

/// A request's reply, as Core may see it.
fn reply(call: &PublishCall, message: &Message) -> Value {
    let headers = message
        .headers
        .as_ref()
        .map(header_pairs)
        .unwrap_or_default();
    json!({
        "reply": {
            "subject": message.subject.as_str(),
            "headers": call.headers(&headers),
            "payload_size": message.payload.len(),
            "payload": call.payload(&message.payload),
        }
    })
}

fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = headers
        .iter()
        .flat_map(|(name, values)| {
            let name: &str = name.as_ref();
            values
                .iter()
                .map(move |v| (name.to_owned(), v.as_str().to_owned()))
        })
        .collect();
    // The map's order is random; Core sees the same message the same way every time (a
    // repeated name keeps its values' order).
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_pairs_are_sorted_and_repeated() {
        let mut h = HeaderMap::new();
        h.insert("b-name", "2");
        h.append("a-name", "1");
        h.append("a-name", "0");
        assert_eq!(
            header_pairs(&h),
            [
                ("a-name".to_owned(), "1".to_owned()),
                ("a-name".to_owned(), "0".to_owned()),
                ("b-name".to_owned(), "2".to_owned()),
            ]
        );
    }
}
