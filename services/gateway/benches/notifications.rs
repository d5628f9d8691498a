//! `make bench`: seed 004's `POST /Services` through the gateway, as service providers call it.
//! Auth, introspection, notification-dispatch and a gateway run in this process on PostgreSQL,
//! RabbitMQ and Redis; the provider's client token is cached by the gateway after its first use.
//! `BENCH_CLIENTS` concurrent clients (32) send notifications to a user who authorized the
//! provider, to the in-app inbox, for `BENCH_SECS` (10): prints accepted/s, p50 and p99, and how
//! long the dispatcher then took to deliver them all. Asserts only that each was accepted.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use runtime::Deps;
use serde_json::{Value, json};
use test_support::platform::{Backend, Platform};
use test_support::{Db, IDENTITY_SECRET, served};
use tokio_util::sync::CancellationToken;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

/// `clients` loops sending `POST /Services` for `secs`; the latencies, and the last id.
async fn load(url: &str, token: &str, body: &Value, clients: usize, secs: u64) -> (Vec<Duration>, Duration) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sequence = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (http, stop, sequence, token, url, body) = (
                http.clone(),
                stop.clone(),
                sequence.clone(),
                token.to_owned(),
                url.to_owned(),
                body.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let mut body = body.clone();
                    let n = sequence.fetch_add(1, Ordering::Relaxed);
                    body["parameters"]["notification"]["titulo"] = json!(format!("Turno {n}"));
                    let sent = Instant::now();
                    let res = http.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
                    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap_or_default());
                    res.bytes().await.unwrap();
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    latencies.sort();
    (latencies, started.elapsed())
}

/// The number of notifications delivered so far, from the service's own metric.
async fn delivered(http: &reqwest::Client, service: &str) -> f64 {
    let text = http
        .get(format!("{service}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("notifications_outcomes_total{") && l.contains("status=\"delivered\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (clients, secs) = (env_or("BENCH_CLIENTS", 32), env_or("BENCH_SECS", 10));
        let p = Platform::start(Backend::Postgres).await;
        let shutdown = CancellationToken::new();
        let db = Db::create(Backend::Postgres);
        let deps = |name: &str| Deps {
            bus: test_support::bus(Backend::Postgres, &p.exchange, name),
            shutdown: shutdown.clone(),
        };
        let dispatch = settings::changed(notification_dispatch::DEFAULTS, |s: &mut notification_dispatch::Settings| {
            s.http.port = 0;
            s.database.url = db.url().into();
            s.database.max_connections = env_or("BENCH_DB_CONNECTIONS", 8_u32);
            s.identity.secret = IDENTITY_SECRET.into();
            test_support::use_cache(Backend::Postgres, &mut s.cache, "bench");
        })
        .unwrap();
        let started = notification_dispatch::start(dispatch, deps("notification-dispatch"));
        let service = served(started.await.unwrap());
        let route = |prefix: &str| gateway::Route {
            prefix: prefix.into(),
            upstream: service.clone(),
            timeout: settings::Span::from_secs(10),
            scopes: vec!["notifications:send".into()],
            ..gateway::Route::default()
        };
        let gw = p.gateway_settings(vec![route("/Services"), route("/providers")], |_| {});
        let gw = served(gateway::start(gw, deps("gateway")).await.unwrap());
        let http = reqwest::Client::new();

        let clinic = p
            .application(json!({"name": "Clinic", "grant_types": ["password", "client_credentials"], "scopes": ["notifications:send"]}))
            .await;
        let token = p.token(&clinic, "notifications:send").await;
        let call = |path: &str, body: Value| {
            let req = http.post(format!("{gw}{path}")).bearer_auth(&token).json(&body);
            p.json(req)
        };
        let provider = loop {
            let (status, _, body) = call("/providers", json!({})).await;
            if status == 201 {
                break body["data"]["provider_id"].as_i64().unwrap();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let service_body = json!({"name": "Turnos", "kinds": ["notification"], "channels": ["INAPP"]});
        let (_, _, created) = call(&format!("/providers/{provider}/services"), service_body).await;
        p.register("ana").await;
        // Signing in to the clinic's application grants it notifications:send.
        let ana_token = p.password_token(&clinic, "ana", "ana-password-1", "notifications:send").await;
        let ana = test_support::claims_of(&ana_token).unwrap()["sub"].as_str().unwrap().to_owned();
        let body = json!({"provider_id": provider, "service_token": created["data"]["service_token"], "service_id": created["data"]["service_id"],
            "parameters": {"destination": ana, "notification": {"titulo": "Turno", "mensaje": "Oftalmologo Lunes 29-10 a las 9:15Hs.", "canal": "INAPP"}}});
        while call("/Services", body.clone()).await.0 != 202 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let url = format!("{gw}/Services");
        load(&url, &token, &body, clients, 1).await;
        let before = delivered(&http, &service).await;
        let (latencies, elapsed) = load(&url, &token, &body, clients, secs).await;
        let accepted = latencies.len();
        println!(
            "POST /Services through the gateway (PostgreSQL, RabbitMQ, Redis), {clients} clients, {secs} s: {:.0} accepted/s   p50 {:.2} ms   p99 {:.2} ms",
            accepted as f64 / elapsed.as_secs_f64(),
            percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        );
        let draining = Instant::now();
        while delivered(&http, &service).await - before < accepted as f64 {
            assert!(draining.elapsed() < Duration::from_secs(300), "not all delivered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "  delivered to the inbox {:.1} s after the last was accepted ({:.0} delivered/s over the whole run)",
            draining.elapsed().as_secs_f64(),
            accepted as f64 / (elapsed + draining.elapsed()).as_secs_f64()
        );
        shutdown.cancel();
    });
}
