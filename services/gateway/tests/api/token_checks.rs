//! The gateway's token checks against a stand-in introspection service whose answers and calls
//! the test controls: caching, coalescing, scopes, audience, failing closed, revocation events,
//! identity headers, rate limits, CORS, the legacy query token, and the merged API reference.

use crate::support::{echo, public, route};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use events::catalogue::{Revoked, TokenRevoked};
use events::{Bus, Event, InProcessBus};
use gateway::{Addresses, DocSource, RatePolicy, Route};
use runtime::Deps;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const IDENTITY_SECRET: &str = "identity-dev-secret-change-me";

#[derive(Default)]
struct Introspection {
    calls: AtomicUsize,
    down: AtomicBool,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// When every test token was issued: fixed, as a real token's `iat` is, whenever it is asked.
fn issued_at() -> i64 {
    static AT: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *AT.get_or_init(|| now() - 60)
}

const ISSUER: &str = "http://issuer.test";

/// The key the stand-in auth publishes and signs test tokens with.
fn key() -> &'static test_support::TestKey {
    static KEY: std::sync::OnceLock<test_support::TestKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| test_support::TestKey::generate("test-key"))
}

fn claims(spec: &str) -> Value {
    let (jti, rest) = spec.split_once(':').unwrap_or((spec, ""));
    let (scope, aud) = rest.split_once('@').unwrap_or((rest, "partner-api"));
    let (client, sub) = jti.split_once('~').unwrap_or((jti, "user-1"));
    json!({"iss": ISSUER, "sub": sub, "aud": aud, "exp": issued_at() + 660, "iat": issued_at(),
           "nbf": issued_at(), "jti": jti, "client_id": format!("app-{client}"), "scope": scope.replace(',', " "),
           "username": "ana"})
}

/// A signed test token for a spec `<jti>:<scope,scope>[@aud]`: `jwt("t1:profile")`, the same
/// token for the same spec; a jti `<client>~<user>` names the user of client `app-<client>`.
/// `dead:…` is inactive at introspection.
fn jwt(spec: &str) -> String {
    key().sign(&claims(spec))
}

fn answer(token: &str) -> Value {
    let claims = test_support::claims_of(token).unwrap();
    if claims["jti"] == "dead" {
        return json!({"active": false});
    }
    let mut answer = claims;
    answer["active"] = json!(true);
    answer["token_type"] = json!("Bearer");
    answer
}

macro_rules! serve {
    ($app:expr) => {{
        let server = HttpServer::new($app).workers(1).bind(("127.0.0.1", 0)).unwrap();
        let addr = server.addrs()[0];
        tokio::spawn(server.run());
        format!("http://{addr}")
    }};
}

fn introspection(state: Arc<Introspection>) -> String {
    serve!(move || {
        let state = state.clone();
        App::new()
            .route("/.well-known/jwks.json", web::get().to(|| async { HttpResponse::Ok().json(key().jwks()) }))
            .route("/openapi.json", web::get().to(|| async {
                HttpResponse::Ok().json(json!({"openapi": "3.1.0", "paths": {"/echo": {"get": {"tags": ["echo"], "summary": "Echo <b>it</b>", "responses": {"200": {"description": "ok"}}}}, "/missing/{id}": {"get": {"responses": {"200": {"description": "ok"}}}}, "/healthz": {}}, "components": {"schemas": {"Thing": {"type": "object"}}}}))
            }))
            .route("/introspect", web::post().to(move |req: HttpRequest, form: web::Form<Vec<(String, String)>>| {
                let state = state.clone();
                async move {
                    assert!(req.headers().get("authorization").unwrap().to_str().unwrap().starts_with("Basic "));
                    state.calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if state.down.load(Ordering::SeqCst) {
                        return HttpResponse::ServiceUnavailable().finish();
                    }
                    HttpResponse::Ok().json(answer(&form.0.iter().find(|(k, _)| k == "token").unwrap().1))
                }
            }))
    })
}

struct Gateway {
    base: String,
    bus: Arc<InProcessBus>,
    http: reqwest::Client,
    _stop: CancellationToken,
}

async fn gateway(introspection: &str, up: &str) -> Gateway {
    let routes = vec![
        public("/open", up, 2),
        Route {
            scopes: vec!["blog:write".into()],
            ..route("/write", up, 2)
        },
        Route {
            rate_limit: Some("tight".into()),
            ..route("/limited", up, 2)
        },
        Route {
            query_token: true,
            ..route("/api/get_user_info", up, 2)
        },
        Route {
            revokes_bearer: true,
            ..public("/revoke", up, 2)
        },
        route("/", up, 2),
    ];
    let source = |name: &str, url: String| DocSource {
        name: name.into(),
        url: Some(url),
    };
    let settings = settings::changed(gateway::DEFAULTS, |s: &mut gateway::Settings| {
        s.http.port = 0;
        s.http.workers = 2;
        s.introspection.url = format!("{introspection}/introspect");
        s.upstreams.insert("auth".into(), Addresses::One(introspection.into()));
        s.tokens.issuer = ISSUER.into();
        s.cors.allowed_origins = vec!["https://app.example.com".into()];
        s.rate_limits.insert("tight".into(), RatePolicy { rate: 1.0, burst: 2 });
        s.rate_limit_keys.per_user_clients = vec!["app-portal".into()];
        s.docs.sources = vec![
            source("echo", format!("{introspection}/openapi.json")),
            source("gone", "http://127.0.0.1:9/openapi.json".into()),
        ];
        s.routes = routes;
    })
    .unwrap();
    let bus = Arc::new(InProcessBus::new());
    let shutdown = CancellationToken::new();
    let started = gateway::start(
        settings,
        Deps {
            bus: bus.clone(),
            shutdown: shutdown.clone(),
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", started.http.addr);
    tokio::spawn(started.stopped());
    Gateway {
        base,
        bus,
        http: reqwest::Client::new(),
        _stop: shutdown,
    }
}

impl Gateway {
    async fn get(&self, path: &str, token: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(jwt(token));
        }
        let res = req.send().await.unwrap();
        let (status, headers) = (res.status().as_u16(), res.headers().clone());
        (status, headers, res.json().await.unwrap_or(Value::Null))
    }
}

async fn setup() -> (Arc<Introspection>, Gateway) {
    let state = Arc::new(Introspection::default());
    let gw = gateway(&introspection(state.clone()), &echo::upstream()).await;
    (state, gw)
}

#[tokio::test]
async fn tokens_are_checked_cached_and_identity_is_signed_for_upstreams() {
    let (introspection, gw) = setup().await;
    let (status, headers, body) = gw.get("/things", None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"partner-api\"");
    let (status, headers, _) = gw.get("/things", Some("dead:x")).await;
    assert_eq!(status, 401);
    assert!(headers["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    let (status, _, _) = gw.get("/things", Some("t1:profile@another-api")).await;
    assert_eq!(status, 401, "a token for another audience is refused");

    let res = gw
        .http
        .get(format!("{}/things", gw.base))
        .bearer_auth(jwt("t1:profile"))
        .header("x-auth-subject", "admin")
        .header("x-auth-scope", "everything")
        .header("x-request-id", "req-7")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let echo: Value = res.json().await.unwrap();
    let headers = echo["headers"].as_object().unwrap();
    let identity = identity::verify(
        |name| headers.get(name).and_then(Value::as_str),
        IDENTITY_SECRET.as_bytes(),
        "req-7",
        now(),
        Duration::from_secs(60),
    )
    .expect("signed by the gateway");
    assert_eq!(
        (identity.subject(), identity.scope.as_str()),
        ("user-1", "profile"),
        "client headers replaced"
    );
    assert_eq!(identity.client_id, "app-t1");

    let calls = introspection.calls.load(Ordering::SeqCst);
    let junk = gw
        .http
        .get(format!("{}/things", gw.base))
        .bearer_auth("not-a-jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(junk.status(), 401);
    assert_eq!(
        introspection.calls.load(Ordering::SeqCst),
        calls,
        "junk is refused without asking"
    );
    for _ in 0..5 {
        assert_eq!(gw.get("/things", Some("t1:profile")).await.0, 200);
    }
    assert_eq!(
        introspection.calls.load(Ordering::SeqCst),
        calls,
        "answered from the cache"
    );
    let metrics = gw
        .http
        .get(format!("{}/metrics", gw.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gateway_token_lookups_total{level=\"local\",result=\"hit\",service=\"gateway\"} 5"),
        "{metrics}"
    );
}

#[tokio::test]
async fn forged_and_foreign_tokens_are_refused_without_asking_introspection() {
    let (introspection, gw) = setup().await;
    let impostor = test_support::TestKey::generate("test-key");
    let stranger = test_support::TestKey::generate("another-key");
    let expired = json!({"exp": issued_at() - 1, "nbf": issued_at() - 100, "iat": issued_at() - 100});
    let mut stale = claims("old:profile");
    for (name, value) in expired.as_object().unwrap() {
        stale[name] = value.clone();
    }
    let mut foreign = claims("foreign:profile");
    foreign["iss"] = json!("https://elsewhere.example");
    let unsigned = {
        use base64::Engine;
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let header = json!({"alg": "none", "typ": "at+jwt", "kid": "test-key"});
        format!("{}.{}.", b64(&header), b64(&claims("none:profile")))
    };
    let forgeries = [
        impostor.sign(&claims("forged:profile")),
        stranger.sign(&claims("unknown-key:profile")),
        key().sign(&stale),
        key().sign(&foreign),
        key().sign(&claims("t9:profile@another-api")),
        unsigned,
    ];
    for token in &forgeries {
        let res = gw
            .http
            .get(format!("{}/things", gw.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{token}");
    }
    assert_eq!(
        introspection.calls.load(Ordering::SeqCst),
        0,
        "not one introspection call"
    );
    assert_eq!(gw.get("/things", Some("genuine:profile")).await.0, 200);
    assert_eq!(introspection.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn concurrent_misses_make_one_introspection_call() {
    let (introspection, gw) = setup().await;
    let gw = Arc::new(gw);
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let gw = gw.clone();
            tokio::spawn(async move { gw.get("/things", Some("burst:profile")).await.0 })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap(), 200);
    }
    assert_eq!(introspection.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn scopes_are_enforced_on_every_hit() {
    let (_, gw) = setup().await;
    assert_eq!(gw.get("/things", Some("t2:profile")).await.0, 200, "cached now");
    let (status, headers, body) = gw.get("/write/post", Some("t2:profile")).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    assert_eq!(gw.get("/write/post", Some("t3:profile,blog:write")).await.0, 200);
}

#[tokio::test]
async fn introspection_down_fails_closed_but_cached_tokens_still_work() {
    let (introspection, gw) = setup().await;
    assert_eq!(gw.get("/things", Some("known:profile")).await.0, 200);
    introspection.down.store(true, Ordering::SeqCst);
    let (status, _, body) = gw.get("/things", Some("unknown:profile")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("service_unavailable")),
        "{body}"
    );
    assert_eq!(gw.get("/things", Some("known:profile")).await.0, 200);
}

/// Seed 002's `DELETE /revoke` through the gateway: the next request with that token is refused
/// by this replica though no `token.revoked` came (the stand-in still calls the token active).
#[tokio::test]
async fn a_bearer_revoked_through_this_gateway_is_refused_before_the_event() {
    let (_, gw) = setup().await;
    assert_eq!(gw.get("/things", Some("gone:profile")).await.0, 200);
    let res = gw
        .http
        .delete(format!("{}/revoke", gw.base))
        .bearer_auth(jwt("gone:profile"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(gw.get("/things", Some("gone:profile")).await.0, 401);
    assert_eq!(
        gw.get("/things", Some("kept:profile")).await.0,
        200,
        "other tokens unaffected"
    );
}

#[tokio::test]
async fn a_revocation_event_refuses_the_token_at_once() {
    let (_, gw) = setup().await;
    assert_eq!(gw.get("/things", Some("r1:profile")).await.0, 200);
    assert_eq!(gw.get("/things", Some("r2:profile")).await.0, 200);
    let revoked = TokenRevoked::token("r1".parse().unwrap(), "app-r1".parse().unwrap(), None, now() + 600);
    gw.bus
        .publish(&[Event::new("/auth", None, &revoked).unwrap()])
        .await
        .unwrap();
    let started = std::time::Instant::now();
    while gw.get("/things", Some("r1:profile")).await.0 != 401 {
        assert!(started.elapsed() < Duration::from_secs(2), "still accepted");
    }
    assert_eq!(
        gw.get("/things", Some("r2:profile")).await.0,
        200,
        "other tokens unaffected"
    );
    let every = TokenRevoked {
        revoked: Revoked::Client("app-r2".parse().unwrap()),
        exp: now() + 600,
    };
    gw.bus
        .publish(&[Event::new("/auth", None, &every).unwrap()])
        .await
        .unwrap();
    let started = std::time::Instant::now();
    while gw.get("/things", Some("r2:profile")).await.0 != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a deleted application's token is still accepted"
        );
    }
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let (_, gw) = setup().await;
    let (status, headers, _) = gw.get("/limited", Some("rl:profile")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            headers["ratelimit-limit"].to_str().unwrap(),
            headers["ratelimit-remaining"].to_str().unwrap()
        ),
        ("2", "1")
    );
    assert_eq!(gw.get("/limited", Some("rl:profile")).await.0, 200);
    let (status, headers, body) = gw.get("/limited", Some("rl:profile")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("too_many_requests")),
        "{body}"
    );
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["ratelimit-remaining"], "0");
    assert_eq!(gw.get("/limited", Some("other:profile")).await.0, 200, "per client");
    // Users of one partner's client share its limit; the portal's users count apart.
    for spec in ["team~u1:profile", "team~u2:profile"] {
        assert_eq!(gw.get("/limited", Some(spec)).await.0, 200);
    }
    assert_eq!(
        gw.get("/limited", Some("team~u3:profile")).await.0,
        429,
        "one client, one limit"
    );
    for _ in 0..2 {
        assert_eq!(gw.get("/limited", Some("portal~u1:profile")).await.0, 200);
    }
    assert_eq!(gw.get("/limited", Some("portal~u1:profile")).await.0, 429);
    assert_eq!(
        gw.get("/limited", Some("portal~u2:profile")).await.0,
        200,
        "another portal user"
    );
}

#[tokio::test]
async fn cors_and_the_legacy_query_token() {
    let (_, gw) = setup().await;
    let preflight = gw
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/things", gw.base))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204, "answered without a token");
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let refused = gw
        .http
        .get(format!("{}/things", gw.base))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert!(!refused.headers().contains_key("access-control-allow-origin"));
    let (status, _, _) = gw
        .get(&format!("/things?access_token={}", jwt("q1:profile")), None)
        .await;
    assert_eq!(status, 401, "query tokens only on the legacy path");
    let (status, _, echo) = gw
        .get(&format!("/api/get_user_info?access_token={}", jwt("q1:profile")), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(echo["headers"]["x-auth-client-id"], "app-q1");
    let both = gw
        .http
        .get(format!(
            "{}/api/get_user_info?access_token={}",
            gw.base,
            jwt("q1:profile")
        ))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_eq!(
        both.status(),
        401,
        "an Authorization header that is not a bearer is not passed over for the query"
    );
}

#[tokio::test]
async fn a_method_no_service_has_for_a_documented_path_answers_405_with_allow() {
    let (_, gw) = setup().await;
    let token = jwt("m1:profile");
    let refused = gw
        .http
        .delete(format!("{}/missing/7", gw.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 405);
    assert_eq!(refused.headers()["allow"], "GET");
    let (status, _, _) = gw.get("/missing/7", Some("m1:profile")).await;
    assert_eq!(status, 404, "the method exists: the resource does not");
    let unknown = gw
        .http
        .delete(format!("{}/missing/7/deeper", gw.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404, "no documented path");
}

#[tokio::test]
async fn the_merged_reference_and_its_page() {
    let (_, gw) = setup().await;
    let (status, _, doc) = gw.get("/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["servers"][0]["url"], "http://127.0.0.1:8080");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/echo") && paths.contains_key("/docs"), "{paths:?}");
    assert!(!paths.contains_key("/openapi.json"));
    assert!(doc["components"]["schemas"]["Thing"].is_object());
    assert_eq!(doc["info"]["x-unavailable"], json!(["gone"]));
    let echo = &doc["paths"]["/echo"]["get"];
    assert_eq!(echo["security"], json!([{"bearer": []}]), "the route requires a token");
    assert_eq!(echo["responses"]["401"]["$ref"], "#/components/responses/Unauthorized");
    assert!(doc["components"]["responses"]["Unauthorized"].is_object());
    let (status, _, swagger) = gw.get("/swagger/swagger.json", None).await;
    assert_eq!(
        (status, swagger["swagger"].as_str(), swagger["host"].as_str()),
        (200, Some("2.0"), Some("127.0.0.1:8080"))
    );
    assert_eq!(swagger["paths"]["/echo"]["get"]["security"], json!([{"bearer": []}]));
    let page = gw.http.get(format!("{}/docs", gw.base)).send().await.unwrap();
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<code>/echo</code>") && html.contains("Echo &lt;b&gt;it&lt;/b&gt;"),
        "escaped"
    );
    assert!(
        html.contains("No valid bearer access token"),
        "a shared response shows its description"
    );
}
