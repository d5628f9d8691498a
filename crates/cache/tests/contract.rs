//! The counters' contract, on real Redis and in process.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use cache::{Counters, InProcessCounters, RedisCounters};

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

fn redis() -> RedisCounters {
    RedisCounters::new(
        &test_support::redis_url(),
        &format!("{}:", test_support::unique("cache")),
    )
    .unwrap()
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
    let counters = RedisCounters::new("redis://127.0.0.1:9", "x:").unwrap();
    let started = std::time::Instant::now();
    assert!(counters.hit("k", Duration::from_secs(1)).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
}
