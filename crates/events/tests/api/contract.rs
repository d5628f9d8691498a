//! The same contract, run over every bus and database backend: RabbitMQ and in-process,
//! PostgreSQL and SQLite. Real servers come from `deploy/servers.sh` (see test-support).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use events::catalogue::{TokenRevoked, UserUpdated};
use events::{
    Bus, Delivery, Event, Handler, HandlerError, InProcessBus, OutboxRelay, RabbitBus, RabbitSettings, RelaySettings,
    RetryPolicy, SqliteBus, Subscription, outbox,
};
use storage::{Database, PoolSettings, StorageError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

fn rabbit() -> Arc<dyn Bus> {
    Arc::new(RabbitBus::new(RabbitSettings {
        url: test_support::amqp_url(),
        exchange: test_support::unique("contract"),
        connection_name: "events-contract".into(),
        tls_ca: None,
    }))
}

/// The broker's TLS port, trusting `ca` (PEM) besides the system's roots.
fn rabbit_over_tls(ca: Option<String>) -> Arc<dyn Bus> {
    Arc::new(RabbitBus::new(RabbitSettings {
        url: test_support::tls().amqp_url,
        exchange: test_support::unique("contract-tls"),
        connection_name: "events-contract-tls".into(),
        tls_ca: ca,
    }))
}

fn in_process() -> Arc<dyn Bus> {
    Arc::new(InProcessBus::new())
}

/// Embedded mode's bus, kept in `file` (which the caller keeps for the test's length).
pub(crate) async fn sqlite_bus(file: &test_support::TestSqlite) -> Arc<dyn Bus> {
    let db = Database::connect(&file.url, &PoolSettings::default()).expect("open the bus file");
    Arc::new(SqliteBus::open(db).await.expect("open the bus"))
}

pub(crate) fn revoked(jti: &str) -> Event {
    Event::new(
        "/test",
        Some(jti.into()),
        &TokenRevoked::token(jti.parse().unwrap(), ids::literal!(ClientId, "c"), None, 0),
    )
    .unwrap()
}

fn updated(user: &str) -> Event {
    Event::new(
        "/test",
        Some(user.into()),
        &UserUpdated {
            user_id: user.parse().unwrap(),
            username: user.into(),
            picture: None,
            group: None,
            phone: None,
        },
    )
    .unwrap()
}

/// Forwards deliveries to the test; fails the first `failures` attempts of every event.
struct Recorder {
    tx: mpsc::UnboundedSender<(Delivery, Instant)>,
    failures: u32,
}

#[async_trait]
impl Handler for Recorder {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let attempt = delivery.attempt;
        let _ = self.tx.send((delivery, Instant::now()));
        if attempt <= self.failures {
            Err(HandlerError::new("induced failure"))
        } else {
            Ok(())
        }
    }
}

pub(crate) async fn subscribe(
    bus: &Arc<dyn Bus>,
    sub: Subscription,
    failures: u32,
) -> (mpsc::UnboundedReceiver<(Delivery, Instant)>, CancellationToken) {
    let (tx, rx) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    bus.subscribe(sub, Arc::new(Recorder { tx, failures }), stop.clone())
        .await
        .expect("subscribe");
    (rx, stop)
}

pub(crate) async fn next(rx: &mut mpsc::UnboundedReceiver<(Delivery, Instant)>) -> (Delivery, Instant) {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a delivery in time")
        .expect("channel open")
}

pub(crate) async fn nothing_more(rx: &mut mpsc::UnboundedReceiver<(Delivery, Instant)>) {
    let extra = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
    assert!(extra.is_err(), "unexpected delivery: {extra:?}");
}

/// Takes deliveries together, records how many came at once, and fails the first attempt of
/// the event about `bad`.
struct Batches {
    tx: mpsc::UnboundedSender<Vec<Delivery>>,
}

#[async_trait]
impl Handler for Batches {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        self.handle_all(vec![delivery]).await.pop().unwrap_or(Ok(()))
    }

    async fn handle_all(&self, deliveries: Vec<Delivery>) -> Vec<Result<(), HandlerError>> {
        let results = deliveries
            .iter()
            .map(|d| match d.event.subject.as_deref() {
                Some("bad") if d.attempt == 1 => Err(HandlerError::new("induced failure")),
                _ => Ok(()),
            })
            .collect();
        let _ = self.tx.send(deliveries);
        results
    }
}

/// Events waiting when a consumer starts reach it together, up to its batch; a failure in a
/// batch retries that event alone.
async fn waiting_events_are_taken_together(bus: Arc<dyn Bus>) {
    let mut sub = Subscription::new("batched", &["user.updated"]);
    sub.retry = fast_retry(3);
    sub.batch = 8;
    let (_rx, stop) = subscribe(&bus, sub.clone(), 0).await;
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let published: Vec<Event> = (0..21)
        .map(|i| updated(&if i == 5 { "bad".to_owned() } else { format!("u{i}") }))
        .collect();
    bus.publish(&published).await.expect("publish");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    bus.subscribe(sub, Arc::new(Batches { tx }), stop.clone())
        .await
        .expect("subscribe");
    let mut batches: Vec<Vec<Delivery>> = Vec::new();
    while batches.iter().map(Vec::len).sum::<usize>() < published.len() + 1 {
        let batch = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("in time")
            .expect("open");
        batches.push(batch);
    }
    assert!(
        batches.iter().all(|b| b.len() <= 8),
        "no batch above the subscription's"
    );
    assert!(
        batches.iter().any(|b| b.len() > 1),
        "waiting events come together: {:?}",
        batches.iter().map(Vec::len).collect::<Vec<_>>()
    );
    let firsts: Vec<&Event> = batches
        .iter()
        .flatten()
        .filter(|d| d.attempt == 1)
        .map(|d| &d.event)
        .collect();
    assert_eq!(firsts, published.iter().collect::<Vec<_>>(), "in order, each once");
    let retried: Vec<&Delivery> = batches.iter().flatten().filter(|d| d.attempt > 1).collect();
    assert_eq!(retried.len(), 1);
    assert_eq!(
        retried[0].event.subject.as_deref(),
        Some("bad"),
        "only the failed one again"
    );
    let extra = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
    assert!(extra.is_err(), "unexpected deliveries: {extra:?}");
    stop.cancel();
}

fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        delays: vec![Duration::from_millis(300)],
    }
}

async fn publish_consume_ack(bus: Arc<dyn Bus>) {
    let (mut rx, stop) = subscribe(&bus, Subscription::new("gateway", &["token.*"]), 0).await;
    let (a, b) = (revoked("a"), revoked("b"));
    bus.publish(&[a.clone(), updated("u"), b.clone()])
        .await
        .expect("publish");
    let first = next(&mut rx).await.0;
    let second = next(&mut rx).await.0;
    assert_eq!((first.event, first.attempt), (a, 1));
    assert_eq!((second.event, second.attempt), (b, 1));
    nothing_more(&mut rx).await;
    stop.cancel();
}

async fn failure_is_retried_with_delay_then_parked(bus: Arc<dyn Bus>) {
    let mut sub = Subscription::new("flaky", &["token.revoked"]);
    sub.retry = fast_retry(3);
    let (mut rx, stop) = subscribe(&bus, sub, u32::MAX).await;
    let event = revoked("poison");
    bus.publish(std::slice::from_ref(&event)).await.expect("publish");
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next(&mut rx).await);
    }
    assert_eq!(seen.iter().map(|(d, _)| d.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(seen.iter().all(|(d, _)| d.event == event));
    for pair in seen.windows(2) {
        let gap = pair[1].1 - pair[0].1;
        assert!(
            gap >= Duration::from_millis(250),
            "retry came after {gap:?}, before its delay"
        );
    }
    nothing_more(&mut rx).await;
    let parked = bus.take_parked("flaky", 10).await.expect("parked");
    assert_eq!(parked, vec![event]);
    assert!(
        bus.take_parked("flaky", 10).await.expect("parked").is_empty(),
        "taking removes"
    );
    stop.cancel();
}

async fn transient_failure_succeeds_on_retry(bus: Arc<dyn Bus>) {
    let mut sub = Subscription::new("transient", &["user.#"]);
    sub.retry = fast_retry(5);
    let (mut rx, stop) = subscribe(&bus, sub, 1).await;
    bus.publish(&[updated("x")]).await.expect("publish");
    assert_eq!(next(&mut rx).await.0.attempt, 1);
    let retried = next(&mut rx).await.0;
    assert_eq!((retried.attempt, retried.redelivered), (2, true));
    nothing_more(&mut rx).await;
    assert!(bus.take_parked("transient", 10).await.expect("parked").is_empty());
    stop.cancel();
}

async fn queue_outlives_its_consumer(bus: Arc<dyn Bus>) {
    let (_rx, stop) = subscribe(&bus, Subscription::new("durable", &["token.revoked"]), 0).await;
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let event = revoked("while-away");
    bus.publish(std::slice::from_ref(&event)).await.expect("publish");
    let (mut rx, stop) = subscribe(&bus, Subscription::new("durable", &["token.revoked"]), 0).await;
    assert_eq!(next(&mut rx).await.0.event, event);
    stop.cancel();
}

pub(crate) async fn migrated(url: &str) -> Database {
    let db = Database::connect(url, &PoolSettings::default()).expect("connect");
    db.migrate(&[&outbox::MIGRATIONS]).await.expect("migrate");
    db
}

/// An outbox row is published exactly when its transaction commits.
async fn outbox_publishes_exactly_committed_rows(bus: Arc<dyn Bus>, url: &str) {
    let db = migrated(url).await;
    let (mut rx, stop) = subscribe(&bus, Subscription::new("outbox", &["#"]), 0).await;
    let relay = OutboxRelay::new(db.clone(), bus.clone(), RelaySettings::default());
    let wake = relay.waker();
    let relay_stop = CancellationToken::new();
    let relay_task = tokio::spawn(relay.run(relay_stop.clone()));

    let rolled_back = revoked("rolled-back");
    let result: Result<(), StorageError> = db
        .transaction(move |conn| {
            outbox::enqueue(conn, std::slice::from_ref(&rolled_back))?;
            Err(StorageError::NotFound) // the change fails after its event was written
        })
        .await;
    assert!(result.is_err());
    let committed = revoked("committed");
    let event = committed.clone();
    db.transaction(move |conn| Ok(outbox::enqueue(conn, std::slice::from_ref(&event))?))
        .await
        .expect("commit");
    wake.notify_one();

    assert_eq!(next(&mut rx).await.0.event, committed);
    nothing_more(&mut rx).await;
    assert_eq!(
        db.run(|c| Ok(outbox::pending(c)?)).await.expect("count"),
        0,
        "published rows are removed"
    );
    relay_stop.cancel();
    relay_task.await.expect("relay stops");
    stop.cancel();
}

/// A row whose transaction commits after rows with later ids were published is published too:
/// the relay reads on from the last row it read, but not only.
async fn relay_publishes_a_row_committed_after_later_ones(bus: Arc<dyn Bus>, url: &str) {
    let db = migrated(url).await;
    let (mut rx, stop) = subscribe(&bus, Subscription::new("outbox-late", &["#"]), 0).await;
    let relay = OutboxRelay::new(db.clone(), bus.clone(), RelaySettings::default());
    let wake = relay.waker();
    let relay_stop = CancellationToken::new();
    let relay_task = tokio::spawn(relay.run(relay_stop.clone()));
    let late = revoked("late");
    let earlier: Vec<Event> = (0..3).map(|i| revoked(&format!("on-time-{i}"))).collect();
    assert!(earlier.iter().all(|e| e.id > late.id), "ids grow with time");
    let batch = earlier.clone();
    db.transaction(move |conn| Ok(outbox::enqueue(conn, &batch)?))
        .await
        .expect("commit");
    wake.notify_one();
    for expected in &earlier {
        assert_eq!(&next(&mut rx).await.0.event, expected);
    }
    let event = late.clone();
    db.transaction(move |conn| Ok(outbox::enqueue(conn, std::slice::from_ref(&event))?))
        .await
        .expect("commit");
    wake.notify_one();
    assert_eq!(next(&mut rx).await.0.event, late);
    relay_stop.cancel();
    relay_task.await.expect("relay stops");
    stop.cancel();
}

/// Rows left at shutdown are published by the drain before the relay returns.
async fn relay_drains_at_shutdown(bus: Arc<dyn Bus>, url: &str) {
    let db = migrated(url).await;
    let (mut rx, stop) = subscribe(&bus, Subscription::new("drain", &["#"]), 0).await;
    let events: Vec<Event> = (0..50).map(|i| revoked(&format!("d{i}"))).collect();
    let batch = events.clone();
    db.transaction(move |conn| Ok(outbox::enqueue(conn, &batch)?))
        .await
        .expect("commit");
    let relay_stop = CancellationToken::new();
    relay_stop.cancel(); // already shutting down: only the drain runs
    let settings = RelaySettings {
        batch_size: 7,
        ..RelaySettings::default()
    };
    OutboxRelay::new(db.clone(), bus.clone(), settings)
        .run(relay_stop)
        .await;
    assert_eq!(db.run(|c| Ok(outbox::pending(c)?)).await.expect("count"), 0);
    let mut received = Vec::new();
    for _ in 0..events.len() {
        received.push(next(&mut rx).await.0.event);
    }
    assert_eq!(received, events, "in order, each once");
    stop.cancel();
}

async fn inbox_recognises_redeliveries(url: &str) {
    let db = migrated(url).await;
    let id = uuid::Uuid::now_v7();
    let first = db
        .run(move |c| Ok(events::inbox::first_time(c, "gateway", &id)?))
        .await
        .expect("insert");
    let again = db
        .run(move |c| Ok(events::inbox::first_time(c, "gateway", &id)?))
        .await
        .expect("insert");
    let other = db
        .run(move |c| Ok(events::inbox::first_time(c, "blog", &id)?))
        .await
        .expect("insert");
    assert_eq!((first, again, other), (true, false, true));
    let (fresh, twice) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let taken = db
        .run(move |c| Ok(events::inbox::first_times(c, "gateway", &[twice, id, fresh, twice])?))
        .await
        .expect("insert");
    assert_eq!(
        taken,
        [fresh, twice].into_iter().collect(),
        "events taken together: those not seen, each once"
    );
    let purged = db.run(|c| Ok(events::inbox::purge(c, i64::MAX)?)).await.expect("purge");
    assert_eq!(purged, 4);
}

/// `Outbox::write` stages events with the change and wakes the relay once committed; a
/// rollback leaves no row and wakes nothing. `Outbox::once` does it once per event id.
async fn writes_publish_what_they_commit(url: &str) {
    let db = migrated(url).await;
    let waker = Arc::new(tokio::sync::Notify::new());
    let outbox = events::Outbox::new(db.clone(), waker.clone());
    let pending = || async { db.run(|c| Ok(outbox::pending(c)?)).await.expect("count") };
    let woken = |waker: Arc<tokio::sync::Notify>| async move {
        tokio::time::timeout(Duration::from_millis(50), waker.notified())
            .await
            .is_ok()
    };
    let payload = TokenRevoked::token(ids::literal!(Jti, "j1"), ids::literal!(ClientId, "app"), None, 0);
    let staged = payload.clone();
    outbox
        .write(move |_, events| events.publish("/test", None, &staged))
        .await
        .expect("committed");
    assert_eq!(pending().await, 1);
    assert!(woken(waker.clone()).await, "the relay is woken after the commit");
    let staged = payload.clone();
    let failed = outbox
        .write(move |_, events| {
            events.publish("/test", None, &staged)?;
            Err::<(), _>(StorageError::NotFound)
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(pending().await, 1, "a rolled-back write publishes nothing");
    assert!(!woken(waker.clone()).await);
    let id = uuid::Uuid::now_v7();
    for expected in [true, false] {
        let staged = payload.clone();
        let ran = outbox
            .once("test", id, move |_, events| events.publish("/test", None, &staged))
            .await
            .expect("handled");
        assert_eq!(ran, expected);
    }
    assert_eq!(pending().await, 2, "an event handled twice publishes once");
    let (seen, new) = (revoked("seen"), revoked("new"));
    let taken: Arc<[Event]> = vec![new.clone(), Event { id, ..seen }, new].into();
    let ran = outbox
        .once_each("test", taken, move |_, events, fresh| {
            fresh
                .iter()
                .try_for_each(|event| events.publish("/test", Some(event.id.to_string()), &payload))
        })
        .await
        .expect("handled");
    assert_eq!(ran, 1, "of events taken together, only the one not handled yet, once");
    assert_eq!(pending().await, 3);
}

macro_rules! bus_contract {
    ($name:ident, $bus:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn publish_consume_ack() {
                super::publish_consume_ack($bus).await;
            }

            #[tokio::test]
            async fn failure_is_retried_with_delay_then_parked() {
                super::failure_is_retried_with_delay_then_parked($bus).await;
            }

            #[tokio::test]
            async fn transient_failure_succeeds_on_retry() {
                super::transient_failure_succeeds_on_retry($bus).await;
            }

            #[tokio::test]
            async fn queue_outlives_its_consumer() {
                super::queue_outlives_its_consumer($bus).await;
            }

            #[tokio::test]
            async fn waiting_events_are_taken_together() {
                super::waiting_events_are_taken_together($bus).await;
            }
        }
    };
}

macro_rules! outbox_contract {
    ($name:ident, $bus:expr, $db:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn publishes_exactly_committed_rows() {
                let db = $db;
                super::outbox_publishes_exactly_committed_rows($bus, &db.url).await;
            }

            #[tokio::test]
            async fn drains_at_shutdown() {
                let db = $db;
                super::relay_drains_at_shutdown($bus, &db.url).await;
            }

            #[tokio::test]
            async fn publishes_a_row_committed_after_later_ones() {
                let db = $db;
                super::relay_publishes_a_row_committed_after_later_ones($bus, &db.url).await;
            }

            #[tokio::test]
            async fn inbox_recognises_redeliveries() {
                let db = $db;
                super::inbox_recognises_redeliveries(&db.url).await;
            }

            #[tokio::test]
            async fn writes_publish_what_they_commit() {
                let db = $db;
                super::writes_publish_what_they_commit(&db.url).await;
            }
        }
    };
}

bus_contract!(bus_rabbitmq, rabbit());
bus_contract!(bus_rabbitmq_tls, rabbit_over_tls(Some(test_support::tls().ca_pem)));

#[tokio::test]
async fn amqps_refuses_a_certificate_no_trusted_ca_signed() {
    let (_, foreign) = test_support::foreign_ca();
    for (ca, which) in [(Some(foreign), "another CA"), (None, "the system's roots")] {
        let refused = rabbit_over_tls(ca).ping().await.expect_err(which);
        assert!(
            refused.to_string().to_lowercase().contains("certificate"),
            "{which}: {refused}"
        );
    }
}
bus_contract!(bus_in_process, in_process());
bus_contract!(bus_sqlite, sqlite_bus(&test_support::TestSqlite::create()).await);
outbox_contract!(
    outbox_sqlite_sqlite_bus,
    sqlite_bus(&test_support::TestSqlite::create()).await,
    test_support::TestSqlite::create()
);
outbox_contract!(outbox_postgres_rabbitmq, rabbit(), test_support::TestDatabase::create());
outbox_contract!(
    outbox_sqlite_in_process,
    in_process(),
    test_support::TestSqlite::create()
);
outbox_contract!(outbox_sqlite_rabbitmq, rabbit(), test_support::TestSqlite::create());
outbox_contract!(
    outbox_postgres_in_process,
    in_process(),
    test_support::TestDatabase::create()
);
