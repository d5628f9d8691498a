//! Embedded mode's bus across a crash: what the outbox handed over and no consumer acknowledged
//! is delivered at the next start, as RabbitMQ's durable queues do.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use events::{Delivery, Handler, HandlerError, OutboxRelay, RelaySettings, Subscription, outbox};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::contract::{migrated, next, nothing_more, revoked, sqlite_bus, subscribe};

/// Tells the test it was given an event, then never finishes: the process dies meanwhile.
struct Stuck(mpsc::UnboundedSender<Delivery>);

#[async_trait]
impl Handler for Stuck {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let _ = self.0.send(delivery);
        std::future::pending().await
    }
}

#[tokio::test]
async fn an_event_a_crash_interrupted_is_delivered_at_the_next_start() {
    let (service, file) = (test_support::TestSqlite::create(), test_support::TestSqlite::create());
    let db = migrated(&service.url).await;
    let bus = sqlite_bus(&file).await;
    let (tx, mut seen) = mpsc::unbounded_channel();
    let consumer = bus
        .subscribe(
            Subscription::new("gateway", &["token.*"]),
            Arc::new(Stuck(tx)),
            CancellationToken::new(),
        )
        .await
        .expect("subscribe");
    let relay = OutboxRelay::new(db.clone(), bus.clone(), RelaySettings::default());
    let relay_task = tokio::spawn(relay.run(CancellationToken::new()));
    let event = revoked("in-flight");
    let written = event.clone();
    db.transaction(move |c| Ok(outbox::enqueue(c, std::slice::from_ref(&written))?))
        .await
        .expect("commit");

    let handed = tokio::time::timeout(Duration::from_secs(20), seen.recv()).await;
    assert_eq!(handed.expect("delivered in time").expect("open").event, event);
    // The relay deletes its rows once the bus took them, which may be just after the consumer
    // was handed the event.
    let mut pending = 1;
    for _ in 0..100 {
        pending = db.run(|c| Ok(outbox::pending(c)?)).await.expect("count");
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pending, 0, "the outbox let go of the event");
    // The crash: tasks end where they stand, nothing is settled.
    consumer.abort();
    relay_task.abort();
    drop(bus);

    let bus = sqlite_bus(&file).await;
    let (mut rx, stop) = subscribe(&bus, Subscription::new("gateway", &["token.*"]), 0).await;
    let again = next(&mut rx).await.0;
    assert_eq!((&again.event, again.attempt, again.redelivered), (&event, 1, true));
    nothing_more(&mut rx).await;
    stop.cancel();
}

#[tokio::test]
async fn queues_and_their_waiting_events_survive_a_restart_but_a_replicas_queue_does_not() {
    let file = test_support::TestSqlite::create();
    let bus = sqlite_bus(&file).await;
    let replica = Subscription::per_replica("purge", &["token.*"]);
    let (_, stop) = subscribe(&bus, Subscription::new("durable", &["token.*"]), 0).await;
    let (_, stop_replica) = subscribe(&bus, replica.clone(), 0).await;
    stop.cancel();
    stop_replica.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = revoked("before-restart");
    bus.publish(std::slice::from_ref(&before)).await.expect("publish");
    drop(bus);

    let bus = sqlite_bus(&file).await;
    let after = revoked("before-resubscribing");
    bus.publish(std::slice::from_ref(&after)).await.expect("publish");
    let (mut rx, stop) = subscribe(&bus, Subscription::new("durable", &["token.*"]), 0).await;
    assert_eq!(next(&mut rx).await.0.event, before);
    assert_eq!(next(&mut rx).await.0.event, after);
    nothing_more(&mut rx).await;
    let (mut replica_rx, stop_replica) = subscribe(&bus, replica, 0).await;
    nothing_more(&mut replica_rx).await;
    stop.cancel();
    stop_replica.cancel();
}
