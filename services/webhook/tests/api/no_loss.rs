//! Nothing is lost: 5,000 events flow to an endpoint while the webhook service (its own
//! process) is killed with SIGKILL and started again, and, separately, while RabbitMQ restarts.
//! Every message reaches the receiver at least once; duplicates are counted and printed
//! (receivers deduplicate by `webhook-id`). PostgreSQL and RabbitMQ, as in production.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use events::catalogue::{ApplicationRegistered, ArticlePublished};
use events::{Bus, Event};
use serde_json::json;
use test_support::receiver::Receiver;
use test_support::{As, Backend, Db, IDENTITY_SECRET, Signed};

const EVENTS: usize = 5_000;

/// The webhook binary on PostgreSQL, RabbitMQ and Redis, with a short retry schedule.
struct Process {
    child: Child,
    base: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Setup {
    db: Db,
    exchange: String,
    prefix: String,
}

impl Setup {
    fn new() -> Self {
        Self {
            db: Db::create(Backend::Postgres),
            exchange: test_support::unique("no-loss"),
            prefix: format!("{}:", test_support::unique("no-loss")),
        }
    }

    async fn spawn(&self) -> Process {
        let port = test_support::free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_webhook"))
            .env("WEBHOOK_HTTP__PORT", port.to_string())
            .env("WEBHOOK_DATABASE__URL", self.db.url())
            .env("WEBHOOK_BUS__KIND", "rabbitmq")
            .env("WEBHOOK_BUS__URL", test_support::amqp_url())
            .env("WEBHOOK_BUS__EXCHANGE", &self.exchange)
            .env("WEBHOOK_CACHE__KIND", "redis")
            .env("WEBHOOK_CACHE__URL", test_support::redis_url())
            .env("WEBHOOK_CACHE__PREFIX", &self.prefix)
            .env("WEBHOOK_IDENTITY__SECRET", IDENTITY_SECRET)
            .env(
                "WEBHOOK_DELIVERY__SCHEDULE",
                r#"["0s", "200ms", "500ms", "1s", "2s", "2s", "2s", "2s", "2s", "2s"]"#,
            )
            .env("WEBHOOK_DELIVERY__POLL_INTERVAL", "100ms")
            .env("WEBHOOK_DELIVERY__TIMEOUT", "5s")
            .env("WEBHOOK_DELIVERY__LEASE", "8s")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::inherit())
            .spawn()
            .expect("the webhook binary");
        let base = format!("http://127.0.0.1:{port}");
        test_support::wait_ready(&base, "the webhook service").await;
        Process { child, base }
    }
}

fn article(id: usize) -> Event {
    let article = ArticlePublished {
        article_id: (id as i64).try_into().unwrap(),
        author_id: "ana".parse().unwrap(),
        title: format!("Article {id}"),
        locale: "en".into(),
        category: "news".into(),
        published_at: storage::now_millis(),
    };
    Event::new("/blog", Some(id.to_string()), &article).unwrap()
}

/// Publishes as an outbox relay does: a batch the broker did not confirm is sent again.
async fn publish(bus: &Arc<dyn Bus>, events: &[Event]) {
    let started = Instant::now();
    while let Err(error) = bus.publish(events).await {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the broker never came back: {error}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Subscribes an endpoint at `receiver` to articles, once the service knows the application;
/// its id.
async fn subscribe(process: &Process, bus: &Arc<dyn Bus>, receiver: &Receiver) -> String {
    let registered = ApplicationRegistered {
        client_id: "reader".parse().unwrap(),
        owner_id: "owner".parse().unwrap(),
        name: "Reader".into(),
        scopes: vec!["blog:read".into()],
    };
    publish(bus, &[Event::new("/auth", None, &registered).unwrap()]).await;
    let api = Signed::new(process.base.clone());
    let who = As {
        subject: "reader",
        scope: "webhooks:manage",
    };
    let body = json!({"url": receiver.url, "event_types": ["article.published"]});
    let started = Instant::now();
    loop {
        let (status, answer, _) = api
            .call_from("reader", "POST", "/webhooks/endpoints", who, Some(body.clone()), &[])
            .await;
        if status == 201 {
            return answer["data"]["id"].as_str().unwrap().to_owned();
        }
        assert!(
            status == 404 && started.elapsed() < Duration::from_secs(10),
            "{status} {answer}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until every article reached the receiver; prints what arrived.
async fn every_article_arrives(receiver: &Receiver, what: &str) {
    let started = Instant::now();
    loop {
        let received = receiver.received();
        let ids: HashSet<i64> = received
            .iter()
            .map(|r| r.json()["data"]["article_id"].as_i64().unwrap())
            .collect();
        let messages: HashSet<&str> = received.iter().map(|r| r.header("webhook-id")).collect();
        if ids.len() == EVENTS {
            println!(
                "{what}: {EVENTS} events, {} requests, {} distinct webhook-ids, {} duplicate requests, in {:.1} s",
                received.len(),
                messages.len(),
                received.len() - EVENTS,
                started.elapsed().as_secs_f64()
            );
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "{what}: {} of {EVENTS} articles arrived",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_service_loses_no_message() {
    let setup = Setup::new();
    let bus = test_support::bus(Backend::Postgres, &setup.exchange, "publisher");
    let receiver = Receiver::start();
    let mut process = setup.spawn().await;
    subscribe(&process, &bus, &receiver).await;
    let events: Vec<Event> = (1..=EVENTS).map(article).collect();
    for (i, batch) in events.chunks(100).enumerate() {
        publish(&bus, batch).await;
        if i == 15 {
            // SIGKILL: no drain, no acknowledgement, leases held.
            process.child.kill().unwrap();
            process.child.wait().unwrap();
            process = setup.spawn().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    every_article_arrives(&receiver, "SIGKILL and restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_work_and_never_make_an_attempt_twice() {
    let setup = Setup::new();
    let bus = test_support::bus(Backend::Postgres, &setup.exchange, "publisher");
    let receiver = Receiver::start();
    let (one, two) = (setup.spawn().await, setup.spawn().await);
    let endpoint = subscribe(&one, &bus, &receiver).await;
    let events: Vec<Event> = (1..=EVENTS).map(article).collect();
    for batch in events.chunks(250) {
        publish(&bus, batch).await;
    }
    every_article_arrives(&receiver, "two replicas").await;
    // A message reaches the receiver again only after an attempt that failed (it answered
    // after the timeout): never because two replicas made the same attempt.
    let received = receiver.received();
    let ids: HashSet<&str> = received.iter().map(|r| r.header("webhook-id")).collect();
    let url = setup.db.url();
    let db = tokio::task::spawn_blocking(move || storage::Database::connect(&url, &storage::PoolSettings::default()))
        .await
        .unwrap()
        .unwrap();
    let failed = webhook::store::AttemptFilter {
        succeeded: Some(false),
        ..Default::default()
    };
    let (_, failures) = db
        .run(move |c| Ok(webhook::store::attempts_of(c, &endpoint, &failed, 0, 1)?))
        .await
        .unwrap();
    let again = received.len() - ids.len();
    println!("two replicas: {again} messages sent again, {failures} failed attempts logged");
    assert!(
        again as i64 <= failures,
        "{again} messages sent again but {failures} failed attempts"
    );
    for replica in [&one, &two] {
        let metrics = reqwest::get(format!("{}/metrics", replica.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let made = metrics
            .lines()
            .find(|l| l.starts_with("webhook_attempts_total{outcome=\"succeeded\","))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0);
        println!("replica {}: {made} deliveries", replica.base);
        assert!(made > 0, "each replica delivers a share");
    }
}

pub mod rabbitmq_restart {
    use super::*;

    /// It restarts the shared test broker, so `make test` runs it alone, after the other tests.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broker_restart_loses_no_message() {
        let setup = Setup::new();
        let bus = test_support::bus(Backend::Postgres, &setup.exchange, "publisher");
        let receiver = Receiver::start();
        let process = setup.spawn().await;
        subscribe(&process, &bus, &receiver).await;
        let events: Vec<Event> = (1..=EVENTS).map(article).collect();
        let (first, rest) = events.split_at(EVENTS / 3);
        for batch in first.chunks(100) {
            publish(&bus, batch).await;
        }
        let restart = tokio::spawn(async {
            let status = tokio::process::Command::new("bash")
                .arg(test_support::servers_script())
                .args(["restart", "rabbitmq"])
                .status()
                .await
                .expect("run deploy/servers.sh");
            assert!(status.success(), "deploy/servers.sh restart rabbitmq failed");
        });
        for batch in rest.chunks(100) {
            publish(&bus, batch).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        restart.await.unwrap();
        every_article_arrives(&receiver, "RabbitMQ restart").await;
    }
}
