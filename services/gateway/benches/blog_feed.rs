//! `make bench`: seed 002's `GET /blog` through the gateway, as partners call it. Auth,
//! introspection, the blog (PostgreSQL, 100,000 articles, 300,000 comments) and a gateway run
//! in this process on RabbitMQ and Redis; one user token, cached by the gateway after its first
//! use. `BENCH_CLIENTS` concurrent clients (32) read pages of 20 articles with their comments
//! for `BENCH_SECS` (10) per scenario; prints requests/s, p50, p99, the time spent in the blog
//! (its own latency histogram) and the statements its database ran per request (its
//! `db_statements_total`). The blog's pool has `BENCH_DB_CONNECTIONS` (4) connections: on two
//! cores shared with PostgreSQL, more connections contend more than they serve.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use runtime::Deps;
use test_support::platform::{self, Backend, Platform};
use test_support::{Db, IDENTITY_SECRET, served};
use tokio_util::sync::CancellationToken;

const ARTICLES: i64 = 100_000;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// 100 authors, 100,000 articles over three categories and two locales, three comments each.
fn seed(url: &str) {
    let mut conn = PgConnection::establish(url).unwrap();
    conn.batch_execute(&format!(
        "INSERT INTO categories (name) VALUES ('tech'), ('sport');
         INSERT INTO authors (user_id, username, group_id, avatar, updated_at)
           SELECT 'bench-' || n, 'author' || n, 1, 'https://cdn.example.com/' || n || '.png', 0
           FROM generate_series(1, 100) AS n;
         INSERT INTO articles (account_id, locales_id, blog_category_id, title, content, create_timestamp, modify_timestamp, search_text)
           SELECT 1 + n % 100, 1 + n % 2, 1 + n % 3, 'Article ' || n,
                  repeat('Lorem ipsum dolor sit amet. ', 20), 1700000000000 + n * 1000, 1700000000000 + n * 1000,
                  lower('Article ' || n || chr(10) || repeat('Lorem ipsum dolor sit amet. ', 20))
           FROM generate_series(1, {ARTICLES}) AS n;
         INSERT INTO comments (article_id, account_id, content, create_timestamp, modify_timestamp)
           SELECT a, 1 + (a + c) % 100, 'Comment ' || c || ' on ' || a, 1700000000000 + a * 1000 + c, 1700000000000 + a * 1000 + c
           FROM generate_series(1, {ARTICLES}) AS a, generate_series(1, 3) AS c;
         ANALYZE;"
    ))
    .unwrap();
}

/// The blog's statement count and the total seconds it spent answering `GET /blog`.
async fn blog_counters(http: &reqwest::Client, blog: &str) -> (f64, f64) {
    let text = http
        .get(format!("{blog}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    (
        value("db_statements_total"),
        value("http_request_duration_seconds_sum{method=\"GET\",route=\"/blog\""),
    )
}

struct Run {
    requests: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

/// `clients` loops reading `{feed}&page=…`, pages 1 to `pages` in turn, for `secs`.
async fn load(feed: &str, pages: usize, token: &str, clients: usize, secs: u64) -> Run {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (http, stop, token, feed) = (http.clone(), stop.clone(), token.to_owned(), feed.to_owned());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = client;
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let url = format!("{feed}&page={}", 1 + n % pages);
                    let res = http.get(url).bearer_auth(&token).send().await.unwrap();
                    assert_eq!(res.status(), 200);
                    let body = res.bytes().await.unwrap();
                    assert!(body.len() > 1000);
                    latencies.push(sent.elapsed());
                    n += clients;
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
    Run {
        requests: latencies.len(),
        latencies,
        elapsed: started.elapsed(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
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
        let blog_db = Db::create(Backend::Postgres);
        let blog_settings = settings::changed(blog::DEFAULTS, |s: &mut blog::Settings| {
            s.http.port = 0;
            s.database.url = blog_db.url().into();
            s.database.max_connections = env_or("BENCH_DB_CONNECTIONS", 4_u32);
            s.identity.secret = IDENTITY_SECRET.into();
        })
        .unwrap();
        let deps = |name: &str| Deps {
            bus: test_support::bus(Backend::Postgres, &p.exchange, name),
            shutdown: shutdown.clone(),
        };
        let blog = served(blog::start(blog_settings, deps("blog")).await.unwrap());
        let seeding = Instant::now();
        let url = blog_db.url();
        tokio::task::spawn_blocking(move || seed(&url)).await.unwrap();
        println!("seeded {ARTICLES} articles and {} comments in {:.1} s", ARTICLES * 3, seeding.elapsed().as_secs_f64());
        let route = gateway::Route {
            prefix: "/blog".into(),
            upstream: blog.clone(),
            timeout: settings::Span::from_secs(10),
            ..gateway::Route::default()
        };
        let gw = p.gateway_settings(vec![route], |_| {});
        let gw = served(gateway::start(gw, deps("gateway")).await.unwrap());
        let token = p.login(platform::ADMIN.0, platform::ADMIN.1).await;
        let http = reqwest::Client::new();

        let scenarios = [
            ("newest page", format!("{gw}/blog?size=20"), 1),
            ("pages 1-50", format!("{gw}/blog?size=20"), 50),
            ("category filter, pages 1-50", format!("{gw}/blog?category=2"), 50),
        ];
        println!(
            "GET /blog through the gateway, pages of 20 with up to 20 comments each; {clients} clients, {secs} s each, {} database connections",
            env_or("BENCH_DB_CONNECTIONS", 4_u32)
        );
        for (name, feed, pages) in scenarios {
            load(&feed, pages, &token, clients, 1).await;
            let before = blog_counters(&http, &blog).await;
            let run = load(&feed, pages, &token, clients, secs).await;
            let after = blog_counters(&http, &blog).await;
            let requests = run.requests as f64;
            println!(
                "  {name:<30} {:>7.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   in the blog {:>5.2} ms   {:.2} statements/request",
                requests / run.elapsed.as_secs_f64(),
                percentile(&run.latencies, 0.50).as_secs_f64() * 1000.0,
                percentile(&run.latencies, 0.99).as_secs_f64() * 1000.0,
                (after.1 - before.1) / requests * 1000.0,
                (after.0 - before.0) / requests,
            );
        }
        shutdown.cancel();
    });
}
