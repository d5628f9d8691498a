use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Event;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("message broker unreachable: {0}")]
    Unavailable(String),
    #[error("broker refused the message (nack)")]
    Nacked,
    #[error("broker protocol error: {0}")]
    Protocol(String),
}

/// A failed handling attempt; the bus retries it later, then parks it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

impl HandlerError {
    pub fn new(error: impl std::fmt::Display) -> Self {
        Self(error.to_string())
    }
}

/// One delivery of an event to a consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event: Event,
    /// 1 on first delivery, then 2, 3, … on retries.
    pub attempt: u32,
    /// The broker delivered it before and may have seen it handled: consumers must be idempotent.
    pub redelivered: bool,
}

#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError>;

    /// Deliveries taken from the queue together (at most [`Subscription::batch`]), in queue
    /// order, with one result each in the same order. One by one unless the handler can do
    /// better (many events in one transaction): each failed delivery is retried alone.
    async fn handle_all(&self, deliveries: Vec<Delivery>) -> Vec<Result<(), HandlerError>> {
        let mut results = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            results.push(self.handle(delivery).await);
        }
        results
    }
}

/// When a failed event is tried again, and how often before it is parked.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; after the last failure the event is parked.
    pub max_attempts: u32,
    /// Delay before retry n (1-based) is `delays[min(n, len) - 1]`.
    pub delays: Vec<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            delays: [1, 5, 30, 120].map(Duration::from_secs).to_vec(),
        }
    }
}

impl RetryPolicy {
    /// The delay before retrying after failed attempt `attempt`, or `None` when it should park.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let index = usize::try_from(attempt)
            .unwrap_or(usize::MAX)
            .min(self.delays.len())
            .saturating_sub(1);
        Some(self.delays.get(index).copied().unwrap_or(Duration::ZERO))
    }
}

/// A named consumer with its own durable queue, bound to routing-key patterns.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub consumer: String,
    /// AMQP topic patterns (`token.revoked`, `user.*`, `#`).
    pub bindings: Vec<String>,
    /// Deliveries in flight before acknowledgements are required.
    pub prefetch: u16,
    /// Deliveries already waiting handed to [`Handler::handle_all`] at once (1: one at a time).
    pub batch: usize,
    pub retry: RetryPolicy,
    /// For a queue of one replica (see [`Subscription::per_replica`]): the broker deletes it
    /// after it has had no consumer this long, so replicas that are gone leave nothing behind.
    pub expires: Option<Duration>,
}

impl Subscription {
    pub fn new(consumer: impl Into<String>, bindings: &[&str]) -> Self {
        Self {
            consumer: consumer.into(),
            bindings: bindings.iter().map(|b| (*b).to_owned()).collect(),
            prefetch: 256,
            batch: 1,
            retry: RetryPolicy::default(),
            expires: None,
        }
    }

    /// A queue of this process alone, so every replica receives every event (a cache purge
    /// must reach them all), where [`Subscription::new`] makes replicas share the work. The
    /// queue survives a reconnection, so events published meanwhile still arrive.
    pub fn per_replica(consumer: &str, bindings: &[&str]) -> Self {
        let replica = uuid::Uuid::new_v4().simple().to_string();
        Self {
            expires: Some(Duration::from_secs(600)),
            ..Self::new(format!("{consumer}.{}", &replica[..12]), bindings)
        }
    }
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes events and returns once the broker has confirmed every one of them.
    async fn publish(&self, events: &[Event]) -> Result<(), BusError>;

    /// Declares the consumer's queue and starts delivering to `handler` until `shutdown`; the
    /// returned task ends after the in-flight delivery is settled.
    async fn subscribe(
        &self,
        subscription: Subscription,
        handler: Arc<dyn Handler>,
        shutdown: CancellationToken,
    ) -> Result<JoinHandle<()>, BusError>;

    /// Removes and returns up to `max` parked events of `consumer`, oldest first (for replay).
    async fn take_parked(&self, consumer: &str, max: usize) -> Result<Vec<Event>, BusError>;

    /// Readiness probe.
    async fn ping(&self) -> Result<(), BusError>;
}

/// Runs a handler, turning a panic into an ordinary failure so the event is retried, not lost.
pub(crate) async fn handle_guarded(handler: &dyn Handler, delivery: Delivery) -> Result<(), HandlerError> {
    use futures_util::FutureExt;
    std::panic::AssertUnwindSafe(handler.handle(delivery))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(panicked()))
}

/// [`handle_guarded`] for deliveries taken together: a panic fails them all.
pub(crate) async fn handle_all_guarded(
    handler: &dyn Handler,
    mut deliveries: Vec<Delivery>,
) -> Vec<Result<(), HandlerError>> {
    use futures_util::FutureExt;
    let n = deliveries.len();
    if n == 1
        && let Some(one) = deliveries.pop()
    {
        return vec![handle_guarded(handler, one).await];
    }
    match std::panic::AssertUnwindSafe(handler.handle_all(deliveries))
        .catch_unwind()
        .await
    {
        Ok(results) if results.len() == n => results,
        Ok(_) => (0..n)
            .map(|_| {
                Err(HandlerError(
                    "handler answered for another number of deliveries".to_owned(),
                ))
            })
            .collect(),
        Err(_) => (0..n).map(|_| Err(panicked())).collect(),
    }
}

fn panicked() -> HandlerError {
    HandlerError("handler panicked".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_policy_walks_the_delays_then_parks() {
        let policy = RetryPolicy {
            max_attempts: 4,
            delays: vec![Duration::from_secs(1), Duration::from_secs(5)],
        };
        assert_eq!(policy.delay_after(1), Some(Duration::from_secs(1)));
        assert_eq!(policy.delay_after(2), Some(Duration::from_secs(5)));
        assert_eq!(policy.delay_after(3), Some(Duration::from_secs(5)));
        assert_eq!(policy.delay_after(4), None);
    }
}
