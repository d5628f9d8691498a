//! Auth and introspection started side by side on one backend: SQLite with the in-process bus
//! and cache, or PostgreSQL (a database each) with RabbitMQ and Redis, as in production. The
//! gateway's end-to-end tests and benchmarks start their gateways in front of this (feature
//! `platform`).

use std::sync::Arc;

use events::Bus;
use runtime::Deps;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const ADMIN: (&str, &str) = ("admin", "admin-password-1");
pub const ISSUER: &str = "http://gateway.test";

pub use crate::Backend;
use crate::{Db, IDENTITY_SECRET, bus, served};

pub struct Platform {
    pub backend: Backend,
    pub auth: String,
    pub introspection: String,
    pub http: reqwest::Client,
    pub auth_db: String,
    /// The exchange events travel on (RabbitMQ), for processes started beside this one.
    pub exchange: String,
    pub bus: Arc<dyn Bus>,
    auth_shutdown: CancellationToken,
    introspection_shutdown: CancellationToken,
    _dbs: Vec<Db>,
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.auth_shutdown.cancel();
        self.introspection_shutdown.cancel();
    }
}

impl Platform {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// With some of auth's settings changed (`|s| s.limits.max_failures = 3`).
    pub async fn start_with(backend: Backend, change_auth: impl FnOnce(&mut auth::Settings)) -> Self {
        let exchange = crate::unique("e2e");
        let auth_bus = bus(backend, &exchange, "auth");
        // Embedded mode shares one in-process bus; production gives each service its own connection.
        let introspection_bus = match backend {
            Backend::Sqlite => auth_bus.clone(),
            Backend::Postgres => bus(backend, &exchange, "introspection"),
        };
        let (auth_db, introspection_db) = (Db::create(backend), Db::create(backend));
        let auth_settings = settings::changed(auth::DEFAULTS, |s: &mut auth::Settings| {
            s.http.port = 0;
            s.http.workers = 2;
            s.database.url = auth_db.url().into();
            s.oauth.issuer = ISSUER.into();
            s.bootstrap.admin_username = ADMIN.0.into();
            s.bootstrap.admin_password = ADMIN.1.into();
            crate::use_cache(backend, &mut s.cache, "auth");
            change_auth(s);
        })
        .unwrap();
        let auth_shutdown = CancellationToken::new();
        let deps = Deps {
            bus: auth_bus.clone(),
            shutdown: auth_shutdown.clone(),
        };
        let auth = served(auth::start(auth_settings, deps).await.expect("auth starts"));
        let introspection_settings = settings::changed(introspection::DEFAULTS, |s: &mut introspection::Settings| {
            s.http.port = 0;
            s.http.workers = 2;
            s.database.url = introspection_db.url().into();
            s.auth.url = auth.clone();
            s.auth.issuer = ISSUER.into();
            s.auth.jwks_refresh = settings::Span::default();
        })
        .unwrap();
        let introspection_shutdown = CancellationToken::new();
        let deps = Deps {
            bus: introspection_bus,
            shutdown: introspection_shutdown.clone(),
        };
        let introspection = served(
            introspection::start(introspection_settings, deps)
                .await
                .expect("introspection starts"),
        );
        Self {
            backend,
            auth,
            introspection,
            http: reqwest::Client::new(),
            auth_db: auth_db.url(),
            exchange,
            bus: auth_bus,
            auth_shutdown,
            introspection_shutdown,
            _dbs: vec![auth_db, introspection_db],
        }
    }

    /// A gateway's settings in front of this platform, in this process: `routes`, partners'
    /// rate limit out of the way, and on PostgreSQL the platform's RabbitMQ exchange and Redis.
    pub fn gateway_settings(
        &self,
        routes: Vec<gateway::Route>,
        change: impl FnOnce(&mut gateway::Settings),
    ) -> gateway::Settings {
        settings::changed(gateway::DEFAULTS, |s: &mut gateway::Settings| {
            s.http.port = 0;
            s.introspection.url = format!("{}/oauth2/introspect", self.introspection);
            s.tokens.issuer = ISSUER.into();
            s.upstreams
                .insert("auth".into(), gateway::Addresses::One(self.auth.clone()));
            s.identity.secret = IDENTITY_SECRET.into();
            let unlimited = gateway::RatePolicy {
                rate: 1.0e9,
                burst: 1_000_000_000,
            };
            s.rate_limits.insert("partner".into(), unlimited);
            s.routes = routes;
            if self.backend == Backend::Postgres {
                crate::use_rabbitmq(&mut s.bus, &self.exchange);
                crate::use_cache(self.backend, &mut s.cache, "gw");
            }
            change(s);
        })
        .unwrap()
    }

    pub fn stop_introspection(&self) {
        self.introspection_shutdown.cancel();
    }

    pub async fn json(&self, req: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
        let res = req.send().await.expect("send");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, body)
    }

    /// A user token through seed 002's `POST /oauth`.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let req = self
            .http
            .post(format!("{}/oauth", self.auth))
            .basic_auth(username, Some(password));
        let (status, _, body) = self.json(req).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Registers `name` at auth, with the password `<name>-password-1`.
    pub async fn register(&self, name: &str) {
        let body =
            json!({"username": name, "email": format!("{name}@example.com"), "password": format!("{name}-password-1")});
        let req = self.http.post(format!("{}/users", self.auth)).json(&body);
        let (status, _, body) = self.json(req).await;
        assert_eq!(status, 201, "{body}");
    }

    /// The token response of a password grant at application `app`.
    pub async fn password_grant(
        &self,
        (id, secret): &(String, String),
        user: &str,
        password: &str,
        scope: &str,
    ) -> Value {
        let req = self
            .http
            .post(format!("{}/oauth2/token", self.auth))
            .basic_auth(id, Some(secret))
            .form(&[
                ("grant_type", "password"),
                ("username", user),
                ("password", password),
                ("scope", scope),
            ]);
        let (status, _, body) = self.json(req).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// A user's access token by the password grant.
    pub async fn password_token(&self, app: &(String, String), user: &str, password: &str, scope: &str) -> String {
        self.password_grant(app, user, password, scope).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// An application of the administrator: (client_id, client_secret).
    pub async fn application(&self, body: Value) -> (String, String) {
        let admin = self.login(ADMIN.0, ADMIN.1).await;
        let req = self
            .http
            .post(format!("{}/applications", self.auth))
            .bearer_auth(admin)
            .json(&body);
        let (status, _, body) = self.json(req).await;
        assert_eq!(status, 201, "{body}");
        let data = &body["data"];
        (
            data["client_id"].as_str().unwrap().to_owned(),
            data["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    /// A client_credentials access token.
    pub async fn token(&self, (id, secret): &(String, String), scope: &str) -> String {
        let req = self
            .http
            .post(format!("{}/oauth2/token", self.auth))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)]);
        let (status, _, body) = self.json(req).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A client allowed the privileged `introspect` scope, as the gateway is.
    pub async fn privileged_client(&self) -> (String, String) {
        self.application(json!({"name": "Gateway", "scopes": ["introspect"]}))
            .await
    }

    pub async fn revoke(&self, (id, secret): &(String, String), token: &str) {
        let req = self
            .http
            .post(format!("{}/oauth2/revoke", self.auth))
            .basic_auth(id, Some(secret))
            .form(&[("token", token)]);
        assert_eq!(self.json(req).await.0, 200);
    }

    /// Introspects `token` as the holder of Basic `credentials`.
    pub async fn introspect(
        &self,
        (id, secret): &(String, String),
        token: &str,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let req = self
            .http
            .post(format!("{}/oauth2/introspect", self.introspection))
            .basic_auth(id, Some(secret))
            .form(&[("token", token)]);
        self.json(req).await
    }
}
