//! The counters' and rate limiters' contracts, on real Redis and in process, and the entries.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use cache::{
    Counters, GcraPolicy, InProcessCounters, InProcessRates, RateLimiter, Redis, RedisCounters, RedisEntries,
    RedisRates,
};
use settings::TrustedCas;

async fn counts_within_a_window_then_resets(counters: &dyn Counters) {
    let window = Duration::from_millis(400);
    assert_eq!(counters.get("k").await.unwrap(), None);
    assert_eq!(counters.hit("k", window).await.unwrap().count, 1);
    let second = counters.hit("k", window).await.unwrap();
    assert_eq!(second.count, 2);
    assert!(second.remaining <= window && second.remaining > Duration::ZERO);
    assert_eq!(counters.get("k").await.unwrap().map(|w| w.count), Some(2));
    assert_eq!(
        counters.hit("other", window).await.unwrap().count,
        1,
        "keys are independent"
    );
    let many = counters
        .get_many(&["k".to_owned(), "nothing".to_owned(), "other".to_owned()])
        .await
        .unwrap();
    assert_eq!(
        many.iter().map(|w| w.map(|w| w.count)).collect::<Vec<_>>(),
        [Some(2), None, Some(1)],
        "in order, one answer a key"
    );
    tokio::time::sleep(window + Duration::from_millis(100)).await;
    assert_eq!(counters.get("k").await.unwrap(), None, "the window closed");
    assert_eq!(counters.hit("k", window).await.unwrap().count, 1, "a new window starts");
    counters.ping().await.unwrap();
}

async fn concurrent_hits_are_all_counted(counters: std::sync::Arc<dyn Counters>) {
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let counters = counters.clone();
            tokio::spawn(async move { counters.hit("race", Duration::from_secs(30)).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(counters.get("race").await.unwrap().map(|w| w.count), Some(50));
}

fn shared_redis() -> Arc<Redis> {
    let prefix = format!("{}:", test_support::unique("cache"));
    Arc::new(
        Redis::new(
            &test_support::redis_url(),
            &TrustedCas::default(),
            &prefix,
            Duration::from_secs(2),
        )
        .unwrap(),
    )
}

fn redis() -> RedisCounters {
    RedisCounters::new(shared_redis())
}

#[tokio::test]
async fn redis_counts_within_a_window_then_resets() {
    counts_within_a_window_then_resets(&redis()).await;
}

#[tokio::test]
async fn in_process_counts_within_a_window_then_resets() {
    counts_within_a_window_then_resets(&InProcessCounters::default()).await;
}

#[tokio::test]
async fn redis_concurrent_hits_are_all_counted() {
    concurrent_hits_are_all_counted(std::sync::Arc::new(redis())).await;
}

#[tokio::test]
async fn in_process_concurrent_hits_are_all_counted() {
    concurrent_hits_are_all_counted(std::sync::Arc::new(InProcessCounters::default())).await;
}

#[tokio::test]
async fn unreachable_redis_is_an_error_not_a_hang() {
    let redis = Arc::new(
        Redis::new(
            "redis://127.0.0.1:9",
            &TrustedCas::default(),
            "x:",
            Duration::from_millis(200),
        )
        .unwrap(),
    );
    let counters = RedisCounters::new(redis.clone());
    let started = std::time::Instant::now();
    assert!(counters.hit("k", Duration::from_secs(1)).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
    // Just after a failure, calls fail without waiting on the dead server again.
    let again = std::time::Instant::now();
    assert!(RedisEntries::new(redis).get("k").await.is_err());
    assert!(again.elapsed() < Duration::from_millis(100));
}

fn over_tls(cas: &str) -> RedisCounters {
    let cas = TrustedCas::try_from(cas.to_owned()).unwrap();
    let prefix = format!("{}:", test_support::unique("cache-tls"));
    RedisCounters::new(Arc::new(
        Redis::new(&test_support::tls().redis_url, &cas, &prefix, Duration::from_secs(2)).unwrap(),
    ))
}

#[tokio::test]
async fn rediss_counts_when_the_certificate_chains_to_the_configured_ca() {
    counts_within_a_window_then_resets(&over_tls(&test_support::tls().ca_pem)).await;
}

#[tokio::test]
async fn rediss_refuses_a_certificate_no_trusted_ca_signed() {
    let (_, foreign) = test_support::foreign_ca();
    for (cas, which) in [(foreign.as_str(), "another CA"), ("", "the system's roots")] {
        let refused = over_tls(cas).ping().await.expect_err(which);
        assert!(refused.to_string().contains("certificate"), "{which}: {refused}");
    }
}

async fn a_burst_then_refusals_with_retry_after(limiter: &dyn RateLimiter) {
    let policy = GcraPolicy { rate: 2.0, burst: 5 };
    for remaining in (0..5).rev() {
        let decision = limiter.check("client", &policy).await.unwrap();
        assert!(decision.allowed);
        assert_eq!(decision.remaining, remaining);
        assert_eq!(decision.limit, 5);
    }
    let refused = limiter.check("client", &policy).await.unwrap();
    assert!(!refused.allowed);
    assert!(refused.retry_after > Duration::from_millis(300) && refused.retry_after <= Duration::from_millis(500));
    assert!(
        limiter.check("another", &policy).await.unwrap().allowed,
        "keys are independent"
    );
    tokio::time::sleep(refused.retry_after + Duration::from_millis(20)).await;
    assert!(
        limiter.check("client", &policy).await.unwrap().allowed,
        "the budget refills"
    );
}

#[tokio::test]
async fn redis_rates_allow_a_burst_then_refuse() {
    a_burst_then_refusals_with_retry_after(&RedisRates::new(shared_redis())).await;
}

#[tokio::test]
async fn in_process_rates_allow_a_burst_then_refuse() {
    a_burst_then_refusals_with_retry_after(&InProcessRates::default()).await;
}

#[tokio::test]
async fn replicas_share_one_redis_budget() {
    let redis = shared_redis();
    let (a, b) = (RedisRates::new(redis.clone()), RedisRates::new(redis));
    let policy = GcraPolicy { rate: 1.0, burst: 4 };
    let mut allowed = 0;
    for i in 0..8 {
        let limiter = if i % 2 == 0 { &a } else { &b };
        allowed += usize::from(limiter.check("shared", &policy).await.unwrap().allowed);
    }
    assert_eq!(allowed, 4);
}

#[tokio::test]
async fn redis_entries_expire_and_scan_by_prefix() {
    let entries = RedisEntries::new(shared_redis());
    entries.set("rev:a", b"1", Duration::from_secs(30)).await.unwrap();
    entries.set("rev:b", b"2", Duration::from_millis(50)).await.unwrap();
    entries.set("tok:c", b"3", Duration::from_secs(30)).await.unwrap();
    assert_eq!(entries.get("tok:c").await.unwrap().as_deref(), Some(&b"3"[..]));
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(entries.get("rev:b").await.unwrap(), None);
    assert_eq!(
        entries.scan("rev:").await.unwrap(),
        vec![("rev:a".to_owned(), b"1".to_vec())]
    );
    entries.ping().await.unwrap();
}
