//! RabbitMQ is stopped and started again (by pid, through deploy/servers.sh) while 10,000 events
//! flow from a PostgreSQL outbox to a consumer: every event must arrive, duplicates (unconfirmed
//! publishes, unacknowledged deliveries) are removed by event id through the inbox table.
//!
//! It restarts the shared test broker, so `make test` runs it alone, after the other tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use events::catalogue::TokenRevoked;
use events::{
    Bus, Delivery, Event, Handler, HandlerError, OutboxRelay, RabbitBus, RabbitSettings, RelaySettings, Subscription,
    inbox, outbox,
};
use storage::{Database, PoolSettings, StorageError};
use tokio_util::sync::CancellationToken;

const EVENTS: usize = 10_000;
const PER_TRANSACTION: usize = 100;

struct Deduplicating {
    db: Database,
    deliveries: AtomicUsize,
    unique: AtomicUsize,
}

#[async_trait]
impl Handler for Deduplicating {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        self.deliveries.fetch_add(1, Ordering::SeqCst);
        let id = delivery.event.id;
        let first = self
            .db
            .transaction(move |conn| Ok(inbox::first_time(conn, "restart-test", &id)?))
            .await
            .map_err(HandlerError::new)?;
        if first {
            self.unique.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

async fn restart_rabbitmq() {
    let status = tokio::process::Command::new("bash")
        .arg(test_support::servers_script())
        .args(["restart", "rabbitmq"])
        .status()
        .await
        .expect("run deploy/servers.sh");
    assert!(status.success(), "deploy/servers.sh restart rabbitmq failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_restart_loses_no_event() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let pg = test_support::TestDatabase::create();
    let db = Database::connect(
        &pg.url,
        &PoolSettings {
            max_connections: 16,
            ..PoolSettings::default()
        },
    )
    .expect("connect");
    db.migrate(&[&outbox::MIGRATIONS]).await.expect("migrate");
    let bus: Arc<dyn Bus> = Arc::new(RabbitBus::new(RabbitSettings {
        url: test_support::amqp_url(),
        exchange: test_support::unique("restart"),
        connection_name: "restart-test".into(),
        tls_ca: None,
    }));
    let handler = Arc::new(Deduplicating {
        db: db.clone(),
        deliveries: AtomicUsize::new(0),
        unique: AtomicUsize::new(0),
    });
    let stop = CancellationToken::new();
    let consumer = bus
        .subscribe(
            Subscription::new("restart-test", &["token.revoked"]),
            handler.clone(),
            stop.clone(),
        )
        .await
        .expect("subscribe");
    let relay = OutboxRelay::new(db.clone(), bus.clone(), RelaySettings::default());
    let wake = relay.waker();
    let relay_task = tokio::spawn(relay.run(stop.clone()));

    let started = Instant::now();
    let producer = {
        let db = db.clone();
        tokio::spawn(async move {
            for chunk in 0..EVENTS / PER_TRANSACTION {
                let events: Vec<Event> = (0..PER_TRANSACTION)
                    .map(|i| {
                        let jti = format!("t{}", chunk * PER_TRANSACTION + i);
                        Event::new(
                            "/test",
                            None,
                            &TokenRevoked::token(jti.parse().unwrap(), ids::literal!(ClientId, "c"), None, 0),
                        )
                        .unwrap()
                    })
                    .collect();
                db.transaction(move |conn| Ok::<_, StorageError>(outbox::enqueue(conn, &events)?))
                    .await
                    .expect("enqueue");
                wake.notify_one();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    // Restart once a part of the flow has gone through, while the rest is still being written.
    while handler.unique.load(Ordering::SeqCst) < EVENTS / 5 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before_restart = handler.unique.load(Ordering::SeqCst);
    restart_rabbitmq().await;
    producer.await.expect("producer");

    let deadline = Instant::now() + Duration::from_secs(180);
    while handler.unique.load(Ordering::SeqCst) < EVENTS {
        if Instant::now() > deadline {
            let pending = db.run(|c| Ok(outbox::pending(c)?)).await.expect("pending");
            panic!(
                "only {} of {EVENTS} events arrived; {pending} still in the outbox",
                handler.unique.load(Ordering::SeqCst)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let late redeliveries arrive, so the duplicate count is complete.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    relay_task.await.expect("relay");
    consumer.await.expect("consumer");

    let deliveries = handler.deliveries.load(Ordering::SeqCst);
    let unique = handler.unique.load(Ordering::SeqCst);
    println!(
        "rabbitmq restart: {unique} of {EVENTS} events arrived ({before_restart} before the restart) in {:.1?}; \
         {deliveries} deliveries, {} duplicates removed by event id",
        started.elapsed(),
        deliveries - unique
    );
    assert_eq!(unique, EVENTS);
    assert_eq!(db.run(|c| Ok(outbox::pending(c)?)).await.expect("pending"), 0);
}
