//! What the gateway served each application reaches the bus as `gateway.usage` reports: per
//! API, with 4xx and 5xx counted and every request in a latency bucket, on the in-process bus
//! and on RabbitMQ.

use std::collections::BTreeMap;

use events::catalogue::UsageReported;
use serde_json::json;
use test_support::Watch;
use tokio_util::sync::CancellationToken;

use crate::platform::Backend;
use crate::resources::{deps, stack};

async fn usage_is_reported_per_application_and_api(backend: Backend) {
    let s = stack(backend).await;
    let shutdown = CancellationToken::new();
    let bus = deps(&s.p, "usage-watch", &shutdown).bus;
    let mut reports = Watch::start(&bus, &[<UsageReported as events::EventPayload>::TYPE], shutdown.clone()).await;
    let app =
        s.p.application(json!({"name": "Counted", "grant_types": ["password"], "scopes": ["profile", "blog:read"]}))
            .await;
    let ana = s.user("ana", &app, "profile blog:read").await;
    for _ in 0..3 {
        assert_eq!(s.call("GET", "/users/me", &ana, None).await.0, 200);
    }
    assert_eq!(s.call("GET", "/blog/articles/no-such-article", &ana, None).await.0, 404);
    assert_eq!(
        s.call("GET", "/users/me", "not-a-token", None).await.0,
        401,
        "no application: not counted"
    );
    // Reports come every 200 ms and add up; wait until they hold every request made above.
    let mut seen: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    let mut waited = 0;
    while seen.get("/users").map_or(0, |c| c.0) < 3 || !seen.contains_key("/blog") {
        let event = tokio::time::timeout(std::time::Duration::from_secs(5), reports.next("gateway.usage"))
            .await
            .expect("a usage report within 5 s");
        let report: UsageReported = event.payload().unwrap().unwrap();
        assert_eq!(report.latency_buckets.len(), 10);
        assert_eq!(
            report.latency_buckets.iter().sum::<i64>(),
            report.requests,
            "every request in one bucket"
        );
        if report.client_id == app.0 {
            let counts = seen.entry(report.api.clone()).or_default();
            counts.0 += report.requests;
            counts.1 += report.client_errors;
            counts.2 += report.server_errors;
        }
        waited += 1;
        assert!(waited < 100, "reports never added up: {seen:?}");
    }
    // `s.user` itself read /users/me until the profile existed: at least the three reads here.
    let users = seen["/users"];
    assert!(users.0 >= 3 && users.1 == 0 && users.2 == 0, "{seen:?}");
    assert_eq!(seen["/blog"], (1, 1, 0), "the 404 is a client error");
    shutdown.cancel();
}

#[tokio::test]
async fn usage_is_reported_per_application_and_api_sqlite() {
    usage_is_reported_per_application_and_api(Backend::Sqlite).await;
}

#[tokio::test]
async fn usage_is_reported_per_application_and_api_postgres() {
    usage_is_reported_per_application_and_api(Backend::Postgres).await;
}
