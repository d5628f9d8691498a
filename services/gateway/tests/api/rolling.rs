//! A rolling restart under load loses nothing. The blog runs as two processes (the workspace's
//! binary, PostgreSQL, RabbitMQ) behind a gateway that takes them in turn and checks their
//! readiness. While clients write and read through the gateway, and events for the blog keep
//! arriving, each instance in turn gets SIGTERM (it answers not-ready, keeps serving through
//! its drain delay, finishes in-flight requests, settles its consumer, drains its outbox and
//! exits) and is started again. Every request must succeed, every article written must have
//! its `article.published`, and every event sent to the blog must have been handled.

use crate::platform;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use events::Event;
use events::catalogue::{ArticleDeleted, ArticlePublished, UserDeleted};
use gateway::{Addresses, UpstreamChecks};
use platform::{Backend, Platform};
use runtime::Deps;
use serde_json::{Value, json};
use test_support::{As, Db, IDENTITY_SECRET, Signed, Watch, served};
use tokio_util::sync::CancellationToken;

fn blog_binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_gateway")).with_file_name("blog");
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace` first",
        path.display()
    );
    path
}

struct Instance {
    port: u16,
    child: Option<Child>,
}

impl Instance {
    async fn start(port: u16, db: &str, exchange: &str) -> Self {
        let child = Command::new(blog_binary())
            .env("BLOG_DATABASE__URL", db)
            .env("PLATFORM_BUS__KIND", "rabbitmq")
            .env("PLATFORM_BUS__URL", test_support::amqp_url())
            .env("PLATFORM_BUS__EXCHANGE", exchange)
            .env("PLATFORM_IDENTITY__SECRET", IDENTITY_SECRET)
            .env("PLATFORM_HTTP__PORT", port.to_string())
            .env("PLATFORM_HTTP__WORKERS", "2")
            .env("PLATFORM_HTTP__DRAIN_DELAY", "1500ms")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the blog");
        let instance = Self {
            port,
            child: Some(child),
        };
        test_support::wait_ready(&instance.base(), "the blog").await;
        instance
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGTERM, then waits for the process to exit by itself.
    async fn stop(&mut self) {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let started = Instant::now();
        loop {
            if let Some(exit) = child.try_wait().unwrap() {
                assert!(exit.success(), "the blog exited with {exit}");
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the blog did not exit");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Default, Debug)]
struct Outcome {
    ok: usize,
    failures: Vec<String>,
    written: Vec<i64>,
}

#[tokio::test]
async fn a_rolling_restart_under_load_loses_no_request_and_no_event() {
    let p = Platform::start(Backend::Postgres).await;
    let blog_db = Db::create(Backend::Postgres);
    let (port_a, port_b) = (test_support::free_port(), test_support::free_port());
    let mut a = Instance::start(port_a, &blog_db.url(), &p.exchange).await;
    let mut b = Instance::start(port_b, &blog_db.url(), &p.exchange).await;
    let bus = test_support::bus(Backend::Postgres, &p.exchange, "test");
    let shutdown = CancellationToken::new();
    let mut events = Watch::start(&bus, &["article.*"], shutdown.clone()).await;

    let routes = vec![crate::support::route("/blog", "blog", 10)];
    let settings = p.gateway_settings(routes, |s| {
        s.http.workers = 2;
        s.upstreams
            .insert("blog".into(), Addresses::Many(vec![a.base(), b.base()]));
        s.upstream_checks = UpstreamChecks {
            interval: settings::Span::from_millis(200),
            timeout: settings::Span::from_millis(200),
        };
    });
    let deps = Deps {
        bus: test_support::bus(Backend::Postgres, &p.exchange, "gateway"),
        shutdown: shutdown.clone(),
    };
    let gw = served(gateway::start(settings, deps).await.unwrap());

    // A writer, and authors whose deletion the blog will learn of during the restart.
    p.register("roller").await;
    let app = p
        .application(json!({"name": "Load", "grant_types": ["password"], "scopes": ["blog:read", "blog:write"]}))
        .await;
    let token = p
        .password_token(&app, "roller", "roller-password-1", "blog:read blog:write")
        .await;
    let direct = Signed::new(a.base());
    let mut leaving = Vec::new();
    for i in 0..20 {
        let user = format!("leaving-{i}");
        let article =
            json!({"title": format!("by {user}"), "content": "soon gone", "locales_id": 1, "blog_category_id": 1});
        let (status, body, _) = direct
            .call(
                "POST",
                "/blog/articles",
                As {
                    subject: &user,
                    scope: "blog:write",
                },
                Some(article),
                &[],
            )
            .await;
        assert_eq!(status, 201, "{body}");
        leaving.push((user, body["data"]["id"].as_i64().unwrap()));
    }

    // Load: clients writing and reading through the gateway until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|client| {
            let (stop, token, gw) = (stop.clone(), token.clone(), gw.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut outcome = Outcome::default();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let article = json!({"title": format!("load {client}-{n}"), "content": "x", "locales_id": 1, "blog_category_id": 1});
                    match http.post(format!("{gw}/blog/articles")).bearer_auth(&token).json(&article).send().await {
                        Ok(res) if res.status().is_success() => {
                            let body: Value = res.json().await.unwrap_or(Value::Null);
                            outcome.ok += 1;
                            outcome.written.extend(body["data"]["id"].as_i64());
                        }
                        Ok(res) => outcome.failures.push(format!("POST: {}", res.status())),
                        Err(error) => outcome.failures.push(format!("POST: {error}")),
                    }
                    match http.get(format!("{gw}/blog?size=5")).bearer_auth(&token).send().await {
                        Ok(res) if res.status().is_success() => outcome.ok += 1,
                        Ok(res) => outcome.failures.push(format!("GET: {}", res.status())),
                        Err(error) => outcome.failures.push(format!("GET: {error}")),
                    }
                }
                outcome
            })
        })
        .collect();

    // Events for the blog while it restarts: each author's deletion.
    let publisher = {
        let (bus, leaving) = (bus.clone(), leaving.clone());
        tokio::spawn(async move {
            for (user, _) in leaving {
                let event = Event::new(
                    "/test",
                    Some(user.clone()),
                    &UserDeleted {
                        user_id: user.parse().unwrap(),
                    },
                )
                .unwrap();
                bus.publish(&[event]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    // The rolling restart: one instance at a time, the other serving.
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.stop().await;
    let a = Instance::start(port_a, &blog_db.url(), &p.exchange).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.stop().await;
    let b = Instance::start(port_b, &blog_db.url(), &p.exchange).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    publisher.await.unwrap();
    let mut total = Outcome::default();
    for client in clients {
        let outcome = client.await.unwrap();
        total.ok += outcome.ok;
        total.failures.extend(outcome.failures);
        total.written.extend(outcome.written);
    }
    println!(
        "{} requests succeeded, {} failed, {} articles written across the restart of both instances",
        total.ok,
        total.failures.len(),
        total.written.len()
    );
    assert!(total.failures.is_empty(), "requests lost: {:?}", total.failures);
    assert!(total.written.len() > 20, "the load was too light to show anything");

    // Every article written was published, and every deletion sent was handled.
    let mut published: HashSet<i64> = HashSet::new();
    let mut deleted: HashSet<i64> = HashSet::new();
    let expected_deleted: HashSet<i64> = leaving.iter().map(|(_, id)| *id).collect();
    let written: HashSet<i64> = total.written.iter().copied().collect();
    let started = Instant::now();
    while !(written.is_subset(&published) && expected_deleted.is_subset(&deleted)) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "events lost: {} articles not published, {} deletions not handled",
            written.difference(&published).count(),
            expected_deleted.difference(&deleted).count()
        );
        let event = events.next_any().await;
        if let Some(Ok(payload)) = event.payload::<ArticlePublished>() {
            published.insert(payload.article_id.get());
        }
        if let Some(Ok(payload)) = event.payload::<ArticleDeleted>() {
            deleted.insert(payload.article_id.get());
        }
    }
    drop((a, b));
    shutdown.cancel();
}
