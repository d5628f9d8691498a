//! `make bench`: events per second and publish-to-consume latency through
//! (1) the in-process bus, (2) RabbitMQ directly, (3) a PostgreSQL outbox → relay → RabbitMQ.
//! Needs the servers of `deploy/servers.sh`. `BENCH_EVENTS` sets the count (default 50,000).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use events::catalogue::TokenRevoked;
use events::{
    Bus, Delivery, Event, Handler, HandlerError, InProcessBus, OutboxRelay, RabbitBus, RabbitSettings, RelaySettings,
    Subscription, outbox,
};
use storage::{Database, PoolSettings, StorageError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const BATCH: usize = 500;

struct Latencies {
    base: Instant,
    expected: usize,
    samples: Mutex<Vec<u64>>,
    done: Notify,
}

#[async_trait]
impl Handler for Latencies {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let sent = delivery.event.data["sent_us"].as_u64().unwrap_or(0);
        let now = u64::try_from(self.base.elapsed().as_micros()).unwrap_or(u64::MAX);
        let mut samples = self.samples.lock().unwrap();
        samples.push(now.saturating_sub(sent));
        if samples.len() == self.expected {
            self.done.notify_one();
        }
        Ok(())
    }
}

fn event(base: Instant, i: usize) -> Event {
    let mut event = Event::new(
        "/bench",
        None,
        &TokenRevoked::token(format!("b{i}").parse().unwrap(), ids::literal!(ClientId, "c"), None, 0),
    )
    .unwrap();
    event.data["sent_us"] = serde_json::json!(u64::try_from(base.elapsed().as_micros()).unwrap_or(0));
    event
}

fn report(name: &str, n: usize, elapsed: Duration, latencies: &Latencies) {
    let mut samples = latencies.samples.lock().unwrap().clone();
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)] as f64 / 1000.0;
    println!(
        "{name:<44} {n:>7} events  {:>9.0} events/s  latency p50 {:>7.2} ms  p99 {:>7.2} ms",
        n as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99)
    );
}

async fn consumer(bus: &Arc<dyn Bus>, name: &str, n: usize, base: Instant) -> (Arc<Latencies>, CancellationToken) {
    let latencies = Arc::new(Latencies {
        base,
        expected: n,
        samples: Mutex::new(Vec::with_capacity(n)),
        done: Notify::new(),
    });
    let stop = CancellationToken::new();
    let mut sub = Subscription::new(name, &["token.revoked"]);
    sub.prefetch = 1000;
    bus.subscribe(sub, latencies.clone(), stop.clone())
        .await
        .expect("subscribe");
    (latencies, stop)
}

async fn bus_direct(name: &str, bus: Arc<dyn Bus>, n: usize) {
    let base = Instant::now();
    let (latencies, stop) = consumer(&bus, "bench", n, base).await;
    let start = Instant::now();
    for chunk in 0..n.div_ceil(BATCH) {
        let events: Vec<Event> = (chunk * BATCH..((chunk + 1) * BATCH).min(n))
            .map(|i| event(base, i))
            .collect();
        bus.publish(&events).await.expect("publish");
    }
    latencies.done.notified().await;
    report(name, n, start.elapsed(), &latencies);
    stop.cancel();
}

/// `paced`: write 100 events every 50 ms (2,000/s) to see latency below saturation; otherwise
/// write as fast as the database takes them, for peak throughput.
async fn through_outbox(bus: Arc<dyn Bus>, n: usize, paced: bool) {
    let batch = if paced { 100 } else { BATCH };
    let pg = test_support::TestDatabase::create();
    let db = Database::connect(&pg.url, &PoolSettings::default()).expect("connect");
    db.migrate(&[&outbox::MIGRATIONS]).await.expect("migrate");
    let base = Instant::now();
    let (latencies, stop) = consumer(&bus, "bench-outbox", n, base).await;
    let relay = OutboxRelay::new(db.clone(), bus, RelaySettings::default());
    let wake = relay.waker();
    let relay_task = tokio::spawn(relay.run(stop.clone()));
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    for chunk in 0..n.div_ceil(batch) {
        if paced {
            tick.tick().await;
        }
        let events: Vec<Event> = (chunk * batch..((chunk + 1) * batch).min(n))
            .map(|i| event(base, i))
            .collect();
        db.transaction(move |c| Ok::<_, StorageError>(outbox::enqueue(c, &events)?))
            .await
            .expect("enqueue");
        wake.notify_one();
    }
    latencies.done.notified().await;
    let name = if paced {
        "outbox -> RabbitMQ, paced at 2,000/s"
    } else {
        "outbox (PostgreSQL) -> RabbitMQ -> consumer"
    };
    report(name, n, start.elapsed(), &latencies);
    stop.cancel();
    relay_task.await.expect("relay");
}

fn rabbit() -> Arc<dyn Bus> {
    Arc::new(RabbitBus::new(RabbitSettings {
        url: test_support::amqp_url(),
        exchange: test_support::unique("bench"),
        connection_name: "bench".into(),
        tls_ca: None,
    }))
}

fn main() {
    let n: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!(
            "event throughput, {} cores",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        bus_direct("in-process bus", Arc::new(InProcessBus::new()), n).await;
        bus_direct("RabbitMQ bus (confirms, manual acks)", rabbit(), n).await;
        through_outbox(rabbit(), n, false).await;
        through_outbox(rabbit(), n.min(10_000), true).await;
    });
}
