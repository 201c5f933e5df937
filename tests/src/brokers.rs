//! The machine's message brokers — RabbitMQ (5672), NATS with JetStream (4222), Mosquitto
//! (1883) — for the publish hook tests: a governed publish per broker, and real consumers that
//! say what the brokers delivered.
//!
//! Every published message carries [`MESSAGE_SECRET`] in a header named `x-api-key` (AMQP,
//! NATS) and under `password` in its JSON payload: neither may reach Core.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use openbox::hooks::messaging::amqp::GovernedChannel;
use openbox::hooks::messaging::mqtt::GovernedMqttClient;
use openbox::hooks::messaging::nats::GovernedNats;
use serde::{Deserialize, Serialize};

/// A credential every published message carries (header and payload).
pub const MESSAGE_SECRET: &str = "message-secret-4711";
/// A credential the NATS responder's reply carries under `token`.
pub const REPLY_SECRET: &str = "reply-secret-8642";

/// RabbitMQ (guest/guest, the default virtual host).
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// NATS.
pub const NATS_URL: &str = "nats://127.0.0.1:4222";
/// Mosquitto's host and port.
pub const MQTT_SERVER: (&str, u16) = ("127.0.0.1", 1883);

/// Which broker, and how a step publishes to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Broker {
    /// lapin: `exchange` (a topic exchange), the destination is the routing key; confirms on.
    Amqp { exchange: String },
    /// async-nats core publish with headers, flushed.
    Nats,
    /// async-nats request; the result is the reply's payload length.
    NatsRequest,
    /// async-nats JetStream publish; the result names the stream and sequence.
    JetStream,
    /// rumqttc, QoS 1.
    Mqtt,
}

/// The payload every step publishes.
pub fn payload(destination: &str) -> String {
    serde_json::json!({"to": destination, "password": MESSAGE_SECRET}).to_string()
}

/// Publishes one message to `destination` through the governed wrapper of `broker` and waits
/// for its acknowledgement; the result says what the broker answered.
pub async fn publish(broker: &Broker, destination: &str) -> anyhow::Result<String> {
    let body = payload(destination);
    Ok(match broker {
        Broker::Amqp { exchange } => {
            let conn = Connection::connect(AMQP_URL, ConnectionProperties::default()).await?;
            let channel = conn.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            let governed = GovernedChannel::new(channel).server("127.0.0.1", 5672);
            let mut headers = FieldTable::default();
            headers.insert(
                ShortString::from("x-api-key"),
                AMQPValue::LongString(MESSAGE_SECRET.into()),
            );
            let confirmation = governed
                .basic_publish(
                    ShortString::from(exchange.as_str()),
                    ShortString::from(destination),
                    BasicPublishOptions::default(),
                    body.as_bytes(),
                    BasicProperties::default()
                        .with_content_type("application/json".into())
                        .with_headers(headers),
                )
                .await?
                .await?;
            let _ = conn.close(200, "done".into()).await;
            format!("confirmed {}", confirmation.is_ack())
        }
        Broker::Nats => {
            let nats = GovernedNats::new(async_nats::connect(NATS_URL).await?);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("x-api-key", MESSAGE_SECRET);
            let sent = nats
                .publish_with_headers(destination.to_owned(), headers, body.into())
                .await;
            // Flushed before a `completed` BLOCK ends the step too: core NATS has no
            // acknowledgement, and a client dropped unflushed may lose what it published.
            nats.inner().flush().await?;
            sent?;
            "sent".to_owned()
        }
        Broker::NatsRequest => {
            let nats = GovernedNats::new(async_nats::connect(NATS_URL).await?);
            let reply = nats.request(destination.to_owned(), body.into()).await?;
            format!("reply of {} bytes", reply.payload.len())
        }
        Broker::JetStream => {
            let nats = GovernedNats::new(async_nats::connect(NATS_URL).await?);
            let ack = nats
                .jetstream()
                .publish(destination.to_owned(), body.into())
                .await?
                .await?;
            format!("stored in {} at {}", ack.stream, ack.sequence)
        }
        Broker::Mqtt => {
            let options =
                rumqttc::MqttOptions::new(crate::unique("obx-pub"), MQTT_SERVER.0, MQTT_SERVER.1);
            let (client, mut events) = GovernedMqttClient::new(options, 16);
            let driver = tokio::spawn(async move { while events.poll().await.is_ok() {} });
            let acked = client
                .publish(destination, rumqttc::QoS::AtLeastOnce, false, body)
                .await?
                .await;
            let _ = client.disconnect().await;
            driver.abort();
            format!("{:?}", acked?)
        }
    })
}

/// A queue bound to every routing key of a fresh topic exchange: what RabbitMQ delivered.
pub struct AmqpConsumer {
    /// The exchange to publish to.
    pub exchange: String,
    queue: String,
    channel: lapin::Channel,
    _conn: Connection,
}

impl AmqpConsumer {
    /// Declares the exchange and the queue.
    pub async fn start(name: &str) -> Self {
        let conn = Connection::connect(AMQP_URL, ConnectionProperties::default())
            .await
            .expect("RabbitMQ");
        let channel = conn.create_channel().await.unwrap();
        let exchange = format!("{name}-ex");
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let queue = format!("{name}-q");
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        AmqpConsumer {
            exchange,
            queue,
            channel,
            _conn: conn,
        }
    }

    /// The routing keys of the messages in the queue, in order (taken off it).
    pub async fn received(&self) -> Vec<String> {
        let mut keys = Vec::new();
        while let Some(message) = self
            .channel
            .basic_get(self.queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            keys.push(message.delivery.routing_key.as_str().to_owned());
        }
        keys
    }
}

/// A NATS subscriber to `<prefix>.>`, and a responder answering requests on `<prefix>.req.>`
/// with a reply holding [`REPLY_SECRET`].
pub struct NatsConsumer {
    prefix: String,
    client: async_nats::Client,
    subscriber: async_nats::Subscriber,
    responder: tokio::task::JoinHandle<()>,
}

impl NatsConsumer {
    /// Subscribes.
    pub async fn start(prefix: &str) -> Self {
        let client = async_nats::connect(NATS_URL).await.expect("NATS");
        let subscriber = client.subscribe(format!("{prefix}.>")).await.unwrap();
        let mut requests = client.subscribe(format!("{prefix}.req.>")).await.unwrap();
        let answering = client.clone();
        let responder = tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                if let Some(reply) = request.reply {
                    let body = serde_json::json!({"answer": 42, "token": REPLY_SECRET});
                    let _ = answering.publish(reply, body.to_string().into()).await;
                }
            }
        });
        client.flush().await.unwrap();
        NatsConsumer {
            prefix: prefix.to_owned(),
            client,
            subscriber,
            responder,
        }
    }

    /// The subjects delivered so far, in order: read up to a marker this consumer publishes
    /// after everything the test published.
    pub async fn received(mut self) -> Vec<String> {
        let marker = format!("{}.end", self.prefix);
        self.client
            .publish(marker.clone(), "end".into())
            .await
            .unwrap();
        self.client.flush().await.unwrap();
        let mut subjects = Vec::new();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), self.subscriber.next())
                .await
                .expect("the marker arrives")
                .expect("subscribed");
            if message.subject.as_str() == marker {
                break;
            }
            subjects.push(message.subject.as_str().to_owned());
        }
        self.responder.abort();
        subjects
    }
}

/// A JetStream stream over `<prefix>.>`, deleted when the test reads it.
pub struct JetStreamConsumer {
    name: String,
    context: async_nats::jetstream::Context,
}

impl JetStreamConsumer {
    /// Creates the stream.
    pub async fn start(prefix: &str) -> Self {
        let client = async_nats::connect(NATS_URL).await.expect("NATS");
        let context = async_nats::jetstream::new(client);
        let name = prefix.replace(['.', '-'], "_");
        context
            .create_stream(async_nats::jetstream::stream::Config {
                name: name.clone(),
                subjects: vec![format!("{prefix}.>")],
                storage: async_nats::jetstream::stream::StorageType::Memory,
                ..Default::default()
            })
            .await
            .expect("JetStream");
        JetStreamConsumer { name, context }
    }

    /// The stream's name.
    pub fn stream(&self) -> &str {
        &self.name
    }

    /// The subjects stored, in order; the stream is deleted.
    pub async fn received(self) -> Vec<String> {
        let mut stream = self.context.get_stream(&self.name).await.unwrap();
        let last = stream.info().await.unwrap().state.last_sequence;
        let mut subjects = Vec::new();
        for seq in 1..=last {
            if let Ok(message) = stream.get_raw_message(seq).await {
                subjects.push(message.subject.as_str().to_owned());
            }
        }
        let _ = self.context.delete_stream(&self.name).await;
        subjects
    }
}

/// An MQTT subscriber to `<prefix>/#` (QoS 1).
pub struct MqttConsumer {
    prefix: String,
    client: rumqttc::AsyncClient,
    topics: tokio::sync::mpsc::UnboundedReceiver<String>,
    driver: tokio::task::JoinHandle<()>,
}

impl MqttConsumer {
    /// Subscribes, and waits until the broker confirmed the subscription.
    pub async fn start(prefix: &str) -> Self {
        let options =
            rumqttc::MqttOptions::new(crate::unique("obx-sub"), MQTT_SERVER.0, MQTT_SERVER.1);
        let (client, mut events) = rumqttc::AsyncClient::new(options, 16);
        client
            .subscribe(format!("{prefix}/#"), rumqttc::QoS::AtLeastOnce)
            .await
            .unwrap();
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let (tx, topics) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                match events.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        if let Some(s) = subscribed_tx.take() {
                            let _ = s.send(());
                        }
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        let _ = tx.send(p.topic.clone());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(30), subscribed)
            .await
            .expect("Mosquitto confirms the subscription")
            .unwrap();
        MqttConsumer {
            prefix: prefix.to_owned(),
            client,
            topics,
            driver,
        }
    }

    /// The topics delivered, in order: read up to a marker published after everything else.
    pub async fn received(mut self) -> Vec<String> {
        let marker = format!("{}/end", self.prefix);
        self.client
            .publish(marker.clone(), rumqttc::QoS::AtLeastOnce, false, "end")
            .await
            .unwrap();
        let mut topics = Vec::new();
        loop {
            let topic = tokio::time::timeout(Duration::from_secs(30), self.topics.recv())
                .await
                .expect("the marker arrives")
                .expect("subscribed");
            if topic == marker {
                break;
            }
            topics.push(topic);
        }
        self.driver.abort();
        topics
    }
}
