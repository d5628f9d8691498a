//! End to end, as in production: auth and introspection on PostgreSQL, RabbitMQ between them,
//! and **two gateway processes** (this crate's binary) sharing Redis, in front of an upstream
//! that shows what it received.

use crate::platform;
use crate::support;

use std::time::{Duration, Instant};

use platform::{Backend, Platform};
use serde_json::{Value, json};
use support::{Gateway, call, gateway, upstream};

/// Polls until `gw` refuses `token`; the time it took.
async fn refused_after(p: &Platform, gw: &Gateway, token: &str) -> Duration {
    let started = Instant::now();
    loop {
        if call(p, gw, token).await.0 == 401 {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still accepted after 10 s");
    }
}

/// A token signed with auth's real key but with chosen claims.
async fn signed(p: &Platform, audience: &str, exp_offset: i64) -> String {
    let settings = runtime::DatabaseSettings {
        url: p.auth_db.clone().into(),
        max_connections: 1,
    };
    let db = runtime::database(&settings, &[&events::MIGRATIONS, &auth::MIGRATIONS])
        .await
        .unwrap();
    let keys = auth::keys::KeyRing::load(
        &db,
        platform::ISSUER,
        audience,
        3_600_000,
        auth::keys::SigningAlgorithm::EdDSA,
    )
    .await
    .unwrap();
    let now = storage::now_millis() / 1000;
    let claims = auth::keys::AccessClaims {
        iss: platform::ISSUER.into(),
        user: Some("someone".parse().unwrap()),
        aud: audience.into(),
        exp: now + exp_offset,
        iat: now - 7200,
        nbf: now - 7200,
        jti: test_support::unique("jti").parse().unwrap(),
        client_id: "gateway".parse().unwrap(),
        scope: "profile".into(),
        username: None,
        allowed_networks: Vec::new(),
    };
    keys.sign(&claims).unwrap()
}

#[tokio::test]
async fn two_gateways_validate_share_and_refuse_revoked_tokens_at_once() {
    let p = Platform::start(Backend::Postgres).await;
    let prefix = format!("{}:", test_support::unique("gw"));
    let up = upstream();
    let (a, b) = (
        gateway(&p, &test_support::redis_url(), &prefix, &up).await,
        gateway(&p, &test_support::redis_url(), &prefix, &up).await,
    );
    let app = p
        .application(json!({"name": "Partner", "scopes": ["profile", "email"]}))
        .await;
    let token = p.token(&app, "profile").await;

    let res = p
        .http
        .get(format!("{}/echo", a.base))
        .bearer_auth(&token)
        .header("x-auth-subject", "admin")
        .header("x-auth-scope", "everything")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen: Value = res.json().await.unwrap();
    assert_eq!(
        seen["headers"]["x-auth-subject"],
        app.0.as_str(),
        "the client's own headers never arrive"
    );
    assert_eq!(seen["headers"]["x-auth-scope"], "profile");
    assert!(seen["headers"]["x-auth-signature"].as_str().unwrap().starts_with("v1="));
    assert_eq!(call(&p, &b, &token).await.0, 200, "the second replica accepts it too");
    let metrics = p
        .http
        .get(format!("{}/metrics", b.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gateway_token_lookups_total{level=\"redis\",result=\"hit\",service=\"gateway\"} 1"),
        "the second replica found the first one's answer in Redis: {metrics}"
    );
    let narrow = p.token(&app, "email").await;
    assert_eq!(call(&p, &a, &narrow).await.0, 403, "the route wants the profile scope");

    // Revoked through auth: both replicas refuse it, at once rather than at the end of a TTL.
    p.revoke(&app, &token).await;
    let (on_a, on_b) = (refused_after(&p, &a, &token).await, refused_after(&p, &b, &token).await);
    println!("revocation refused on gateway A after {on_a:?}, on B after {on_b:?}");
    assert_eq!(call(&p, &a, &narrow).await.0, 403, "other tokens are unaffected");

    // Forged, expired, and foreign-audience tokens.
    let (head, signature) = narrow.rsplit_once('.').unwrap();
    let forged = format!(
        "{head}.{}",
        if signature.starts_with('A') { "B" } else { "A" }.to_owned() + &signature[1..]
    );
    let expired = signed(&p, "partner-api", -10).await;
    let foreign = signed(&p, "another-api", 600).await;
    let good = signed(&p, "partner-api", 600).await;
    for (case, token) in [
        ("forged", &forged),
        ("expired", &expired),
        ("other audience", &foreign),
        ("garbage", &"x".to_owned()),
    ] {
        for gw in [&a, &b] {
            let (status, body) = call(&p, gw, token).await;
            assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")), "{case}");
        }
    }
    assert_eq!(call(&p, &a, &good).await.0, 200, "the same key and claims, valid, pass");
}

#[tokio::test]
async fn introspection_down_fails_closed_and_redis_down_degrades() {
    let p = Platform::start(Backend::Postgres).await;
    let mut redis = test_support::OwnRedis::start();
    let prefix = format!("{}:", test_support::unique("gw"));
    let up = upstream();
    let gw = gateway(&p, &redis.url, &prefix, &up).await;
    let app = p.application(json!({"name": "Partner", "scopes": ["profile"]})).await;
    let (cached, revoked, fresh) = (
        p.token(&app, "profile").await,
        p.token(&app, "profile").await,
        p.token(&app, "profile").await,
    );
    assert_eq!(call(&p, &gw, &cached).await.0, 200);
    assert_eq!(call(&p, &gw, &revoked).await.0, 200);

    // Redis stops: valid tokens are still served (in-process cache, direct introspection),
    // revoked ones still refused, and readiness says the gateway is degraded, not down.
    redis.stop();
    assert_eq!(call(&p, &gw, &cached).await.0, 200);
    assert_eq!(
        call(&p, &gw, &fresh).await.0,
        200,
        "an uncached token is introspected directly"
    );
    p.revoke(&app, &revoked).await;
    refused_after(&p, &gw, &revoked).await;
    let ready: Value = p
        .http
        .get(format!("{}/readyz", gw.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["data"]["status"], "degraded", "{ready}");

    // Introspection stops: cached tokens pass, an uncached one gets 503, never a pass-through.
    p.stop_introspection();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let uncached = p.token(&app, "profile").await;
    let (status, body) = call(&p, &gw, &uncached).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("service_unavailable")),
        "{body}"
    );
    assert_eq!(call(&p, &gw, &cached).await.0, 200);
}
