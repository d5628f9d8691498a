use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind, PublisherConfirm};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Event;
use crate::bus::{Bus, BusError, Delivery, Handler, Subscription, handle_all_guarded};

pub const DEFAULT_EXCHANGE: &str = "platform.events";
const RETRY_COUNT: &str = "x-retry-count";
const CONTENT_TYPE: &str = "application/cloudevents+json";
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct RabbitSettings {
    pub url: String,
    /// The one topic exchange every event goes through.
    pub exchange: String,
    /// Shown in the broker's management UI, to tell connections apart.
    pub connection_name: String,
    /// PEM of the CAs an `amqps://` broker's certificate may chain to, besides the system's.
    pub tls_ca: Option<String>,
}

/// The bus of production: a durable topic exchange, a durable quorum queue per consumer,
/// publisher confirms, manual acks with prefetch; failed deliveries wait in TTL queues that
/// dead-letter back into the consumer's queue, counted by an `x-retry-count` header, until they
/// are parked in `<queue>.parked`. Connections are re-established after any failure.
pub struct RabbitBus {
    settings: RabbitSettings,
    publisher: Mutex<Option<Publisher>>,
}

struct Publisher {
    // Kept so the channel's connection stays open as long as the publisher.
    _connection: Connection,
    channel: Channel,
}

impl RabbitBus {
    /// Does not connect: the first publish or subscribe does, and reconnects after failures.
    pub fn new(settings: RabbitSettings) -> Self {
        Self {
            settings,
            publisher: Mutex::new(None),
        }
    }

    fn queue_name(&self, consumer: &str) -> String {
        format!("{}.{consumer}", self.settings.exchange)
    }

    /// Sends under the publisher lock, then waits for the confirms outside it, so concurrent
    /// publishes (the relay's pipeline) overlap their round trips to the broker.
    async fn publish_inner(&self, events: &[Event]) -> Result<(), BusError> {
        let limit = BROKER_TIMEOUT + Duration::from_millis(u64::try_from(events.len()).unwrap_or(u64::MAX));
        let sent = {
            let mut guard = self.publisher.lock().await;
            if guard.as_ref().is_none_or(|p| !p.channel.status().connected()) {
                *guard = Some(self.connect_publisher().await?);
            }
            let Some(publisher) = guard.as_ref() else {
                return Err(BusError::Unavailable("no channel".into()));
            };
            let sent = within(limit, send(&publisher.channel, &self.settings.exchange, events)).await;
            if sent.is_err() {
                *guard = None;
            }
            sent?
        };
        let confirmed = within(limit, confirmed(sent)).await;
        if confirmed.is_err() {
            *self.publisher.lock().await = None;
        }
        confirmed
    }

    async fn connect_publisher(&self) -> Result<Publisher, BusError> {
        within(BROKER_TIMEOUT, async {
            let connection = connect(&self.settings, "publisher").await?;
            let channel = connection.create_channel().await.map_err(unavailable)?;
            declare_exchange(&channel, &self.settings.exchange).await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(unavailable)?;
            Ok(Publisher {
                _connection: connection,
                channel,
            })
        })
        .await
    }
}

#[async_trait]
impl Bus for RabbitBus {
    async fn publish(&self, events: &[Event]) -> Result<(), BusError> {
        if events.is_empty() {
            return Ok(());
        }
        self.publish_inner(events).await
    }

    async fn subscribe(
        &self,
        subscription: Subscription,
        handler: Arc<dyn Handler>,
        shutdown: CancellationToken,
    ) -> Result<JoinHandle<()>, BusError> {
        let consumer = Consumer {
            settings: self.settings.clone(),
            queue: self.queue_name(&subscription.consumer),
            subscription,
            handler,
        };
        // Declare once up front, so a caller knows the queue exists before publishing.
        let connection = connect(&consumer.settings, "setup").await?;
        let channel = connection.create_channel().await.map_err(unavailable)?;
        consumer.declare(&channel).await?;
        let _ = connection.close(200, "declared".into()).await;
        Ok(tokio::spawn(consumer.run(shutdown)))
    }

    async fn take_parked(&self, consumer: &str, max: usize) -> Result<Vec<Event>, BusError> {
        let connection = connect(&self.settings, "parking").await?;
        let channel = connection.create_channel().await.map_err(unavailable)?;
        let parked = format!("{}.parked", self.queue_name(consumer));
        let mut events = Vec::new();
        while events.len() < max {
            let message = channel
                .basic_get(parked.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .map_err(unavailable)?;
            let Some(message) = message else { break };
            match Event::from_json(&message.delivery.data) {
                Ok(event) => events.push(event),
                Err(error) => {
                    tracing::error!(%error, queue = %parked, "dropping an unreadable parked message")
                }
            }
        }
        let _ = connection.close(200, "done".into()).await;
        Ok(events)
    }

    async fn ping(&self) -> Result<(), BusError> {
        let guard = self.publisher.lock().await;
        if guard.as_ref().is_some_and(|p| p.channel.status().connected()) {
            return Ok(());
        }
        drop(guard);
        let connection = connect(&self.settings, "ping").await?;
        let _ = connection.close(200, "ping".into()).await;
        Ok(())
    }
}

struct Consumer {
    settings: RabbitSettings,
    queue: String,
    subscription: Subscription,
    handler: Arc<dyn Handler>,
}

impl Consumer {
    /// Consumes until shutdown, reconnecting with capped exponential backoff.
    async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            match self.consume(&shutdown).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(queue = %self.queue, %error, ?backoff, "consumer lost its broker; reconnecting")
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn consume(&self, shutdown: &CancellationToken) -> Result<(), BusError> {
        let tag = format!("{}-{}", self.subscription.consumer, uuid::Uuid::new_v4());
        let (connection, channel, forward, mut deliveries) = within(BROKER_TIMEOUT, async {
            let connection = connect(&self.settings, &self.subscription.consumer).await?;
            let channel = connection.create_channel().await.map_err(unavailable)?;
            let forward = connection.create_channel().await.map_err(unavailable)?;
            forward
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(unavailable)?;
            self.declare(&channel).await?;
            channel
                .basic_qos(self.subscription.prefetch, BasicQosOptions::default())
                .await
                .map_err(unavailable)?;
            let deliveries = channel
                .basic_consume(
                    self.queue.as_str().into(),
                    tag.as_str().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(unavailable)?;
            Ok((connection, channel, forward, deliveries))
        })
        .await?;
        tracing::info!(queue = %self.queue, "consuming");
        let mut acks = PendingAcks::default();
        loop {
            // Acknowledge in batches (`multiple`), flushing whenever the queue has nothing ready;
            // under a backlog, shutdown is still noticed between two deliveries.
            let ready = if shutdown.is_cancelled() {
                None
            } else {
                deliveries.next().now_or_never()
            };
            let next = match ready {
                Some(next) => next,
                None => {
                    acks.flush().await?;
                    tokio::select! {
                        biased;
                        () = shutdown.cancelled() => {
                            // Prefetched deliveries not handled go back to the queue when the channel closes.
                            let _ = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
                            let _ = connection.close(200, "shutdown".into()).await;
                            return Ok(());
                        }
                        next = deliveries.next() => next,
                    }
                }
            };
            let mut taken = vec![ended(next)?];
            let mut end = None;
            // Deliveries already here join the first, up to the batch.
            while end.is_none() && taken.len() < self.subscription.batch {
                match deliveries.next().now_or_never() {
                    Some(next) => match ended(next) {
                        Ok(delivery) => taken.push(delivery),
                        Err(error) => end = Some(error),
                    },
                    None => break,
                }
            }
            self.settle(&forward, &taken).await?;
            for delivery in taken {
                acks.push(delivery.acker).await?;
            }
            if let Some(error) = end {
                return Err(error);
            }
        }
    }

    /// Handles deliveries taken together; they may be acknowledged once this returns, the fate
    /// of each recorded: handled, re-queued for a delayed retry, or parked (the last two
    /// confirmed by the broker).
    async fn settle(&self, forward: &Channel, taken: &[lapin::message::Delivery]) -> Result<(), BusError> {
        // Each failure with its wait before the retry (none: park it).
        let mut failures: Vec<(usize, String, Option<Duration>)> = Vec::new();
        let mut readable = Vec::with_capacity(taken.len());
        for (index, delivery) in taken.iter().enumerate() {
            let attempt = retry_count(&delivery.properties) + 1;
            match Event::from_json(&delivery.data) {
                Ok(event) => readable.push((
                    index,
                    Delivery {
                        event,
                        attempt,
                        redelivered: delivery.redelivered || attempt > 1,
                    },
                )),
                Err(error) => failures.push((index, format!("unreadable event: {error}"), None)),
            }
        }
        let (indices, deliveries): (Vec<usize>, Vec<Delivery>) = readable.into_iter().unzip();
        let attempts: Vec<u32> = deliveries.iter().map(|d| d.attempt).collect();
        let span = self.span(&deliveries);
        let results =
            tracing::Instrument::instrument(handle_all_guarded(self.handler.as_ref(), deliveries), span).await;
        for ((index, attempt), result) in indices.into_iter().zip(attempts).zip(results) {
            if let Err(error) = result {
                failures.push((index, error.0, self.subscription.retry.delay_after(attempt)));
            }
        }
        for (index, error, delay) in failures {
            if let Some(delivery) = taken.get(index) {
                self.requeue(forward, delivery, &error, delay).await?;
            }
        }
        Ok(())
    }

    /// One event's span continues its trace; a batch's links to each event's.
    fn span(&self, deliveries: &[Delivery]) -> tracing::Span {
        let consumer = &self.subscription.consumer;
        match deliveries {
            [one] => {
                let span = tracing::info_span!("consume", %consumer, event.id = %one.event.id, event.type = %one.event.event_type);
                if let Some(tp) = &one.event.traceparent {
                    telemetry::continue_trace(&span, tp);
                }
                span
            }
            many => {
                let span = tracing::info_span!("consume", %consumer, events = many.len());
                for tp in many.iter().filter_map(|d| d.event.traceparent.as_deref()) {
                    telemetry::link_trace(&span, tp);
                }
                span
            }
        }
    }

    /// Sends a failed delivery to wait `delay` for its retry, or to be parked.
    async fn requeue(
        &self,
        forward: &Channel,
        delivery: &lapin::message::Delivery,
        error: &str,
        delay: Option<Duration>,
    ) -> Result<(), BusError> {
        let attempt = retry_count(&delivery.properties) + 1;
        let target = match delay {
            Some(delay) => {
                tracing::warn!(queue = %self.queue, attempt, %error, ?delay, "event handling failed; retrying later");
                retry_queue(&self.queue, delay)
            }
            None => {
                tracing::error!(queue = %self.queue, attempt, %error, "event handling failed for the last time; parked");
                format!("{}.parked", self.queue)
            }
        };
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        headers.insert(RETRY_COUNT.into(), AMQPValue::LongLongInt(i64::from(attempt)));
        let properties = delivery.properties.clone().with_headers(headers);
        let confirm = within(BROKER_TIMEOUT, async {
            let confirm = forward
                .basic_publish(
                    "".into(),
                    target.as_str().into(),
                    BasicPublishOptions::default(),
                    &delivery.data,
                    properties,
                )
                .await
                .map_err(unavailable)?;
            confirm.await.map_err(unavailable)
        })
        .await?;
        if !confirm.is_ack() {
            return Err(BusError::Nacked);
        }
        Ok(())
    }

    /// Quorum queues for shared consumers; a replica's own queue is a classic one that
    /// expires (it holds cache purges, worth nothing once its replica is gone).
    fn queue_args(&self) -> FieldTable {
        let mut args = self.expiring(FieldTable::default());
        if self.subscription.expires.is_none() {
            args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        }
        args
    }

    fn expiring(&self, mut args: FieldTable) -> FieldTable {
        if let Some(expires) = self.subscription.expires {
            args.insert(
                "x-expires".into(),
                AMQPValue::LongLongInt(i64::try_from(expires.as_millis()).unwrap_or(i64::MAX)),
            );
        }
        args
    }

    async fn declare(&self, channel: &Channel) -> Result<(), BusError> {
        declare_exchange(channel, &self.settings.exchange).await?;
        declare_queue(channel, &self.queue, self.queue_args()).await?;
        for binding in &self.subscription.bindings {
            channel
                .queue_bind(
                    self.queue.as_str().into(),
                    self.settings.exchange.as_str().into(),
                    binding.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(unavailable)?;
        }
        let delays: BTreeSet<Duration> = self.subscription.retry.delays.iter().copied().collect();
        for delay in delays {
            let mut args = FieldTable::default();
            args.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
            );
            args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("".into()));
            args.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(self.queue.as_str().into()),
            );
            declare_queue(channel, &retry_queue(&self.queue, delay), self.expiring(args)).await?;
        }
        declare_queue(channel, &format!("{}.parked", self.queue), self.queue_args()).await
    }
}

/// The next delivery, or why the stream of them ended.
fn ended(next: Option<Result<lapin::message::Delivery, lapin::Error>>) -> Result<lapin::message::Delivery, BusError> {
    match next {
        Some(Ok(delivery)) => Ok(delivery),
        Some(Err(error)) => Err(unavailable(error)),
        None => Err(BusError::Unavailable("consumer cancelled by the broker".into())),
    }
}

/// Settled deliveries not yet acknowledged; one `multiple` ack covers them all.
#[derive(Default)]
struct PendingAcks {
    last: Option<lapin::Acker>,
    count: usize,
}

impl PendingAcks {
    const BATCH: usize = 64;

    async fn push(&mut self, acker: lapin::Acker) -> Result<(), BusError> {
        self.last = Some(acker);
        self.count += 1;
        if self.count >= Self::BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), BusError> {
        self.count = 0;
        // Bounded: an ack to a broker that went away without a word must not hold the
        // consumer, which reconnects on the error instead.
        match self.last.take() {
            Some(acker) => {
                within(BROKER_TIMEOUT, async {
                    acker
                        .ack(BasicAckOptions { multiple: true })
                        .await
                        .map(|_| ())
                        .map_err(unavailable)
                })
                .await
            }
            None => Ok(()),
        }
    }
}

fn retry_queue(queue: &str, delay: Duration) -> String {
    format!("{queue}.retry.{}ms", delay.as_millis())
}

fn retry_count(properties: &BasicProperties) -> u32 {
    let value = properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(&ShortString::from(RETRY_COUNT)).cloned());
    let count = match value {
        Some(AMQPValue::LongLongInt(n)) => n,
        Some(AMQPValue::LongInt(n)) => i64::from(n),
        Some(AMQPValue::ShortInt(n)) => i64::from(n),
        _ => 0,
    };
    u32::try_from(count).unwrap_or(0)
}

async fn connect(settings: &RabbitSettings, role: &str) -> Result<Connection, BusError> {
    let properties =
        ConnectionProperties::default().with_connection_name(format!("{}/{role}", settings.connection_name).into());
    let tls = lapin::tcp::OwnedTLSConfig {
        identity: None,
        cert_chain: settings.tls_ca.clone(),
    };
    within(BROKER_TIMEOUT, async {
        let runtime = lapin::runtime::default_runtime().map_err(unavailable)?;
        Connection::connect_with_config(&settings.url, properties, tls, runtime)
            .await
            .map_err(unavailable)
    })
    .await
}

/// A broker that is starting or stopping can accept a socket and then never answer: every wait
/// on it is bounded, and a timeout counts as the broker being unavailable.
async fn within<T>(limit: Duration, work: impl Future<Output = Result<T, BusError>>) -> Result<T, BusError> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(BusError::Unavailable(format!(
            "no answer from the broker within {limit:?}"
        )))
    })
}

async fn declare_exchange(channel: &Channel, exchange: &str) -> Result<(), BusError> {
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(unavailable)
}

async fn declare_queue(channel: &Channel, name: &str, args: FieldTable) -> Result<(), BusError> {
    channel
        .queue_declare(name.into(), QueueDeclareOptions::durable(), args)
        .await
        .map(|_| ())
        .map_err(unavailable)
}

/// Publishes every event; the confirms are awaited by [`confirmed`].
async fn send(channel: &Channel, exchange: &str, events: &[Event]) -> Result<Vec<PublisherConfirm>, BusError> {
    let mut confirms = Vec::with_capacity(events.len());
    for event in events {
        let confirm = channel
            .basic_publish(
                exchange.into(),
                event.event_type.as_str().into(),
                BasicPublishOptions::default(),
                &event.to_json(),
                properties(event),
            )
            .await
            .map_err(unavailable)?;
        confirms.push(confirm);
    }
    Ok(confirms)
}

async fn confirmed(confirms: Vec<PublisherConfirm>) -> Result<(), BusError> {
    for confirm in confirms {
        if !confirm.await.map_err(unavailable)?.is_ack() {
            return Err(BusError::Nacked);
        }
    }
    Ok(())
}

fn properties(event: &Event) -> BasicProperties {
    let mut headers = FieldTable::default();
    if let Some(tp) = &event.traceparent {
        headers.insert(telemetry::TRACEPARENT.into(), AMQPValue::LongString(tp.as_str().into()));
    }
    BasicProperties::default()
        .with_content_type(CONTENT_TYPE.into())
        .with_delivery_mode(2)
        .with_message_id(event.id.to_string().into())
        .with_type(event.event_type.as_str().into())
        .with_timestamp(u64::try_from(event.time.timestamp()).unwrap_or(0))
        .with_headers(headers)
}

fn unavailable(error: lapin::Error) -> BusError {
    BusError::Unavailable(error.to_string())
}
