//! One webhook service on a backend, with what its tests need: calls as a user or as an
//! application, auth's events published on its bus, and its database read directly to know
//! when an event was taken in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use events::catalogue::{ApplicationRegistered, ConsentGranted, ConsentRevoked};
use events::{Bus, Event, EventPayload};
use runtime::Deps;
use serde_json::Value;
use settings::Span;
use storage::{Database, PoolSettings};
use test_support::{Answer, As, Backend, Db, IDENTITY_SECRET, Signed, Watch, bus, served};
use tokio_util::sync::CancellationToken;

pub const MANAGE: &str = "webhooks:manage";

pub struct Hooks {
    pub api: Signed,
    pub bus: Arc<dyn Bus>,
    pub events: Watch,
    pub db: Database,
    shutdown: CancellationToken,
    _db: Db,
}

impl Drop for Hooks {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn start(backend: Backend) -> Hooks {
    start_with(backend, |_| {}).await
}

/// With some settings changed (`|s| s.delivery.schedule = vec![Span::from_secs(0)]`).
pub async fn start_with(backend: Backend, change: impl FnOnce(&mut webhook::Settings)) -> Hooks {
    // Logs (warnings and up) appear with a failing test's output.
    static TELEMETRY: std::sync::OnceLock<Option<telemetry::TelemetryGuard>> = std::sync::OnceLock::new();
    TELEMETRY.get_or_init(|| telemetry::init("webhook-test").ok());
    let bus = bus(backend, &test_support::unique("webhook"), "webhook");
    let db = Db::create(backend);
    let shutdown = CancellationToken::new();
    let events = Watch::start(&bus, &["webhook.#"], shutdown.clone()).await;
    let settings = settings::changed(webhook::DEFAULTS, |s: &mut webhook::Settings| {
        s.http.port = 0;
        s.http.workers = 1;
        s.database.url = db.url().into();
        s.identity.secret = IDENTITY_SECRET.into();
        s.delivery.schedule = vec![Span::from_secs(0), Span::from_millis(300), Span::from_millis(300)];
        s.delivery.jitter_percent = 0;
        s.delivery.poll_interval = Span::from_millis(100);
        s.delivery.timeout = Span::from_secs(2);
        s.delivery.lease = Span::from_secs(5);
        test_support::use_cache(backend, &mut s.cache, "webhook");
        change(s);
    })
    .unwrap();
    let deps = Deps {
        bus: bus.clone(),
        shutdown: shutdown.clone(),
    };
    let started = webhook::start(settings, deps).await.expect("webhook starts");
    let url = db.url();
    let reader = tokio::task::spawn_blocking(move || Database::connect(&url, &PoolSettings::default()))
        .await
        .unwrap()
        .unwrap();
    Hooks {
        api: Signed::new(served(started)),
        bus,
        events,
        db: reader,
        shutdown,
        _db: db,
    }
}

/// Polls `check` until it holds (10 s at most).
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(10), "never true: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Hooks {
    /// As user `user` (a token of the portal application, with `webhooks:manage`).
    pub async fn as_user(&self, user: &str, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.api
            .call_from(
                "portal",
                method,
                path,
                As {
                    subject: user,
                    scope: MANAGE,
                },
                body,
                &[],
            )
            .await
    }

    /// As application `client` with its own token.
    pub async fn as_app(&self, client: &str, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.api
            .call_from(
                client,
                method,
                path,
                As {
                    subject: client,
                    scope: MANAGE,
                },
                body,
                &[],
            )
            .await
    }

    pub async fn publish<P: EventPayload>(&self, subject: &str, payload: &P) {
        let event = Event::new("/auth", Some(subject.to_owned()), payload).unwrap();
        self.bus.publish(&[event]).await.unwrap();
    }

    /// Registers `client` (owned by `owner`) and waits until the service knows it.
    pub async fn application(&self, client: &str, owner: &str, scopes: &[&str]) {
        let registered = ApplicationRegistered {
            client_id: client.parse().unwrap(),
            owner_id: owner.parse().unwrap(),
            name: format!("{client} app"),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        };
        self.publish(client, &registered).await;
        let (db, client) = (self.db.clone(), client.to_owned());
        eventually("the application is known", || {
            let (db, client) = (db.clone(), client.clone());
            async move {
                db.run(move |c| Ok(webhook::store::application(c, &client)?))
                    .await
                    .unwrap()
                    .is_some()
            }
        })
        .await;
    }

    async fn consent_is(&self, user: &str, client: &str, scopes: &str) {
        let (db, user, client, scopes) = (self.db.clone(), user.to_owned(), client.to_owned(), scopes.to_owned());
        eventually("the consent is projected", || {
            let (db, user, client, scopes) = (db.clone(), user.clone(), client.clone(), scopes.clone());
            async move {
                let stored = db.run(move |c| Ok(consents::scopes(c, &user, &client)?)).await.unwrap();
                stored.as_deref() == Some(scopes.as_str())
            }
        })
        .await;
    }

    pub async fn consent(&self, user: &str, client: &str, scopes: &[&str]) {
        let granted = ConsentGranted {
            user_id: user.parse().unwrap(),
            client_id: client.parse().unwrap(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            granted_at: storage::now_millis(),
        };
        self.publish(user, &granted).await;
        self.consent_is(user, client, &scopes.join(" ")).await;
    }

    pub async fn withdraw(&self, user: &str, client: &str) {
        let revoked = ConsentRevoked {
            user_id: user.parse().unwrap(),
            client_id: client.parse().unwrap(),
            revoked_at: storage::now_millis(),
        };
        self.publish(user, &revoked).await;
        self.consent_is(user, client, "").await;
    }

    /// An endpoint of `client` (created with its own token): (id, secret).
    pub async fn endpoint(&self, client: &str, body: Value) -> (String, String) {
        let (status, body, _) = self.as_app(client, "POST", "/webhooks/endpoints", Some(body)).await;
        assert_eq!(status, 201, "{body}");
        let data = &body["data"];
        (
            data["id"].as_str().unwrap().to_owned(),
            data["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// The endpoint's attempts, newest first.
    pub async fn attempts(&self, client: &str, endpoint: &str) -> Vec<Value> {
        let path = format!("/webhooks/endpoints/{endpoint}/attempts");
        let (status, body, _) = self.as_app(client, "GET", &path, None).await;
        assert_eq!(status, 200, "{body}");
        body["data"]["items"].as_array().unwrap().clone()
    }
}

/// Whether `received` carries a signature of `secret` over its id, timestamp and body.
pub fn signed_by(received: &test_support::receiver::Received, secret: &str) -> bool {
    let expected = webhook::domain::signing::sign(
        secret,
        received.header("webhook-id"),
        received.header("webhook-timestamp").parse().unwrap(),
        &received.body,
    );
    received.header("webhook-signature").split(' ').any(|s| s == expected)
}
