//! rumqttc (MQTT 3.1.1): [`GovernedMqttClient`] and [`GovernedEventLoop`] replace
//! `rumqttc::AsyncClient` and `EventLoop`. A publish is evaluated before it is handed to the
//! event loop (a BLOCK: the broker never receives it); the [`Acknowledgement`] it returns
//! resolves when the broker acknowledged the message — PUBACK for QoS 1, PUBCOMP for QoS 2, or,
//! for QoS 0 (which the protocol never acknowledges), when the event loop wrote it — and is
//! evaluated at `completed` then. A topic `AsyncClient::publish` would refuse (one holding a
//! wildcard, `+` or `#`) is refused the same way, before Core or the broker sees it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use openbox::hooks::messaging::mqtt::GovernedMqttClient;
//! use rumqttc::{MqttOptions, QoS};
//! let options = MqttOptions::new("agent-7", "127.0.0.1", 1883);
//! let (client, mut events) = GovernedMqttClient::new(options, 16);
//! tokio::spawn(async move { while events.poll().await.is_ok() {} });
//! let acked = client
//!     .publish("plant/valve/3", QoS::AtLeastOnce, false, "close")
//!     .await? // Core allowed it and the event loop has it
//!     .await?; // the broker's PUBACK, and Core allowed it
//! # let _ = acked; Ok(()) }
//! ```
//!
//! Acknowledgements are matched to publishes by watching the event loop, so every publish on
//! the connection must go through the governed client (clones of it share the matching) and
//! the event loop must be polled through [`GovernedEventLoop::poll`]. The governed client has no
//! way to reach the `AsyncClient` it wraps; subscribe and acknowledge through its own methods.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rumqttc::{
    AsyncClient, ClientError, ConnectionError, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS,
};
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;

use super::{Acknowledgement, Outgoing as Message, PublishCall, PublishError};

/// How the broker acknowledged a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Acked {
    /// QoS 0: the event loop wrote it; MQTT acknowledges nothing at this level.
    Sent,
    /// QoS 1: the broker's PUBACK for this packet id.
    PubAck(u16),
    /// QoS 2: the broker's PUBCOMP for this packet id.
    PubComp(u16),
}

/// The event loop stopped (it was dropped) before the broker acknowledged the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the MQTT event loop stopped before the broker acknowledged the message")]
pub struct AckLost;

/// Publishes waiting for their acknowledgement, in the order the event loop takes them.
#[derive(Default)]
struct Pending {
    /// Handed to the event loop, not yet written: (ticket, who waits).
    queued: VecDeque<(u64, oneshot::Sender<Acked>)>,
    /// Written with a packet id, not yet acknowledged.
    inflight: HashMap<u16, oneshot::Sender<Acked>>,
    next_ticket: u64,
}

impl Pending {
    fn observe(&mut self, event: &Event) {
        match event {
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                // A packet id already in flight is a retransmission (after a reconnect).
                if *pkid != 0 && self.inflight.contains_key(pkid) {
                    return;
                }
                let Some((_, waiter)) = self.queued.pop_front() else {
                    return;
                };
                if *pkid == 0 {
                    let _ = waiter.send(Acked::Sent);
                } else {
                    self.inflight.insert(*pkid, waiter);
                }
            }
            Event::Incoming(Packet::PubAck(ack)) => self.acked(ack.pkid, Acked::PubAck(ack.pkid)),
            Event::Incoming(Packet::PubComp(comp)) => {
                self.acked(comp.pkid, Acked::PubComp(comp.pkid))
            }
            _ => {}
        }
    }

    fn acked(&mut self, pkid: u16, how: Acked) {
        if let Some(waiter) = self.inflight.remove(&pkid) {
            let _ = waiter.send(how);
        }
    }
}

/// What the client and its event loop share.
#[derive(Default)]
struct Tracker {
    /// Held while a publish is queued and handed over, so that the queue's order is the event
    /// loop's.
    order: tokio::sync::Mutex<()>,
    pending: Mutex<Pending>,
}

impl Tracker {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A panic while holding it leaves plain data behind.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `rumqttc::AsyncClient`, its publishes governed. Cheap to clone.
#[derive(Clone)]
pub struct GovernedMqttClient {
    inner: AsyncClient,
    tracker: Arc<Tracker>,
    server: (String, u16),
}

impl std::fmt::Debug for GovernedMqttClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernedMqttClient")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// `rumqttc::EventLoop`, watched for the acknowledgements of governed publishes.
pub struct GovernedEventLoop {
    inner: EventLoop,
    tracker: Arc<Tracker>,
}

impl std::fmt::Debug for GovernedEventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernedEventLoop").finish_non_exhaustive()
    }
}

impl GovernedMqttClient {
    /// `AsyncClient::new`, governed: a client and the event loop to poll.
    pub fn new(options: MqttOptions, cap: usize) -> (GovernedMqttClient, GovernedEventLoop) {
        let (client, events) = AsyncClient::new(options, cap);
        Self::wrap(client, events)
    }

    /// Governs a client and its event loop made by `AsyncClient::new`. Publishes made through
    /// another clone of `client` are not governed, and confuse the matching of
    /// acknowledgements: keep none.
    pub fn wrap(client: AsyncClient, events: EventLoop) -> (GovernedMqttClient, GovernedEventLoop) {
        let tracker = Arc::new(Tracker::default());
        let server = events.mqtt_options.broker_address();
        (
            GovernedMqttClient {
                inner: client,
                tracker: tracker.clone(),
                server,
            },
            GovernedEventLoop {
                inner: events,
                tracker,
            },
        )
    }

    /// `AsyncClient::publish`, governed.
    pub async fn publish(
        &self,
        topic: impl Into<String>,
        qos: QoS,
        retain: bool,
        payload: impl Into<Vec<u8>>,
    ) -> Result<Acknowledgement<Acked, AckLost>, PublishError<ClientError>> {
        self.send(topic.into(), qos, retain, Bytes::from(payload.into()))
            .await
    }

    /// `AsyncClient::publish_bytes`, governed.
    pub async fn publish_bytes(
        &self,
        topic: impl Into<String>,
        qos: QoS,
        retain: bool,
        payload: Bytes,
    ) -> Result<Acknowledgement<Acked, AckLost>, PublishError<ClientError>> {
        self.send(topic.into(), qos, retain, payload).await
    }

    async fn send(
        &self,
        topic: String,
        qos: QoS,
        retain: bool,
        payload: Bytes,
    ) -> Result<Acknowledgement<Acked, AckLost>, PublishError<ClientError>> {
        // `AsyncClient::publish` refuses a topic name with a wildcard (`+`, `#`), but
        // `publish_bytes`, which this hands every publish to, sends it, and the broker drops the
        // connection. Refused here as `publish` would, before Core or the broker sees it.
        if !rumqttc::valid_topic(&topic) {
            let mut publish = rumqttc::Publish::from_bytes(topic, qos, payload);
            publish.retain = retain;
            let request = rumqttc::Request::Publish(publish);
            return Err(PublishError::Broker(ClientError::Request(request)));
        }
        let mut properties = Map::new();
        properties.insert("qos".into(), (qos as u8).into());
        properties.insert("retain".into(), retain.into());
        let message = Message {
            system: "mqtt",
            operation: "publish",
            module: module_path!(),
            destination: &topic,
            routing_key: None,
            headers: Vec::new(),
            properties,
            payload: &payload,
            server: Some(&self.server),
        };
        let (waiter, acked) = oneshot::channel();
        let send = self.hand_over(&topic, qos, retain, payload.clone(), waiter);
        let ((), call) = super::publish_acknowledged(message, send).await?;
        let ack = async move { acked.await.map_err(|_| AckLost) };
        Ok(Acknowledgement::new(ack, call, judge))
    }

    /// Queues the publish's waiter and hands the publish to the event loop, in one order.
    async fn hand_over(
        &self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: Bytes,
        waiter: oneshot::Sender<Acked>,
    ) -> Result<(), ClientError> {
        let _order = self.tracker.order.lock().await;
        let ticket = {
            let mut pending = self.tracker.pending();
            let ticket = pending.next_ticket;
            pending.next_ticket += 1;
            pending.queued.push_back((ticket, waiter));
            ticket
        };
        let sent = self.inner.publish_bytes(topic, qos, retain, payload).await;
        if sent.is_err() {
            self.tracker.pending().queued.retain(|(t, _)| *t != ticket);
        }
        sent
    }

    /// `AsyncClient::subscribe` (not governed).
    pub async fn subscribe(&self, topic: impl Into<String>, qos: QoS) -> Result<(), ClientError> {
        self.inner.subscribe(topic, qos).await
    }

    /// `AsyncClient::unsubscribe` (not governed).
    pub async fn unsubscribe(&self, topic: impl Into<String>) -> Result<(), ClientError> {
        self.inner.unsubscribe(topic).await
    }

    /// `AsyncClient::ack` for a received message (not governed).
    pub async fn ack(&self, publish: &rumqttc::Publish) -> Result<(), ClientError> {
        self.inner.ack(publish).await
    }

    /// `AsyncClient::disconnect`.
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        self.inner.disconnect().await
    }
}

impl GovernedEventLoop {
    /// `EventLoop::poll`: the next event, after noting the acknowledgements it carries.
    pub async fn poll(&mut self) -> Result<Event, ConnectionError> {
        let event = self.inner.poll().await?;
        self.tracker.pending().observe(&event);
        Ok(event)
    }

    /// The connection's options.
    pub fn options(&self) -> &MqttOptions {
        &self.inner.mqtt_options
    }
}

impl Drop for GovernedEventLoop {
    fn drop(&mut self) {
        // Nothing will acknowledge what is still pending: its waiters learn it now.
        let mut pending = self.tracker.pending();
        pending.queued.clear();
        pending.inflight.clear();
    }
}

fn judge(_: &PublishCall, outcome: &Result<Acked, AckLost>) -> (Value, Option<String>) {
    match outcome {
        Ok(Acked::Sent) => (json!({"acknowledgement": null}), None),
        Ok(Acked::PubAck(pkid)) => (json!({"acknowledgement": "puback", "pkid": pkid}), None),
        Ok(Acked::PubComp(pkid)) => (json!({"acknowledgement": "pubcomp", "pkid": pkid}), None),
        Err(e) => (Value::Null, Some(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::{PubAck, PubComp};

    fn queue(p: &mut Pending) -> oneshot::Receiver<Acked> {
        let (tx, rx) = oneshot::channel();
        let t = p.next_ticket;
        p.next_ticket += 1;
        p.queued.push_back((t, tx));
        rx
    }

    #[tokio::test]
    async fn a_topic_publish_would_refuse_is_refused_before_anything_is_sent() {
        let options = MqttOptions::new("obx-unit", "127.0.0.1", 9);
        let (client, events) = GovernedMqttClient::new(options, 4);
        for topic in ["plant/+/valve", "plant/#", "a/b#", "+"] {
            let refused = client.publish(topic, QoS::AtLeastOnce, false, "x").await;
            assert!(
                matches!(refused, Err(PublishError::Broker(ClientError::Request(_)))),
                "{topic:?}: {refused:?}"
            );
        }
        // Nothing reached the event loop's queue: the refused publishes left no waiter.
        assert!(client.tracker.pending().queued.is_empty());
        drop(events);
    }

    #[test]
    fn acknowledgements_follow_the_event_loops_order() {
        let mut p = Pending::default();
        let (mut zero, mut one, mut two) = (queue(&mut p), queue(&mut p), queue(&mut p));
        drop(queue(&mut p)); // nobody waits for this one
        p.observe(&Event::Outgoing(Outgoing::Publish(0)));
        p.observe(&Event::Outgoing(Outgoing::Publish(1)));
        p.observe(&Event::Outgoing(Outgoing::Publish(2)));
        p.observe(&Event::Outgoing(Outgoing::Publish(3)));
        assert_eq!(zero.try_recv(), Ok(Acked::Sent));
        // A retransmission of packet 1 takes no other publish's place.
        p.observe(&Event::Outgoing(Outgoing::Publish(1)));
        assert!(one.try_recv().is_err());
        p.observe(&Event::Incoming(Packet::PubComp(PubComp::new(2))));
        p.observe(&Event::Incoming(Packet::PubAck(PubAck::new(1))));
        p.observe(&Event::Incoming(Packet::PubAck(PubAck::new(3))));
        assert_eq!(one.try_recv(), Ok(Acked::PubAck(1)));
        assert_eq!(two.try_recv(), Ok(Acked::PubComp(2)));
        assert!(p.inflight.is_empty() && p.queued.is_empty());
    }
}
