//! Nothing is lost: 1,000 notifications are accepted while the service (its own process, on
//! PostgreSQL, RabbitMQ and Redis) is killed with SIGKILL and started again. The provider
//! resends a request whose answer it never got, with the same `Idempotency-Key`; every
//! notification reaches the SAT provider at least once, and the provider can tell a repeat by
//! its `webhook-id` (the notification id): repeats are counted and printed.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use events::catalogue::{ApplicationRegistered, ConsentGranted, UserRegistered};
use events::{Bus, Event, EventPayload};
use serde_json::{Value, json};
use test_support::receiver::Receiver;
use test_support::{As, Backend, Db, IDENTITY_SECRET, Signed};

const NOTIFICATIONS: usize = 1_000;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Process {
    child: Child,
    api: Signed,
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
    sat: String,
    /// One port for every process, as behind a Kubernetes Service.
    port: u16,
}

impl Setup {
    async fn spawn(&self) -> Process {
        let port = self.port;
        // As an operator sets it in the environment (figment's syntax: TOML-like inline tables).
        let sat = format!(
            r#"[{{name="sat", kind="http", url="{}", secret="{SECRET}"}}]"#,
            self.sat
        );
        let child = Command::new(env!("CARGO_BIN_EXE_notification-dispatch"))
            .env("NOTIFICATION_DISPATCH_HTTP__PORT", port.to_string())
            .env("NOTIFICATION_DISPATCH_DATABASE__URL", self.db.url())
            .env("NOTIFICATION_DISPATCH_BUS__KIND", "rabbitmq")
            .env("NOTIFICATION_DISPATCH_BUS__URL", test_support::amqp_url())
            .env("NOTIFICATION_DISPATCH_BUS__EXCHANGE", &self.exchange)
            .env("NOTIFICATION_DISPATCH_CACHE__KIND", "redis")
            .env("NOTIFICATION_DISPATCH_CACHE__URL", test_support::redis_url())
            .env("NOTIFICATION_DISPATCH_CACHE__PREFIX", &self.prefix)
            .env("NOTIFICATION_DISPATCH_IDENTITY__SECRET", IDENTITY_SECRET)
            .env(
                "NOTIFICATION_DISPATCH_DISPATCH__SCHEDULE",
                r#"["0s", "200ms", "500ms", "1s", "2s", "2s", "2s"]"#,
            )
            .env("NOTIFICATION_DISPATCH_DISPATCH__POLL_INTERVAL", "100ms")
            .env("NOTIFICATION_DISPATCH_DISPATCH__SEND_TIMEOUT", "5s")
            .env("NOTIFICATION_DISPATCH_DISPATCH__LEASE", "8s")
            .env("NOTIFICATION_DISPATCH_CHANNELS__SAT", sat)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("the notification-dispatch binary");
        let base = format!("http://127.0.0.1:{port}");
        test_support::wait_ready(&base, "the notification service").await;
        Process {
            child,
            api: Signed::new(base),
        }
    }
}

async fn publish<P: EventPayload>(bus: &Arc<dyn Bus>, payload: &P) {
    bus.publish(&[Event::new("/auth", None, payload).unwrap()])
        .await
        .unwrap();
}

const AS_CLINIC: As<'static> = As {
    subject: "clinic",
    scope: "notifications:send",
};

/// A call that, like a provider's client, tries again until the service answers.
async fn call(process: &Process, method: &str, path: &str, body: Value, key: Option<&str>) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    let (status, answer, _) = process
        .api
        .call_from("clinic", method, path, AS_CLINIC, Some(body), &headers)
        .await;
    (status, answer)
}

/// The provider and its SAT service, once the service knows the application.
async fn service(process: &Process) -> (i64, i64, String) {
    let started = Instant::now();
    let provider = loop {
        let (status, answer) = call(process, "POST", "/providers", json!({}), None).await;
        if status == 201 {
            break answer["data"]["provider_id"].as_i64().unwrap();
        }
        assert!(
            status == 404 && started.elapsed() < Duration::from_secs(10),
            "{status} {answer}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let body = json!({"name": "Alerts", "kinds": ["notification"], "channels": ["SAT"]});
    let (status, answer) = call(process, "POST", &format!("/providers/{provider}/services"), body, None).await;
    assert_eq!(status, 201, "{answer}");
    let token = answer["data"]["service_token"].as_str().unwrap().to_owned();
    (provider, answer["data"]["service_id"].as_i64().unwrap(), token)
}

/// POST /Services to whichever process answers on the port: `None` when none did (the
/// provider does not know whether it was accepted, and sends it again with the same key).
async fn send(http: &reqwest::Client, base: &str, body: &Value, key: &str) -> Option<String> {
    let identity = identity::Identity {
        user: None,
        client_id: "clinic".parse().unwrap(),
        scope: "notifications:send".into(),
        username: None,
    };
    let request_id = test_support::unique("req");
    let mut request = http
        .post(format!("{base}/Services"))
        .timeout(Duration::from_secs(5))
        .header("x-request-id", &request_id)
        .header("idempotency-key", key)
        .json(body);
    for (name, value) in identity::sign(
        &identity,
        IDENTITY_SECRET.as_bytes(),
        &request_id,
        chrono::Utc::now().timestamp(),
    ) {
        request = request.header(name, value);
    }
    let response = request.send().await.ok()?;
    if response.status() != 202 {
        return None;
    }
    let answer: Value = response.json().await.ok()?;
    answer["data"]["id"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_service_sends_every_accepted_notification() {
    let receiver = Receiver::start();
    let setup = Setup {
        db: Db::create(Backend::Postgres),
        exchange: test_support::unique("notifications-no-loss"),
        prefix: format!("{}:", test_support::unique("notifications-no-loss")),
        sat: receiver.url.clone(),
        port: test_support::free_port(),
    };
    let bus = test_support::bus(Backend::Postgres, &setup.exchange, "publisher");
    let mut process = setup.spawn().await;
    let app = ApplicationRegistered {
        client_id: "clinic".parse().unwrap(),
        owner_id: "owner".parse().unwrap(),
        name: "Clinic".into(),
        scopes: vec!["notifications:send".into()],
    };
    publish(&bus, &app).await;
    let (provider, service_id, token) = service(&process).await;
    let user = UserRegistered {
        user_id: "ana".parse().unwrap(),
        username: "ana".into(),
        email: "ana@example.com".into(),
        registered_at: storage::now_millis(),
    };
    publish(&bus, &user).await;
    let consent = ConsentGranted {
        user_id: "ana".parse().unwrap(),
        client_id: "clinic".parse().unwrap(),
        scopes: vec!["notifications:send".into()],
        granted_at: storage::now_millis(),
    };
    publish(&bus, &consent).await;
    let body = |i: usize| {
        json!({"provider_id": provider, "service_token": token, "service_id": service_id,
            "parameters": {"destination": "ana", "notification": {"title": format!("Alerta {i}"), "message": "Tormenta", "channel": "SAT"}}})
    };
    // SIGKILL once 300 are accepted, while requests go on: no drain; requests, sends and
    // leases in flight.
    let accepted_so_far = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (watch, base) = (accepted_so_far.clone(), process.api.base.clone());
    let restarter = tokio::spawn(async move {
        while watch.load(std::sync::atomic::Ordering::Relaxed) < 300 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        process.child.kill().unwrap();
        process.child.wait().unwrap();
        let process = setup.spawn().await;
        (process, setup)
    });
    let started = Instant::now();
    let http = reqwest::Client::new();
    let mut accepted = Vec::with_capacity(NOTIFICATIONS);
    let mut unanswered = 0;
    while accepted.len() < NOTIFICATIONS {
        let i = accepted.len();
        match send(&http, &base, &body(i), &format!("alert-{i}")).await {
            Some(id) => {
                accepted.push(id);
                accepted_so_far.store(accepted.len(), std::sync::atomic::Ordering::Relaxed);
            }
            None => {
                unanswered += 1;
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "the service never came back"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let (_process, _setup) = restarter.await.unwrap();
    assert!(unanswered > 0, "requests went unanswered while the service was down");
    let distinct: HashSet<&String> = accepted.iter().collect();
    assert_eq!(
        distinct.len(),
        NOTIFICATIONS,
        "a resent key never made a second notification"
    );
    loop {
        // Readiness checks reach the provider too (HEAD, no webhook-id): not notifications.
        let received: Vec<_> = receiver
            .received()
            .into_iter()
            .filter(|r| !r.header("webhook-id").is_empty())
            .collect();
        let ids: HashSet<&str> = received.iter().map(|r| r.header("webhook-id")).collect();
        if accepted.iter().all(|id| ids.contains(id.as_str())) {
            println!(
                "SIGKILL and restart: {NOTIFICATIONS} notifications accepted ({unanswered} requests unanswered and sent again), {} requests to the provider, {} distinct, {} repeats (told apart by webhook-id), in {:.1} s",
                received.len(),
                ids.len(),
                received.len() - ids.len(),
                started.elapsed().as_secs_f64()
            );
            assert_eq!(ids.len(), NOTIFICATIONS, "nothing but what was accepted");
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "{} of {NOTIFICATIONS} notifications reached the provider",
            accepted.iter().filter(|id| ids.contains(id.as_str())).count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
