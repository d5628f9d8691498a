//! Webhook deliveries on PostgreSQL and RabbitMQ, to local receivers (`make bench`):
//! - peak deliveries/s at fan-out 1 and 10 (every event to 1 or 10 endpoints), from the first
//!   event published to the last delivery, the median of three runs;
//! - event-to-delivery latency (p50, p99) at half of that peak;
//! - isolation: one healthy endpoint's latency alone, and beside 100 endpoints that never answer
//!   (three rounds of each, interleaved; the medians).
//!
//! Prints figures; asserts nothing about them. Settings take `BENCH_WEBHOOK_<SECTION>__<KEY>`
//! overrides (`BENCH_WEBHOOK_DELIVERY__MAX_IN_FLIGHT_PER_ENDPOINT=32`).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use events::catalogue::{ApplicationRegistered, ArticlePublished};
use events::{Bus, Event};
use runtime::Deps;
use serde_json::{Value, json};
use settings::Span;
use test_support::{As, Backend, Db, IDENTITY_SECRET, Signed, bus, served};
use tokio_util::sync::CancellationToken;

// The service's binary allocates with mimalloc; so does the service here.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Arrivals: (endpoint path, event-to-delivery latency).
#[derive(Default)]
struct Arrivals(Mutex<Vec<(String, Duration)>>);

async fn arrive(arrivals: web::Data<Arrivals>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let now = chrono::Utc::now();
    let sent: Value = serde_json::from_slice(&body).unwrap_or_default();
    let at = sent["timestamp"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let latency = at.map_or(Duration::ZERO, |t| (now - t.to_utc()).to_std().unwrap_or_default());
    arrivals.0.lock().unwrap().push((req.path().to_owned(), latency));
    HttpResponse::Ok().finish()
}

fn receiver() -> (String, Arc<Arrivals>) {
    let arrivals = web::Data::new(Arrivals::default());
    let data = arrivals.clone();
    let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(arrive)))
        .workers(2)
        .backlog(4096)
        .bind(("127.0.0.1", 0))
        .unwrap();
    let base = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());
    (base, arrivals.into_inner())
}

/// Accepts connections and never answers: an endpoint that times out.
async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}/never")
}

struct Service {
    api: Signed,
    bus: Arc<dyn Bus>,
    shutdown: CancellationToken,
    _db: Db,
}

async fn service(timeout: Span) -> Service {
    let bus = bus(Backend::Postgres, &test_support::unique("bench-webhook"), "webhook");
    let db = Db::create(Backend::Postgres);
    let shutdown = CancellationToken::new();
    let settings = settings::changed(webhook::DEFAULTS, |s: &mut webhook::Settings| {
        s.http.port = 0;
        s.database.url = db.url().into();
        s.database.max_connections = 16;
        s.identity.secret = IDENTITY_SECRET.into();
        test_support::use_cache(Backend::Postgres, &mut s.cache, "bench");
        s.delivery.timeout = timeout;
        s.webhook.max_endpoints_per_application = 200;
        s.delivery.lease = Span::from_secs(60);
    })
    .unwrap();
    let deps = Deps {
        bus: bus.clone(),
        shutdown: shutdown.clone(),
    };
    let started = webhook::start(settings, deps).await.unwrap();
    let api = Signed::new(served(started));
    let registered = ApplicationRegistered {
        client_id: "reader".parse().unwrap(),
        owner_id: "owner".parse().unwrap(),
        name: "Reader".into(),
        scopes: vec!["blog:read".into()],
    };
    bus.publish(&[Event::new("/auth", None, &registered).unwrap()])
        .await
        .unwrap();
    Service {
        api,
        bus,
        shutdown,
        _db: db,
    }
}

impl Service {
    async fn endpoint(&self, url: &str) {
        let who = As {
            subject: "reader",
            scope: "webhooks:manage",
        };
        let body = json!({"url": url, "event_types": ["article.published"]});
        let started = Instant::now();
        loop {
            let (status, answer, _) = self
                .api
                .call_from("reader", "POST", "/webhooks/endpoints", who, Some(body.clone()), &[])
                .await;
            match status {
                201 => return,
                404 if started.elapsed() < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                _ => panic!("endpoint not created: {status} {answer}"),
            }
        }
    }

    async fn publish(&self, n: usize) {
        let events: Vec<Event> = (0..n)
            .map(|i| {
                let article = ArticlePublished {
                    article_id: (i as i64 + 1).try_into().unwrap(),
                    author_id: "ana".parse().unwrap(),
                    title: "Bench".into(),
                    locale: "en".into(),
                    category: "news".into(),
                    published_at: storage::now_millis(),
                };
                Event::new("/blog", Some(i.to_string()), &article).unwrap()
            })
            .collect();
        self.bus.publish(&events).await.unwrap();
    }

    /// Publishes `per_second` events a second for `secs` seconds, in 10 ms ticks.
    async fn publish_at(&self, per_second: f64, secs: u64) {
        let started = Instant::now();
        let mut sent = 0usize;
        while started.elapsed() < Duration::from_secs(secs) {
            let due = (started.elapsed().as_secs_f64() * per_second) as usize;
            if due > sent {
                self.publish(due - sent).await;
                sent = due;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn wait_for(arrivals: &Arrivals, n: usize, within: Duration) -> bool {
    let started = Instant::now();
    while arrivals.0.lock().unwrap().len() < n {
        if started.elapsed() > within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn latencies(arrivals: &Arrivals, path: Option<&str>) -> (Duration, Duration, usize) {
    let mut all: Vec<Duration> = arrivals
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| path.is_none_or(|want| p == want))
        .map(|(_, l)| *l)
        .collect();
    all.sort_unstable();
    (percentile(&all, 0.5), percentile(&all, 0.99), all.len())
}

async fn peak(fan_out: usize, events: usize) -> f64 {
    let svc = service(Span::from_secs(15)).await;
    let (base, arrivals) = receiver();
    for i in 0..fan_out {
        svc.endpoint(&format!("{base}/e{i}")).await;
    }
    // Warm the pools, then measure.
    svc.publish(20).await;
    assert!(
        wait_for(&arrivals, 20 * fan_out, Duration::from_secs(30)).await,
        "warm-up deliveries"
    );
    arrivals.0.lock().unwrap().clear();
    let started = Instant::now();
    let mut left = events;
    while left > 0 {
        let n = left.min(500);
        svc.publish(n).await;
        left -= n;
    }
    let published = started.elapsed();
    let total = events * fan_out;
    let done = wait_for(&arrivals, total, Duration::from_secs(300)).await;
    let rate = arrivals.0.lock().unwrap().len() as f64 / started.elapsed().as_secs_f64();
    println!(
        "peak, fan-out {fan_out:>2}: {events} events (published in {:.2} s), {total} deliveries{} in {:.2} s: {rate:.0} deliveries/s",
        published.as_secs_f64(),
        if done { "" } else { " (not all arrived)" },
        started.elapsed().as_secs_f64()
    );
    svc.shutdown.cancel();
    rate
}

async fn at_half(fan_out: usize, peak: f64) {
    let svc = service(Span::from_secs(15)).await;
    let (base, arrivals) = receiver();
    for i in 0..fan_out {
        svc.endpoint(&format!("{base}/e{i}")).await;
    }
    let per_second = peak / 2.0 / fan_out as f64;
    svc.publish_at(per_second, 10).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (p50, p99, n) = latencies(&arrivals, None);
    println!(
        "half of peak, fan-out {fan_out:>2}: {per_second:.0} events/s = {:.0} deliveries/s for 10 s ({n} arrived): event to delivery p50 {:.1} ms, p99 {:.1} ms",
        per_second * fan_out as f64,
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    svc.shutdown.cancel();
}

async fn isolation(bad: usize, per_second: f64, secs: u64) -> (Duration, Duration) {
    let svc = service(Span::from_secs(5)).await;
    let (base, arrivals) = receiver();
    svc.endpoint(&format!("{base}/healthy")).await;
    for _ in 0..bad {
        svc.endpoint(&black_hole().await).await;
    }
    svc.publish_at(per_second, secs).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (p50, p99, n) = latencies(&arrivals, Some("/healthy"));
    println!(
        "isolation, healthy endpoint beside {bad:>3} that never answer (timeout 5 s): {per_second:.0} events/s for {secs} s, {n} delivered: p50 {:.1} ms, p99 {:.1} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    svc.shutdown.cancel();
    (p50, p99)
}

/// `BENCH_ONLY=peak|half|isolation` runs one part (`half` measures its own peaks first).
fn runs(part: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| only == part || (only == "half" && part == "peak"))
}

/// The median of three runs of [`peak`].
async fn median_peak(fan_out: usize, events: usize) -> f64 {
    let mut rates = Vec::new();
    for _ in 0..3 {
        rates.push(peak(fan_out, events).await);
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "peak, fan-out {fan_out:>2}: median of 3 runs {:.0} deliveries/s",
        rates[1]
    );
    rates[1]
}

#[tokio::main]
async fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let events = if quick { 1_000 } else { 10_000 };
    if runs("peak") {
        let one = median_peak(1, events).await;
        let ten = median_peak(10, events / 5).await;
        if runs("half") {
            at_half(1, one).await;
            at_half(10, ten).await;
        }
    }
    if runs("isolation") {
        // A p99 of 750 deliveries moves with the machine's other work: three rounds, alone and
        // beside interleaved, and the median of each.
        let secs = if quick { 5 } else { 15 };
        let (mut alone, mut beside) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            alone.push(isolation(0, 50.0, secs).await.1);
            beside.push(isolation(100, 50.0, secs).await.1);
        }
        alone.sort_unstable();
        beside.sort_unstable();
        println!(
            "isolation: median p99 alone {:.1} ms, beside 100 dead endpoints {:.1} ms: {:.2}×",
            alone[1].as_secs_f64() * 1e3,
            beside[1].as_secs_f64() * 1e3,
            beside[1].as_secs_f64() / alone[1].as_secs_f64().max(1e-6)
        );
    }
}
