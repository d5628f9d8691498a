//! Seed 001's IP filtering: an application names the networks its credentials and tokens are
//! accepted from. Auth and introspection on PostgreSQL, Redis and RabbitMQ, a gateway process
//! on the default route table; callers on loopback addresses of their own (127.0.0.0/8).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::platform::{ADMIN, Backend, Platform};
use crate::support::{self, Gateway};

fn from(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(address))
        .build()
        .unwrap()
}

async fn answer(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn token(gw: &Gateway, client: &reqwest::Client, (id, secret): &(String, String)) -> (u16, Value) {
    answer(
        client
            .post(format!("{}/oauth2/token", gw.base))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "profile")]),
    )
    .await
}

async fn call(gw: &Gateway, client: &reqwest::Client, token: &str) -> (u16, Value) {
    answer(client.get(format!("{}/users/me", gw.base)).bearer_auth(token)).await
}

fn access_token(body: &Value) -> String {
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn credentials_and_tokens_are_accepted_only_from_the_applications_networks() {
    let p = Platform::start(Backend::Postgres).await;
    let env = [
        ("GATEWAY_UPSTREAMS__INTROSPECTION", p.introspection.clone()),
        ("GATEWAY_UPSTREAMS__USER_PROFILE", support::upstream()),
    ];
    let prefix = format!("{}:", test_support::unique("networks"));
    let gw = support::spawn(&p, &test_support::redis_url(), &prefix, "", &env).await;
    let app = p
        .application(json!({"name": "Filtered", "scopes": ["profile"], "allowed_networks": ["127.0.5.0/24"]}))
        .await;
    let (inside, outside) = (from([127, 0, 5, 1]), from([127, 0, 6, 1]));

    // The token endpoint, through the gateway.
    let (status, body) = token(&gw, &inside, &app).await;
    assert_eq!(status, 200, "{body}");
    let first = access_token(&body);
    let (status, body) = token(&gw, &outside, &app).await;
    assert_eq!((status, &body["error"]), (403, &json!("access_denied")), "{body}");

    // The API, through the gateway: the token is good only from the networks.
    assert_eq!(call(&gw, &from([127, 0, 5, 2]), &first).await.0, 200);
    let (status, body) = call(&gw, &outside, &first).await;
    assert_eq!((status, &body["code"]), (403, &json!("forbidden")), "{body}");

    // Introspection with the application's credentials obeys the same list.
    let introspect = |client: &reqwest::Client| {
        client
            .post(format!("{}/oauth2/introspect", gw.base))
            .basic_auth(&app.0, Some(&app.1))
            .form(&[("token", first.as_str())])
    };
    assert_eq!(answer(introspect(&inside)).await.0, 200);
    assert_eq!(answer(introspect(&outside)).await.0, 403);

    // The list changes: tokens issued under the old one stop working at once.
    let admin = p.login(ADMIN.0, ADMIN.1).await;
    let change = |networks: Value| {
        p.http
            .patch(format!("{}/applications/{}", p.auth, app.0))
            .bearer_auth(&admin)
            .json(&json!({ "allowed_networks": networks }))
    };
    let (status, body) = answer(change(json!(["10.0.0.0/8", "nope", "127.0.6.1/40"]))).await;
    assert_eq!(status, 422, "{body}");
    let fields = test_support::invalid_fields(&body);
    assert_eq!(fields, ["allowed_networks[1]", "allowed_networks[2]"]);
    let (status, body) = answer(change(json!(["127.0.6.0/24"]))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["allowed_networks"], json!(["127.0.6.0/24"]));
    let started = Instant::now();
    while call(&gw, &inside, &first).await.0 != 401 {
        assert!(started.elapsed() < Duration::from_secs(5), "the old token still works");
    }
    let (status, body) = token(&gw, &outside, &app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(call(&gw, &outside, &access_token(&body)).await.0, 200);
    assert_eq!(token(&gw, &inside, &app).await.0, 403);

    // An application without a list is accepted from anywhere.
    let open = p.application(json!({"name": "Open", "scopes": ["profile"]})).await;
    for client in [&inside, &outside] {
        let (status, body) = token(&gw, client, &open).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(call(&gw, client, &access_token(&body)).await.0, 200);
    }
}
