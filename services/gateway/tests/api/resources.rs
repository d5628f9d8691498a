//! The resource APIs end to end, as a partner sees them: auth, introspection, user-profile,
//! blog, webhooks and notifications behind a gateway, real tokens, on SQLite with the in-process bus and on PostgreSQL
//! with RabbitMQ and Redis.

use crate::platform;

use std::time::{Duration, Instant};

use platform::{ADMIN, Backend, Platform};
use runtime::Deps;
use serde_json::{Value, json};
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

fn service_figment(defaults: &str, db: &Db) -> figment::Figment {
    settings::figment(defaults, "RESOURCES_TEST_UNUSED_")
        .unwrap()
        .merge(("http.port", 0))
        .merge(("http.workers", 2))
        .merge(("database.url", db.url()))
        .merge(("identity.secret", IDENTITY_SECRET))
}

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
        settings::extract(service_figment(user_profile::DEFAULTS, &profile_db)).unwrap(),
        deps(&p, "user-profile", &shutdown),
    )
    .await
    .expect("user-profile starts");
    let blog = blog::start(
        settings::extract(service_figment(blog::DEFAULTS, &blog_db)).unwrap(),
        deps(&p, "blog", &shutdown),
    )
    .await
    .expect("blog starts");
    let webhook_settings = service_figment(webhook::DEFAULTS, &webhook_db)
        .merge(("delivery.schedule", json!(["0s", "300ms", "300ms"])))
        .merge(("delivery.poll_interval", "100ms"));
    let webhooks = webhook::start(
        settings::extract(webhook_settings).unwrap(),
        deps(&p, "webhook", &shutdown),
    )
    .await
    .expect("webhook starts");
    let notification_settings =
        service_figment(notification_dispatch::DEFAULTS, &notification_db).merge(("dispatch.poll_interval", "100ms"));
    let notifications = notification_dispatch::start(
        settings::extract(notification_settings).unwrap(),
        deps(&p, "notification-dispatch", &shutdown),
    )
    .await
    .expect("notification-dispatch starts");
    let (profiles, blog, webhooks, notifications) =
        (served(profiles), served(blog), served(webhooks), served(notifications));
    let route = |prefix: &str, upstream: &str, extra: Value| {
        let mut route = json!({"prefix": prefix, "upstream": upstream, "timeout_secs": 10});
        route
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        route
    };
    let routes = json!([
        route("/users", &p.auth, json!({"methods": ["POST"], "public": true})),
        route("/users", &profiles, json!({})),
        route("/api/get_user_info", &profiles, json!({"query_token": true})),
        route("/blog", &blog, json!({})),
        route("/accounts", &p.auth, json!({})),
        route("/webhooks/event-types", &webhooks, json!({"public": true})),
        route("/webhooks", &webhooks, json!({"scopes": ["webhooks:manage"]})),
        route("/Services", &notifications, json!({"scopes": ["notifications:send"]})),
        route("/providers", &notifications, json!({"scopes": ["notifications:send"]})),
        route("/notifications", &notifications, json!({"scopes": ["notifications"]})),
    ]);
    let mut figment = settings::figment(gateway::DEFAULTS, "RESOURCES_TEST_UNUSED_")
        .unwrap()
        .merge(("http.port", 0))
        .merge(("http.workers", 2))
        .merge(("introspection.url", format!("{}/oauth2/introspect", p.introspection)))
        .merge(("tokens.issuer", platform::ISSUER))
        .merge(("upstreams.auth", p.auth.clone()))
        .merge(("identity.secret", IDENTITY_SECRET))
        .merge(("rate_limits.partner", json!({"rate": 1000.0, "burst": 1000})))
        .merge(("usage.report_interval", "200ms"))
        .merge(figment::providers::Serialized::default("routes", routes));
    if backend == Backend::Postgres {
        figment = figment
            .merge(("bus.kind", "rabbitmq"))
            .merge(("bus.url", test_support::amqp_url()))
            .merge(("bus.exchange", &p.exchange))
            .merge(("cache.kind", "redis"))
            .merge(("cache.url", test_support::redis_url()))
            .merge(("cache.prefix", format!("{}:", test_support::unique("gw"))));
    }
    let gateway = gateway::start(settings::extract(figment).unwrap(), deps(&p, "gateway", &shutdown))
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
