//! `make bench`: dispatch throughput to the channels' stand-ins, the service in process on
//! PostgreSQL, RabbitMQ and Redis: `BENCH_NOTIFICATIONS` (2,000) SMS to the stand-in SMSC (npm
//! `smpp`, one transceiver bind; delivered on its receipts) and as many e-mails to aiosmtpd.
//! Notifications are accepted first, as fast as 16 clients can, then dispatched; prints
//! accepted/s and, per channel, sent/s and delivered/s from the first acceptance. Then SMS to an
//! SMSC `BENCH_SMSC_LATENCY_MS` (20) away that throttles past `BENCH_SMSC_WINDOW` (10)
//! unanswered submit_sm: the rate against the window's bound (window / latency). Asserts only
//! that every one arrived. Needs `deploy/stand-ins.sh` (run by `make test` and `make bench`).

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../tests/api/stand_ins.rs"]
#[allow(dead_code)]
mod stand_ins;

use std::sync::Arc;
use std::time::{Duration, Instant};

use events::catalogue::{ApplicationRegistered, ConsentGranted, UserRegistered, UserUpdated};
use events::{Bus, Event, EventPayload};
use runtime::Deps;
use serde_json::{Value, json};
use stand_ins::{Smsc, SmtpServer};
use test_support::{As, Backend, Db, IDENTITY_SECRET, Signed, served};
use tokio_util::sync::CancellationToken;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const CLINIC: As<'static> = As {
    subject: "clinic",
    scope: "notifications:send",
};

async fn publish<P: EventPayload>(bus: &Arc<dyn Bus>, payload: &P) {
    bus.publish(&[Event::new("/auth", None, payload).unwrap()])
        .await
        .unwrap();
}

async fn post(api: &Signed, path: &str, body: Value) -> (u16, Value) {
    let (status, answer, _) = api.call_from("clinic", "POST", path, CLINIC, Some(body), &[]).await;
    (status, answer)
}

/// The number of notifications that reached `status`, from the service's own metrics.
async fn outcomes(api: &Signed, status: &str) -> f64 {
    let text = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("notifications_outcomes_total{") && l.contains(&format!("status=\"{status}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn sends(api: &Signed, channel: &str) -> f64 {
    let text = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("notifications_sends_total{")
                && l.contains(&format!("channel=\"{channel}\""))
                && l.contains("outcome=\"sent\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Accepts `n` notifications on `channel` with 16 clients; the time it took.
async fn accept(api: &Signed, body: &Value, channel: &str, n: usize) -> Duration {
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (api, body, next, channel) = (
                Signed::new(api.base.clone()),
                body.clone(),
                next.clone(),
                channel.to_owned(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    let mut body = body.clone();
                    body["parameters"]["notification"]["channel"] = json!(channel);
                    body["parameters"]["notification"]["message"] =
                        json!(format!("Recordatorio {i}: lunes 29-10 a las 9:15"));
                    let (status, answer) = post(&api, "/Services", body).await;
                    assert_eq!(status, 202, "{answer}");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

async fn until(what: &str, done: impl AsyncFn() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < Duration::from_secs(600), "{what} never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The service in process on PostgreSQL, RabbitMQ and Redis, sending SMS to `smsc` and mail
/// to `smtp`, with one provider whose user took a first SMS; and the body of its requests.
struct Served {
    api: Signed,
    body: Value,
    shutdown: CancellationToken,
    _db: Db,
}

async fn serve(smsc: &Smsc, smtp: &SmtpServer) -> Served {
    let db = Db::create(Backend::Postgres);
    let exchange = test_support::unique("bench-dispatch");
    let bus = test_support::bus(Backend::Postgres, &exchange, "notification-dispatch");
    let shutdown = CancellationToken::new();
    let settings = settings::changed(
        notification_dispatch::DEFAULTS,
        |s: &mut notification_dispatch::Settings| {
            s.http.port = 0;
            s.database.url = db.url().into();
            s.identity.secret = IDENTITY_SECRET.into();
            test_support::use_cache(Backend::Postgres, &mut s.cache, "bench");
            s.channels.sms = vec![smsc.provider("smsc")];
            s.channels.email = vec![smtp.provider("smtp")];
        },
    )
    .unwrap();
    let deps = Deps {
        bus: bus.clone(),
        shutdown: shutdown.clone(),
    };
    let started = notification_dispatch::start(settings, deps).await.unwrap();
    let api = Signed::new(served(started));
    let app = ApplicationRegistered {
        client_id: "clinic".parse().unwrap(),
        owner_id: "owner".parse().unwrap(),
        name: "Clinic".into(),
        scopes: vec!["notifications:send".into()],
    };
    publish(&bus, &app).await;
    let provider = loop {
        let (status, answer) = post(&api, "/providers", json!({})).await;
        if status == 201 {
            break answer["data"]["provider_id"].as_i64().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let service = json!({"name": "Turnos", "kinds": ["notification"], "channels": ["SMS", "EMAIL"]});
    let (_, created) = post(&api, &format!("/providers/{provider}/services"), service).await;
    let registered = UserRegistered {
        user_id: "ana".parse().unwrap(),
        username: "ana".into(),
        email: "ana@example.com".into(),
        registered_at: storage::now_millis(),
    };
    publish(&bus, &registered).await;
    let phone = UserUpdated {
        user_id: "ana".parse().unwrap(),
        username: "ana".into(),
        picture: None,
        group: None,
        phone: Some("+5491155550000".into()),
    };
    publish(&bus, &phone).await;
    let consent = ConsentGranted {
        user_id: "ana".parse().unwrap(),
        client_id: "clinic".parse().unwrap(),
        scopes: vec!["notifications:send".into()],
        granted_at: storage::now_millis(),
    };
    publish(&bus, &consent).await;
    let body = json!({"provider_id": provider, "service_token": created["data"]["service_token"], "service_id": created["data"]["service_id"],
        "parameters": {"destination": "ana", "notification": {"title": "Turno", "message": "", "channel": "SMS"}}});
    let mut probe = body.clone();
    probe["parameters"]["notification"]["message"] = json!("probe");
    until("the consent reaching the service", || async {
        post(&api, "/Services", probe.clone()).await.0 == 202
    })
    .await;
    until("the probe delivered", || async {
        outcomes(&api, "delivered").await >= 1.0
    })
    .await;
    Served {
        api,
        body,
        shutdown,
        _db: db,
    }
}

/// Accepts `n` SMS and waits for their receipts; accepted/s, submit_sm/s and delivered/s.
async fn sms(served: &Served, smsc: &Smsc, n: usize) -> (f64, f64, f64) {
    let (api, before) = (&served.api, smsc.submits().len());
    let delivered_before = outcomes(api, "delivered").await;
    let started = Instant::now();
    let accepting = accept(api, &served.body, "SMS", n).await;
    until("SMS delivered", || async {
        outcomes(api, "delivered").await - delivered_before >= n as f64
    })
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let submits = smsc.submits().len() - before;
    (
        n as f64 / accepting.as_secs_f64(),
        submits as f64 / elapsed,
        n as f64 / elapsed,
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let n = env_or("BENCH_NOTIFICATIONS", 2_000_usize);
        let (smsc, smtp) = (Smsc::start(), SmtpServer::start());
        let near = serve(&smsc, &smtp).await;
        println!("Dispatch to the stand-ins ({n} notifications per channel; PostgreSQL, RabbitMQ, Redis; one process)");
        let (accepted, submitted, delivered) = sms(&near, &smsc, n).await;
        println!(
            "  SMS   accepted {accepted:>6.0}/s   submit_sm {submitted:>6.0}/s   delivered (receipts) {delivered:>6.0}/s"
        );
        let started = Instant::now();
        let accepting = accept(&near.api, &near.body, "EMAIL", n).await;
        until("e-mails sent", || async { sends(&near.api, "EMAIL").await >= n as f64 }).await;
        let elapsed = started.elapsed();
        until("the SMTP server has them", || async { smtp.messages().len() >= n }).await;
        println!(
            "  EMAIL accepted {:>6.0}/s   sent (SMTP 250) {:>6.0}/s",
            n as f64 / accepting.as_secs_f64(),
            n as f64 / elapsed.as_secs_f64(),
        );
        near.shutdown.cancel();

        // An SMSC far away: its window, not the dispatcher, should bound the SMS rate.
        let latency = Duration::from_millis(env_or("BENCH_SMSC_LATENCY_MS", 20));
        let window = env_or("BENCH_SMSC_WINDOW", 10_usize);
        let far = Smsc::distant(latency, window);
        let served = serve(&far, &smtp).await;
        let (_, submitted, _) = sms(&served, &far, n).await;
        let bound = window as f64 / latency.as_secs_f64();
        let throttled = far.submits().iter().filter(|s| s["command_status"] != 0).count();
        println!(
            "  SMS to an SMSC {} ms away, window {window}: submit_sm {submitted:>6.0}/s of the window's {bound:.0}/s ({:.0}%), {throttled} throttled",
            latency.as_millis(),
            100.0 * submitted / bound,
        );
        served.shutdown.cancel();
    });
}
