//! The resource APIs end to end, as a partner sees them: auth, introspection, user-profile,
//! blog, webhooks and notifications behind a gateway, real tokens, on SQLite with the in-process bus and on PostgreSQL
//! with RabbitMQ and Redis.

use crate::platform;
use crate::support;

use std::time::{Duration, Instant};

use gateway::{RatePolicy, Route};
use http_kit::HttpSettings;
use identity::IdentitySettings;
use platform::{ADMIN, Backend, Platform};
use runtime::{DatabaseSettings, Deps};
use serde_json::{Value, json};
use settings::Span;
use test_support::{Db, IDENTITY_SECRET, served};
use tokio_util::sync::CancellationToken;

pub struct Stack {
    pub p: Platform,
    pub gw: String,
    shutdown: CancellationToken,
    _dbs: Vec<Db>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn deps(p: &Platform, name: &str, shutdown: &CancellationToken) -> Deps {
    let bus = match p.backend {
        Backend::Sqlite => p.bus.clone(),
        Backend::Postgres => test_support::bus(Backend::Postgres, &p.exchange, name),
    };
    Deps {
        bus,
        shutdown: shutdown.clone(),
    }
}

/// A resource service's settings: its own database, the test's identity key, and `change`.
fn service<S, F>(defaults: &str, db: &Db, change: F) -> S
where
    S: serde::de::DeserializeOwned + settings::Validate + Resource,
    F: FnOnce(&mut S),
{
    settings::changed(defaults, |s: &mut S| {
        let (http, database, identity) = s.parts();
        http.port = 0;
        http.workers = 2;
        database.url = db.url().into();
        identity.secret = IDENTITY_SECRET.into();
        change(s);
    })
    .unwrap()
}

/// The settings every resource service has.
trait Resource {
    fn parts(&mut self) -> (&mut HttpSettings, &mut DatabaseSettings, &mut IdentitySettings);
}

macro_rules! resource {
    ($($settings:ty),*) => {$(
        impl Resource for $settings {
            fn parts(&mut self) -> (&mut HttpSettings, &mut DatabaseSettings, &mut IdentitySettings) {
                (&mut self.http, &mut self.database, &mut self.identity)
            }
        }
    )*};
}
resource!(
    user_profile::Settings,
    blog::Settings,
    webhook::Settings,
    notification_dispatch::Settings
);

pub async fn stack(backend: Backend) -> Stack {
    let p = Platform::start(backend).await;
    let shutdown = CancellationToken::new();
    let (profile_db, blog_db, webhook_db, notification_db) = (
        Db::create(backend),
        Db::create(backend),
        Db::create(backend),
        Db::create(backend),
    );
    let profiles = user_profile::start(
        service(user_profile::DEFAULTS, &profile_db, |_: &mut user_profile::Settings| {}),
        deps(&p, "user-profile", &shutdown),
    )
    .await
    .expect("user-profile starts");
    let blog = blog::start(
        service(blog::DEFAULTS, &blog_db, |_: &mut blog::Settings| {}),
        deps(&p, "blog", &shutdown),
    )
    .await
    .expect("blog starts");
    let webhook_settings = service(webhook::DEFAULTS, &webhook_db, |s: &mut webhook::Settings| {
        s.delivery.schedule = vec![Span::from_secs(0), Span::from_millis(300), Span::from_millis(300)];
        s.delivery.poll_interval = Span::from_millis(100);
    });
    let webhooks = webhook::start(webhook_settings, deps(&p, "webhook", &shutdown))
        .await
        .expect("webhook starts");
    let notification_settings = service(
        notification_dispatch::DEFAULTS,
        &notification_db,
        |s: &mut notification_dispatch::Settings| s.dispatch.poll_interval = Span::from_millis(100),
    );
    let notifications =
        notification_dispatch::start(notification_settings, deps(&p, "notification-dispatch", &shutdown))
            .await
            .expect("notification-dispatch starts");
    let (profiles, blog, webhooks, notifications) =
        (served(profiles), served(blog), served(webhooks), served(notifications));
    let route = |prefix: &str, upstream: &str| support::route(prefix, upstream, 10);
    let scoped = |prefix: &str, upstream: &str, scope: &str| Route {
        scopes: vec![scope.into()],
        ..route(prefix, upstream)
    };
    let routes = vec![
        Route {
            methods: vec!["POST".into()],
            ..support::public("/users", &p.auth, 10)
        },
        route("/users", &profiles),
        Route {
            query_token: true,
            ..route("/api/get_user_info", &profiles)
        },
        route("/blog", &blog),
        route("/accounts", &p.auth),
        support::public("/webhooks/event-types", &webhooks, 10),
        scoped("/webhooks", &webhooks, "webhooks:manage"),
        scoped("/Services", &notifications, "notifications:send"),
        scoped("/providers", &notifications, "notifications:send"),
        scoped("/notifications", &notifications, "notifications"),
    ];
    let settings = p.gateway_settings(routes, |s| {
        s.http.workers = 2;
        s.rate_limits.insert(
            "partner".into(),
            RatePolicy {
                rate: 1000.0,
                burst: 1000,
            },
        );
        s.usage.report_interval = Span::from_millis(200);
    });
    let gateway = gateway::start(settings, deps(&p, "gateway", &shutdown))
        .await
        .expect("gateway starts");
    Stack {
        gw: served(gateway),
        p,
        shutdown,
        _dbs: vec![profile_db, blog_db, webhook_db, notification_db],
    }
}

impl Stack {
    pub async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .p
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.gw))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let (status, _, body) = self.p.json(req).await;
        (status, body)
    }

    /// Registers a user through the gateway (auth), and waits for their profile.
    pub async fn user(&self, name: &str, app: &(String, String), scope: &str) -> String {
        let body =
            json!({"username": name, "email": format!("{name}@example.com"), "password": format!("{name}-password-1")});
        let req = self.p.http.post(format!("{}/users", self.gw)).json(&body);
        assert_eq!(self.p.json(req).await.0, 201);
        let token = self
            .p
            .password_token(app, name, &format!("{name}-password-1"), scope)
            .await;
        self.until(|| async { self.call("GET", "/users/me", &token, None).await.0 == 200 })
            .await;
        token
    }

    pub async fn until<F, Fut>(&self, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        while !check().await {
            assert!(started.elapsed() < Duration::from_secs(10), "not within 10 s");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn partners_use_profiles_and_the_blog_through_the_gateway(backend: Backend) {
    let s = stack(backend).await;
    let app =
        s.p.application(json!({"name": "Partner", "grant_types": ["password"],
            "scopes": ["profile", "email", "blog:read", "blog:write", "blog:admin", "account:delete"]}))
            .await;
    let ana = s.user("ana", &app, "profile email blog:read blog:write").await;
    let ana_reader =
        s.p.password_token(&app, "ana", "ana-password-1", "profile blog:read")
            .await;
    let bob = s.user("bob", &app, "profile blog:read blog:write").await;

    // Seed 003's user information, token in the query string; e-mail only with `email`.
    let req = s.p.http.get(format!("{}/api/get_user_info?access_token={ana}", s.gw));
    let (status, _, info) = s.p.json(req).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(
        (
            info["user_info"]["user_name"].as_str(),
            info["user_info"]["user_email"].as_str()
        ),
        (Some("ana"), Some("ana@example.com"))
    );
    let (_, info) = s.call("GET", "/api/get_user_info", &ana_reader, None).await;
    assert_eq!(
        info["user_info"]["user_email"], "",
        "withheld without the email scope: {info}"
    );

    // Bad values: 422 in the envelope, naming the field.
    for (change, field) in [
        (json!({"nationality": "XX"}), "nationality"),
        (json!({"birth_date": "2001-13-01"}), "birth_date"),
        (json!({"sports": ["quidditch"]}), "sports[0]"),
    ] {
        let (status, body) = s.call("PATCH", "/users/me", &ana, Some(change)).await;
        assert_eq!((status, body["success"].as_bool()), (422, Some(false)), "{body}");
        assert!(body["debugMessage"].as_str().unwrap().starts_with(field), "{body}");
    }

    // Writing needs blog:write; another user's article cannot be edited.
    let article = json!({"title": "Hello", "content": "World", "locales_id": 1, "blog_category_id": 1});
    let (status, body) = s
        .call("POST", "/blog/articles", &ana_reader, Some(article.clone()))
        .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("insufficient_scope")));
    let (status, body) = s.call("POST", "/blog/articles", &ana, Some(article)).await;
    assert_eq!(status, 201, "{body}");
    let id = body["data"]["id"].as_i64().unwrap();
    let (status, _) = s
        .call(
            "PATCH",
            &format!("/blog/articles/{id}"),
            &bob,
            Some(json!({"title": "Mine"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = s
        .call(
            "POST",
            "/blog/articles",
            &ana,
            Some(json!({"title": "Long", "content": "x".repeat(50_001), "locales_id": 1, "blog_category_id": 1})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["debugMessage"].as_str().unwrap().starts_with("content"), "{body}");
    let (status, _) = s.call("GET", "/blog", &ana_reader, None).await;
    assert_eq!(status, 200);

    // blog:admin only reaches tokens of administrators, whatever the application may grant.
    let granted =
        s.p.password_grant(&app, "bob", "bob-password-1", "blog:read blog:admin")
            .await;
    assert_eq!(granted["scope"], "blog:read", "{granted}");
    let bob_admin = granted["access_token"].as_str().unwrap();
    let (status, _) = s
        .call("POST", "/blog/categories", bob_admin, Some(json!({"name": "Bob's"})))
        .await;
    assert_eq!(status, 403);
    let admin = s.p.password_token(&app, ADMIN.0, ADMIN.1, "blog:read blog:admin").await;
    let (_, info) = s.call("GET", "/blog/locales", &admin, None).await;
    assert_eq!(info["success"], true);
    let (status, body) = s
        .call("POST", "/blog/categories", &admin, Some(json!({"name": "News"})))
        .await;
    assert_eq!(status, 201, "{body}");

    // A profile change reaches the blog's author data through the event.
    let picture = "https://cdn.example.com/ana.png";
    let (status, _) = s
        .call("PATCH", "/users/me", &ana, Some(json!({"picture": picture})))
        .await;
    assert_eq!(status, 200);
    s.until(|| async {
        let (_, feed) = s.call("GET", "/blog", &bob, None).await;
        feed["data"][0]["article"]["account"]["avatar"]["path"] == picture
    })
    .await;

    // Deleting one's profile deletes the account: the user's tokens stop working everywhere,
    // their articles go.
    assert_eq!(
        s.call("DELETE", "/users/me", &ana, None).await.0,
        403,
        "needs account:delete"
    );
    let ana_leaving =
        s.p.password_token(&app, "ana", "ana-password-1", "account:delete")
            .await;
    let (status, _) = s.call("DELETE", "/users/me", &ana_leaving, None).await;
    assert_eq!(status, 204);
    s.until(|| async { s.call("GET", "/blog", &ana_reader, None).await.0 == 401 })
        .await;
    s.until(|| async {
        s.call("GET", "/blog", &bob, None).await.1["data"]
            .as_array()
            .is_some_and(Vec::is_empty)
    })
    .await;
    let req =
        s.p.http
            .post(format!("{}/oauth", s.p.auth))
            .basic_auth("ana", Some("ana-password-1"));
    assert_eq!(s.p.json(req).await.0, 401, "the account is gone");
    assert_eq!(
        s.call("GET", "/users/me", &bob, None).await.0,
        200,
        "others are untouched"
    );
}

#[tokio::test]
async fn partners_use_profiles_and_the_blog_through_the_gateway_sqlite() {
    partners_use_profiles_and_the_blog_through_the_gateway(Backend::Sqlite).await;
}

#[tokio::test]
async fn partners_use_profiles_and_the_blog_through_the_gateway_postgres() {
    partners_use_profiles_and_the_blog_through_the_gateway(Backend::Postgres).await;
}
