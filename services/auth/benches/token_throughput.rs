//! `make bench`: client_credentials tokens issued per second over HTTP at a fixed concurrency,
//! with p50/p99 latency, on SQLite and on PostgreSQL; then JWT signatures and verifications per
//! second. The load generator runs in this process, on the same two cores as the server.
//! `BENCH_REQUESTS` (default 20,000) and `BENCH_CONCURRENCY` (default 32) tune the run.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use events::InProcessBus;
use runtime::Deps;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn start(db_url: &str) -> (String, CancellationToken) {
    let settings = settings::changed(auth::DEFAULTS, |s: &mut auth::Settings| {
        s.http.port = 0;
        s.database.url = db_url.into();
        s.bootstrap.admin_username = "admin".into();
        s.bootstrap.admin_password = "admin-password".into();
    })
    .unwrap();
    let shutdown = CancellationToken::new();
    let started = auth::start(
        settings,
        Deps {
            bus: Arc::new(InProcessBus::new()),
            shutdown: shutdown.clone(),
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", started.http.addr);
    tokio::spawn(started.stopped());
    (base, shutdown)
}

async fn client(http: &reqwest::Client, base: &str) -> (String, String) {
    let login: Value = http
        .post(format!("{base}/oauth"))
        .basic_auth("admin", Some("admin-password"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();
    let app: Value = http
        .post(format!("{base}/applications"))
        .bearer_auth(token)
        .json(&json!({"name": "bench", "scopes": ["profile"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        app["data"]["client_id"].as_str().unwrap().to_owned(),
        app["data"]["client_secret"].as_str().unwrap().to_owned(),
    )
}

async fn load(name: &str, db_url: &str) {
    let (base, shutdown) = start(db_url).await;
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
    let (id, secret) = client(&http, &base).await;
    let (requests, concurrency) = (env("BENCH_REQUESTS", 20_000), env("BENCH_CONCURRENCY", 32));
    let url = format!("{base}/oauth2/token");
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (http, url, id, secret) = (http.clone(), url.clone(), id.clone(), secret.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for _ in (w..requests).step_by(concurrency) {
                    let t = Instant::now();
                    let res = http
                        .post(&url)
                        .basic_auth(&id, Some(&secret))
                        .form(&[("grant_type", "client_credentials")])
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 200);
                    res.bytes().await.unwrap();
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests);
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct =
        |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "client_credentials over HTTP, {name:<10} {requests} requests, concurrency {concurrency}: {:>6.0} tokens/s  p50 {:.2} ms  p99 {:.2} ms",
        requests as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99)
    );
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
}

async fn jwt(db_url: &str) {
    let db = storage::Database::connect(db_url, &storage::PoolSettings::default()).unwrap();
    db.migrate(&[&events::MIGRATIONS, &auth::MIGRATIONS]).await.unwrap();
    let keys = auth::keys::KeyRing::load(
        &db,
        "http://127.0.0.1:8080",
        "partner-api",
        3_600_000,
        auth::keys::SigningAlgorithm::EdDSA,
    )
    .await
    .unwrap();
    let now = storage::now_millis() / 1000;
    let claims = auth::keys::AccessClaims {
        iss: "http://127.0.0.1:8080".into(),
        user: None,
        aud: "partner-api".into(),
        exp: now + 3600,
        iat: now,
        nbf: now,
        jti: ids::Jti::mint(),
        client_id: "client".parse().unwrap(),
        scope: "profile".into(),
        username: None,
        allowed_networks: Vec::new(),
    };
    let (n, started) = (20_000, Instant::now());
    let mut token = String::new();
    for _ in 0..n {
        token = keys.sign(&claims).unwrap();
    }
    let signs = n as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for _ in 0..n {
        keys.verify(&token).unwrap();
    }
    let verifies = n as f64 / started.elapsed().as_secs_f64();
    println!("EdDSA JWT, one core: {signs:>8.0} signatures/s  {verifies:>8.0} verifications/s");
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sqlite = test_support::TestSqlite::create();
        jwt(&sqlite.url).await;
        load("SQLite", &sqlite.url).await;
        let pg = test_support::TestDatabase::create();
        load("PostgreSQL", &pg.url).await;
    });
}
