use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusError, Delivery, Handler, HandlerError, Subscription, handle_all_guarded};
use crate::{Event, topic_matches};

/// A bus in memory, for tests and a lone process: RabbitMQ's semantics (topic bindings, a queue
/// per consumer that outlives its consumer, ack, delayed retry, parking), but an event the
/// outbox handed over is lost with the process before its consumer handles it; embedded mode
/// uses [`crate::SqliteBus`].
#[derive(Clone, Default)]
pub struct InProcessBus {
    queues: Arc<Mutex<HashMap<String, Queue>>>,
}

struct Queue {
    bindings: Vec<String>,
    sender: mpsc::UnboundedSender<Delivery>,
    /// Taken by the running consumer and given back when it stops.
    receiver: Option<mpsc::UnboundedReceiver<Delivery>>,
    parked: Arc<Mutex<VecDeque<Event>>>,
}

impl InProcessBus {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Queue>> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, events: &[Event]) -> Result<(), BusError> {
        let queues = self.lock();
        for event in events {
            for queue in queues.values() {
                if queue.bindings.iter().any(|b| topic_matches(b, &event.event_type)) {
                    let delivery = Delivery {
                        event: event.clone(),
                        attempt: 1,
                        redelivered: false,
                    };
                    // The queue holds its own receiver whenever no consumer runs: sending cannot fail.
                    let _ = queue.sender.send(delivery);
                }
            }
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        subscription: Subscription,
        handler: Arc<dyn Handler>,
        shutdown: CancellationToken,
    ) -> Result<JoinHandle<()>, BusError> {
        let (sender, mut receiver, parked) = {
            let mut queues = self.lock();
            let queue = queues.entry(subscription.consumer.clone()).or_insert_with(|| {
                let (sender, receiver) = mpsc::unbounded_channel();
                Queue {
                    bindings: Vec::new(),
                    sender,
                    receiver: Some(receiver),
                    parked: Arc::default(),
                }
            });
            queue.bindings = subscription.bindings.clone();
            let receiver = queue
                .receiver
                .take()
                .ok_or_else(|| BusError::Protocol(format!("consumer {} is already running", subscription.consumer)))?;
            (queue.sender.clone(), receiver, queue.parked.clone())
        };
        let bus = self.clone();
        Ok(tokio::spawn(async move {
            loop {
                let first = tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    next = receiver.recv() => match next { Some(d) => d, None => break },
                };
                let mut taken = vec![first];
                while taken.len() < subscription.batch {
                    match receiver.try_recv() {
                        Ok(more) => taken.push(more),
                        Err(_) => break,
                    }
                }
                let results = handle_all_guarded(handler.as_ref(), taken.clone()).await;
                for (delivery, result) in taken.into_iter().zip(results) {
                    if let Err(error) = result {
                        retry_or_park(&subscription, &sender, &parked, delivery, &error);
                    }
                }
            }
            if let Some(queue) = bus.lock().get_mut(&subscription.consumer) {
                queue.receiver = Some(receiver);
            }
        }))
    }

    async fn take_parked(&self, consumer: &str, max: usize) -> Result<Vec<Event>, BusError> {
        let Some(parked) = self.lock().get(consumer).map(|q| q.parked.clone()) else {
            return Ok(Vec::new());
        };
        let mut parked = parked.lock().unwrap_or_else(PoisonError::into_inner);
        let n = max.min(parked.len());
        Ok(parked.drain(..n).collect())
    }

    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }
}

/// A failed delivery comes back after its delay, or is parked after its last attempt.
fn retry_or_park(
    subscription: &Subscription,
    sender: &mpsc::UnboundedSender<Delivery>,
    parked: &Arc<Mutex<VecDeque<Event>>>,
    delivery: Delivery,
    error: &HandlerError,
) {
    let attempt = delivery.attempt;
    match subscription.retry.delay_after(attempt) {
        Some(delay) => {
            tracing::warn!(consumer = %subscription.consumer, event.id = %delivery.event.id, attempt, %error, "event handling failed; retrying later");
            let sender = sender.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = sender.send(Delivery {
                    attempt: attempt + 1,
                    redelivered: true,
                    ..delivery
                });
            });
        }
        None => {
            tracing::error!(consumer = %subscription.consumer, event.id = %delivery.event.id, attempt, %error, "event handling failed for the last time; parked");
            parked
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_back(delivery.event);
        }
    }
}
