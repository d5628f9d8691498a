//! The test server and typed helpers shared by the auth test binaries.

#![allow(clippy::expect_used, clippy::unwrap_used, dead_code)]

use std::sync::Arc;

use events::{Bus, InProcessBus, RabbitBus, RabbitSettings};
use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, RevocationUrl, TokenUrl};
use runtime::Deps;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const ADMIN: (&str, &str) = ("admin", "admin-password-1");

pub enum Backend {
    Sqlite(test_support::TestSqlite),
    Postgres(test_support::TestDatabase),
}

pub type TestClient = BasicClient<
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
    oauth2::EndpointSet,
>;

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub bus: Arc<dyn Bus>,
    pub db_url: String,
    cache_prefix: Option<String>,
    shutdown: CancellationToken,
    _db: Backend,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, |_| {}).await
}

/// A test server with some settings changed (`|s| s.oauth.access_token_ttl = Span::from_secs(60)`).
pub async fn spawn_with(backend: Backend, change: impl FnOnce(&mut auth::Settings)) -> TestApp {
    let db_url = match &backend {
        Backend::Sqlite(db) => db.url.clone(),
        Backend::Postgres(db) => db.url.clone(),
    };
    let production = matches!(backend, Backend::Postgres(_));
    let bus: Arc<dyn Bus> = match backend {
        Backend::Sqlite(_) => Arc::new(InProcessBus::new()),
        Backend::Postgres(_) => Arc::new(RabbitBus::new(RabbitSettings {
            url: test_support::amqp_url(),
            exchange: test_support::unique("auth"),
            connection_name: "auth-test".into(),
            tls_ca: None,
        })),
    };
    let cache_prefix = production.then(|| format!("{}:", test_support::unique("auth")));
    let (base, shutdown) = start(&db_url, bus.clone(), cache_prefix.as_deref(), change).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        base,
        http,
        bus,
        db_url,
        cache_prefix,
        shutdown,
        _db: backend,
    }
}

/// An auth server on `db_url` and `bus`; Redis under `cache_prefix` when there is one.
async fn start(
    db_url: &str,
    bus: Arc<dyn Bus>,
    cache_prefix: Option<&str>,
    change: impl FnOnce(&mut auth::Settings),
) -> (String, CancellationToken) {
    let settings = settings::changed(auth::DEFAULTS, |s: &mut auth::Settings| {
        s.http.port = 0;
        s.http.workers = 2;
        s.database.url = db_url.into();
        s.bootstrap.admin_username = ADMIN.0.into();
        s.bootstrap.admin_password = ADMIN.1.into();
        // The production-like suite also counts failures in Redis.
        if let Some(prefix) = cache_prefix {
            s.cache.kind = cache::CacheKind::Redis;
            s.cache.url = test_support::redis_url().into();
            s.cache.prefix = prefix.into();
        }
        change(s);
    })
    .expect("settings");
    let shutdown = CancellationToken::new();
    let started = auth::start(
        settings,
        Deps {
            bus,
            shutdown: shutdown.clone(),
        },
    )
    .await
    .expect("auth starts");
    let base = format!("http://{}", started.http.addr);
    tokio::spawn(started.stopped());
    (base, shutdown)
}

/// A second replica of a test server: the same database, bus and cache; stopped when dropped.
pub struct Replica {
    pub base: String,
    shutdown: CancellationToken,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    pub async fn replica(&self) -> Replica {
        let (base, shutdown) = start(&self.db_url, self.bus.clone(), self.cache_prefix.as_deref(), |_| {}).await;
        Replica { base, shutdown }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn json(&self, req: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
        let res = req.send().await.expect("send");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        (
            status,
            headers,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
            },
        )
    }

    /// A user token through the password grant of the legacy client (seed 002's POST /oauth).
    pub async fn login(&self, username: &str, password: &str) -> String {
        let (status, _, body) = self
            .json(self.http.post(self.url("/oauth")).basic_auth(username, Some(password)))
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn register_user(&self, username: &str) -> String {
        let body =
            json!({"username": username, "email": format!("{username}@example.com"), "password": "password-123"});
        let (status, _, body) = self.json(self.http.post(self.url("/users")).json(&body)).await;
        assert_eq!(status, 201, "{body}");
        body["data"]["id"].as_str().unwrap().to_owned()
    }

    /// An application created by the bootstrap administrator; returns (client_id, client_secret).
    pub async fn application(&self, body: Value) -> (String, String) {
        let admin = self.login(ADMIN.0, ADMIN.1).await;
        let (status, _, body) = self
            .json(self.http.post(self.url("/applications")).bearer_auth(admin).json(&body))
            .await;
        assert_eq!(status, 201, "{body}");
        let data = &body["data"];
        assert_eq!(data["client_id"], data["app_id"]);
        (
            data["client_id"].as_str().unwrap().to_owned(),
            data["client_secret"].as_str().unwrap_or_default().to_owned(),
        )
    }

    pub fn oauth_client(&self, id: &str, secret: &str) -> TestClient {
        BasicClient::new(ClientId::new(id.to_owned()))
            .set_client_secret(ClientSecret::new(secret.to_owned()))
            .set_token_uri(TokenUrl::new(self.url("/oauth2/token")).unwrap())
            .set_revocation_url(RevocationUrl::new(self.url("/oauth2/revoke")).unwrap())
    }

    pub async fn me(&self, token: &str) -> u16 {
        self.http
            .get(self.url("/accounts/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}
