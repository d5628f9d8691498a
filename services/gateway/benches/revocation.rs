//! `make bench`: how soon a revocation reaches the other gateway replica. Auth and
//! introspection on PostgreSQL with RabbitMQ (in this process), two gateway processes sharing
//! Redis. Per round: a fresh token is used once through each replica (so both have it cached),
//! revoked at auth (RFC 7009), and replica B is polled until it refuses the token; the time
//! from the revoke response to B's first refusal is recorded. `BENCH_REVOCATIONS` (1,000).

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../tests/api/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{call, gateway, upstream};
use test_support::platform::{self, Backend, Platform};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let rounds = std::env::var("BENCH_REVOCATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        let p = Platform::start(Backend::Postgres).await;
        let prefix = format!("{}:", test_support::unique("bench"));
        let up = upstream();
        let a = gateway(&p, &test_support::redis_url(), &prefix, &up).await;
        let b = gateway(&p, &test_support::redis_url(), &prefix, &up).await;
        let app = p
            .application(json!({"name": "Revocations", "scopes": ["profile"]}))
            .await;
        let mut reach = Vec::with_capacity(rounds);
        let mut polls = 0_usize;
        for _ in 0..rounds {
            let token = p.token(&app, "profile").await;
            assert_eq!(call(&p, &a, &token).await.0, 200);
            assert_eq!(call(&p, &b, &token).await.0, 200);
            p.revoke(&app, &token).await;
            let revoked = Instant::now();
            loop {
                polls += 1;
                if call(&p, &b, &token).await.0 == 401 {
                    break;
                }
                assert!(revoked.elapsed() < Duration::from_secs(10), "not refused within 10 s");
            }
            reach.push(revoked.elapsed());
        }
        reach.sort_unstable();
        let pct = |q: f64| reach[((reach.len() as f64 * q) as usize).min(reach.len() - 1)].as_secs_f64() * 1000.0;
        println!(
            "revocation reach, {rounds} revocations (revoke response → first refusal at the other gateway): \
             p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  ({:.1} polls per round)",
            pct(0.50),
            pct(0.99),
            reach.last().unwrap().as_secs_f64() * 1000.0,
            polls as f64 / rounds as f64
        );
    });
}
