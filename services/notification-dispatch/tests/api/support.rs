//! One notification service on a backend, with what its tests need: calls as a provider's
//! application or as a user, auth's and user-profile's events published on its bus, and its
//! database read directly to know when an event was taken in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use events::catalogue::{ApplicationRegistered, ConsentGranted, ConsentRevoked, UserRegistered, UserUpdated};
use events::{Bus, Event, EventPayload};
use notification_dispatch::store;
use runtime::Deps;
use serde_json::{Value, json};
use settings::Span;
use storage::{Database, PoolSettings};
use test_support::{Answer, As, Backend, Db, IDENTITY_SECRET, Signed, Watch, bus, served};
use tokio_util::sync::CancellationToken;

pub const SEND: &str = "notifications:send";
pub const OWN: &str = "notifications";

pub struct Notifier {
    pub api: Signed,
    pub bus: Arc<dyn Bus>,
    pub events: Watch,
    pub db: Database,
    shutdown: CancellationToken,
    _db: Db,
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn start(backend: Backend) -> Notifier {
    start_with(backend, |_| {}).await
}

/// With some settings changed (`|s| s.dispatch.schedule = vec![Span::from_secs(0)]`).
pub async fn start_with(backend: Backend, change: impl FnOnce(&mut notification_dispatch::Settings)) -> Notifier {
    static TELEMETRY: std::sync::OnceLock<Option<telemetry::TelemetryGuard>> = std::sync::OnceLock::new();
    TELEMETRY.get_or_init(|| telemetry::init("notification-dispatch-test").ok());
    let bus = bus(backend, &test_support::unique("notifications"), "notification-dispatch");
    let db = Db::create(backend);
    let shutdown = CancellationToken::new();
    let events = Watch::start(&bus, &["notification.#"], shutdown.clone()).await;
    let settings = settings::changed(
        notification_dispatch::DEFAULTS,
        |s: &mut notification_dispatch::Settings| {
            s.http.port = 0;
            s.http.workers = 1;
            s.database.url = db.url().into();
            s.identity.secret = IDENTITY_SECRET.into();
            s.dispatch.schedule = vec![Span::from_secs(0), Span::from_millis(200), Span::from_millis(200)];
            s.dispatch.jitter_percent = 0;
            s.dispatch.poll_interval = Span::from_millis(100);
            s.dispatch.send_timeout = Span::from_secs(2);
            s.dispatch.lease = Span::from_secs(5);
            test_support::use_cache(backend, &mut s.cache, "notifications");
            change(s);
        },
    )
    .unwrap();
    let deps = Deps {
        bus: bus.clone(),
        shutdown: shutdown.clone(),
    };
    let started = notification_dispatch::start(settings, deps)
        .await
        .expect("notification-dispatch starts");
    let url = db.url();
    let reader = tokio::task::spawn_blocking(move || Database::connect(&url, &PoolSettings::default()))
        .await
        .unwrap()
        .unwrap();
    Notifier {
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

/// A provider's application with one service, ready to send.
pub struct Sender {
    pub client: String,
    pub provider_id: i64,
    pub service_id: i64,
    pub token: String,
}

impl Sender {
    /// A `POST /Services` body for `user`, with `parameters` beside the destination.
    pub fn body(&self, user: &str, parameters: Value) -> Value {
        let mut params = json!({ "destination": user });
        for (k, v) in parameters.as_object().unwrap() {
            params[k] = v.clone();
        }
        json!({
            "provider_id": self.provider_id,
            "service_token": self.token,
            "service_id": self.service_id,
            "parameters": params,
        })
    }
}

impl Notifier {
    pub async fn as_app(&self, client: &str, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.as_app_with(client, method, path, body, &[]).await
    }

    pub async fn as_app_with(
        &self,
        client: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let who = As {
            subject: client,
            scope: SEND,
        };
        self.api.call_from(client, method, path, who, body, headers).await
    }

    /// As user `user` through their app (`notifications` scope), for their own pages.
    pub async fn as_user(&self, user: &str, method: &str, path: &str, body: Option<Value>) -> Answer {
        let who = As {
            subject: user,
            scope: OWN,
        };
        self.api.call_from("user-app", method, path, who, body, &[]).await
    }

    /// As the owner `user` of provider applications (a portal token with `notifications:send`).
    pub async fn as_owner(&self, user: &str, method: &str, path: &str, body: Option<Value>) -> Answer {
        let who = As {
            subject: user,
            scope: SEND,
        };
        self.api.call_from("portal", method, path, who, body, &[]).await
    }

    pub async fn publish<P: EventPayload>(&self, subject: &str, payload: &P) {
        let event = Event::new("/auth", Some(subject.to_owned()), payload).unwrap();
        self.bus.publish(&[event]).await.unwrap();
    }

    async fn until<T: Send + 'static>(
        &self,
        what: &str,
        read: impl Fn(&mut storage::AnyConnection) -> diesel::QueryResult<T> + Send + Sync + Clone + 'static,
        holds: impl Fn(&T) -> bool,
    ) {
        let db = self.db.clone();
        eventually(what, || {
            let (db, read) = (db.clone(), read.clone());
            let holds = &holds;
            async move {
                let value = db.run(move |c| Ok(read(c)?)).await.unwrap();
                holds(&value)
            }
        })
        .await;
    }

    /// Registers `client` (owned by `owner`) and waits until the service knows it.
    pub async fn application(&self, client: &str, owner: &str) {
        let registered = ApplicationRegistered {
            client_id: client.parse().unwrap(),
            owner_id: owner.parse().unwrap(),
            name: format!("{client} app"),
            scopes: vec![SEND.into()],
        };
        self.publish(client, &registered).await;
        let c = client.to_owned();
        self.until(
            "the application is known",
            move |conn| store::owner_of(conn, &c),
            Option::is_some,
        )
        .await;
    }

    /// A user with an e-mail address (and a phone number when given), known to the service.
    pub async fn user(&self, user: &str, phone: Option<&str>) {
        let registered = UserRegistered {
            user_id: user.parse().unwrap(),
            username: user.into(),
            email: format!("{user}@example.com"),
            registered_at: storage::now_millis(),
        };
        self.publish(user, &registered).await;
        if let Some(phone) = phone {
            let updated = UserUpdated {
                user_id: user.parse().unwrap(),
                username: user.into(),
                picture: None,
                group: None,
                phone: Some(phone.into()),
            };
            self.publish(user, &updated).await;
        }
        let (u, wanted) = (user.to_owned(), phone.map(str::to_owned));
        self.until(
            "the user is known",
            move |conn| store::recipient(conn, &u),
            move |r| r.as_ref().is_some_and(|r| r.email.is_some() && r.phone == wanted),
        )
        .await;
    }

    async fn consent_is(&self, user: &str, client: &str, scopes: &str) {
        let (u, c, wanted) = (user.to_owned(), client.to_owned(), scopes.to_owned());
        self.until(
            "the consent is projected",
            move |conn| consents::scopes(conn, &u, &c),
            move |s| s.as_deref() == Some(wanted.as_str()),
        )
        .await;
    }

    /// Sets `user`'s quiet hours to the whole day but a minute, so that what is not urgent
    /// stays queued for the test's length.
    pub async fn quiet_all_day(&self, user: &str) {
        let now = chrono::Utc::now();
        let minute = |m| (now - chrono::Duration::minutes(m)).format("%H:%M").to_string();
        let quiet = json!({"quiet_hours": {"start": minute(1), "end": minute(2)}});
        let (status, body, _) = self
            .as_user(user, "PUT", "/notifications/preferences", Some(quiet))
            .await;
        assert_eq!(status, 200, "{body}");
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

    /// `client` as a provider with one service sending `kinds` on `channels`.
    pub async fn sender(&self, client: &str, kinds: &[&str], channels: &[&str]) -> Sender {
        self.application(client, &format!("owner-of-{client}")).await;
        let (status, body, _) = self.as_app(client, "POST", "/providers", Some(json!({}))).await;
        assert_eq!(status, 201, "{body}");
        let provider_id = body["data"]["provider_id"].as_i64().unwrap();
        let service = json!({"name": "Reminders", "kinds": kinds, "channels": channels});
        let (status, body, _) = self
            .as_app(
                client,
                "POST",
                &format!("/providers/{provider_id}/services"),
                Some(service),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        Sender {
            client: client.to_owned(),
            provider_id,
            service_id: body["data"]["service_id"].as_i64().unwrap(),
            token: body["data"]["service_token"].as_str().unwrap().to_owned(),
        }
    }

    /// `POST /Services` as the sender's application.
    pub async fn send(&self, sender: &Sender, body: Value) -> Answer {
        self.as_app(&sender.client, "POST", "/Services", Some(body)).await
    }

    /// The notification's status once it is `status` (10 s at most).
    pub async fn status_becomes(&self, sender: &Sender, id: &str, status: &str) -> Value {
        let started = Instant::now();
        loop {
            let (code, body, _) = self
                .as_app(&sender.client, "GET", &format!("/Services/{id}"), None)
                .await;
            assert_eq!(code, 200, "{body}");
            if body["data"]["status"] == status {
                return body["data"].clone();
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{id} never became {status}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
}
