//! RFC 7662 introspection against a running auth, on SQLite with the in-process bus and on
//! PostgreSQL with RabbitMQ.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use serde_json::json;
use test_support::platform::{self, Backend, Platform};

async fn eventually_inactive(p: &Platform, caller: &(String, String), token: &str) -> Duration {
    let started = Instant::now();
    loop {
        let (status, _, body) = p.introspect(caller, token).await;
        assert_eq!(status, 200);
        if body == json!({"active": false}) {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still active: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn callers_see_what_they_are_entitled_to(backend: Backend) {
    let p = Platform::start(backend).await;
    let owner = p
        .application(json!({"name": "Owner", "scopes": ["profile", "blog:read"]}))
        .await;
    let stranger = p.application(json!({"name": "Stranger", "scopes": ["profile"]})).await;
    let gateway = p.privileged_client().await;
    let token = p.token(&owner, "blog:read").await;

    let (status, headers, full) = p.introspect(&owner, &token).await;
    assert_eq!(status, 200, "{full}");
    let fields: Vec<&str> = full.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        [
            "active",
            "aud",
            "client_id",
            "exp",
            "iat",
            "iss",
            "jti",
            "nbf",
            "scope",
            "sub",
            "token_type"
        ]
    );
    assert_eq!(full["active"], true);
    assert_eq!(full["client_id"], owner.0.as_str());
    assert_eq!(full["scope"], "blog:read");
    assert_eq!(full["token_type"], "Bearer");
    assert_eq!(full["iss"], platform::ISSUER);
    let max_age: i64 = headers["cache-control"]
        .to_str()
        .unwrap()
        .trim_start_matches("private, max-age=")
        .parse()
        .unwrap();
    assert!((1..=300).contains(&max_age), "{max_age}");

    assert_eq!(
        p.introspect(&gateway, &token).await.2,
        full,
        "the privileged caller sees it all"
    );
    let (status, headers, limited) = p.introspect(&stranger, &token).await;
    assert_eq!(
        (status, limited),
        (200, json!({"active": false})),
        "another client learns nothing"
    );
    assert_eq!(headers["cache-control"], "no-store");

    // A bearer token carrying the privileged scope authenticates a caller too (seed 004).
    let bearer = p.token(&gateway, "introspect").await;
    let req = p
        .http
        .post(format!("{}/mcg/v1/tokeninfo", p.introspection))
        .bearer_auth(&bearer)
        .form(&[("token", token.as_str()), ("token_type_hint", "access_token")]);
    assert_eq!(p.json(req).await.2, full, "seed 004's path answers the same");

    // A user's token names the user.
    let user_token = p.login(platform::ADMIN.0, platform::ADMIN.1).await;
    let (_, _, user) = p.introspect(&gateway, &user_token).await;
    assert_eq!(user["username"], platform::ADMIN.0);
    assert_ne!(user["sub"], user["client_id"]);
}

#[tokio::test]
async fn sqlite_callers_see_what_they_are_entitled_to() {
    callers_see_what_they_are_entitled_to(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_callers_see_what_they_are_entitled_to() {
    callers_see_what_they_are_entitled_to(Backend::Postgres).await;
}

async fn callers_must_authenticate(backend: Backend) {
    let p = Platform::start(backend).await;
    let owner = p.application(json!({"name": "Owner", "scopes": ["profile"]})).await;
    let token = p.token(&owner, "profile").await;
    let url = format!("{}/oauth2/introspect", p.introspection);
    let cases = [
        ("nobody", p.http.post(&url).form(&[("token", token.as_str())])),
        (
            "wrong secret",
            p.http
                .post(&url)
                .basic_auth(&owner.0, Some("wrong"))
                .form(&[("token", token.as_str())]),
        ),
        (
            "forged bearer",
            p.http
                .post(&url)
                .bearer_auth("not-a-token")
                .form(&[("token", token.as_str())]),
        ),
        (
            "wrong form secret",
            p.http.post(&url).form(&[
                ("token", token.as_str()),
                ("client_id", &owner.0),
                ("client_secret", "x"),
            ]),
        ),
    ];
    for (case, req) in cases {
        let (status, headers, body) = p.json(req).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{case}: {body}"
        );
        assert!(headers.contains_key("www-authenticate"), "{case}");
    }
    let form = [
        ("client_id", owner.0.as_str()),
        ("client_secret", owner.1.as_str()),
        ("token", token.as_str()),
    ];
    assert_eq!(
        p.json(p.http.post(&url).form(&form)).await.2["active"],
        true,
        "client_secret_post works"
    );
    let (status, _, body) = p
        .json(
            p.http
                .post(&url)
                .basic_auth(&owner.0, Some(&owner.1))
                .form(&[("x", "y")]),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")));
    let (status, _, body) = p
        .json(p.http.post(&url).basic_auth(&owner.0, Some(&owner.1)).body("token=%zz"))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
}

#[tokio::test]
async fn sqlite_callers_must_authenticate() {
    callers_must_authenticate(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_callers_must_authenticate() {
    callers_must_authenticate(Backend::Postgres).await;
}

/// Flips one character of the signature: a well-formed JWT that no key signed.
fn forge(token: &str) -> String {
    let (head, signature) = token.rsplit_once('.').unwrap();
    let mut bytes = signature.as_bytes().to_vec();
    bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
    format!("{head}.{}", String::from_utf8(bytes).unwrap())
}

async fn dead_tokens_are_inactive_and_say_nothing(backend: Backend) {
    let p = Platform::start(backend).await;
    let owner = p.application(json!({"name": "Owner", "scopes": ["profile"]})).await;
    let token = p.token(&owner, "profile").await;
    for dead in [
        forge(&token),
        "garbage".to_owned(),
        "rt_unknown".to_owned(),
        format!("{token}x"),
    ] {
        let (status, _, body) = p.introspect(&owner, &dead).await;
        assert_eq!((status, body), (200, json!({"active": false})), "{dead}");
    }

    // Revocation at auth reaches introspection through the `token.revoked` event.
    p.revoke(&owner, &token).await;
    let waited = eventually_inactive(&p, &owner, &token).await;
    println!("revocation seen by introspection after {waited:?}");

    // Deleting the application ends every token it had.
    let other = p.token(&owner, "profile").await;
    assert_eq!(p.introspect(&owner, &other).await.2["active"], true);
    let gateway = p.privileged_client().await;
    let admin = p.login(platform::ADMIN.0, platform::ADMIN.1).await;
    let req = p
        .http
        .delete(format!("{}/applications/{}", p.auth, owner.0))
        .bearer_auth(admin);
    assert_eq!(p.json(req).await.0, 204);
    eventually_inactive(&p, &gateway, &other).await;
}

#[tokio::test]
async fn sqlite_dead_tokens_are_inactive_and_say_nothing() {
    dead_tokens_are_inactive_and_say_nothing(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_dead_tokens_are_inactive_and_say_nothing() {
    dead_tokens_are_inactive_and_say_nothing(Backend::Postgres).await;
}

async fn refresh_tokens_are_looked_up(backend: Backend) {
    let p = Platform::start(backend).await;
    let app = p
        .application(
            json!({"name": "First party", "grant_types": ["password", "refresh_token"], "scopes": ["profile"]}),
        )
        .await;
    let tokens = p
        .password_grant(&app, platform::ADMIN.0, platform::ADMIN.1, "profile")
        .await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (_, _, body) = p.introspect(&app, refresh).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(body["username"], platform::ADMIN.0);
    assert_eq!(body["client_id"], app.0.as_str());
    let stranger = p.application(json!({"name": "Stranger", "scopes": ["profile"]})).await;
    assert_eq!(p.introspect(&stranger, refresh).await.2, json!({"active": false}));
    p.revoke(&app, refresh).await;
    assert_eq!(
        p.introspect(&app, refresh).await.2,
        json!({"active": false}),
        "revoked at once: auth is asked"
    );
}

#[tokio::test]
async fn sqlite_refresh_tokens_are_looked_up() {
    refresh_tokens_are_looked_up(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_refresh_tokens_are_looked_up() {
    refresh_tokens_are_looked_up(Backend::Postgres).await;
}

#[tokio::test]
async fn the_openapi_document_describes_both_paths() {
    let p = Platform::start(Backend::Sqlite).await;
    let (status, _, doc) = p.json(p.http.get(format!("{}/openapi.json", p.introspection))).await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/oauth2/introspect") && paths.contains_key("/mcg/v1/tokeninfo"));
    assert!(doc["components"]["schemas"]["Introspection"].is_object());
}
