//! The gateway forwards by prefix to a real upstream over HTTP and answers upstream failures in
//! the envelope (public routes: no token involved; see `tokens.rs` for the checks).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use events::InProcessBus;
use gateway::{Addresses, Route};
use runtime::Deps;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::public;

/// An upstream that echoes what it received, and one route that never answers in time.
fn upstream() -> String {
    let server = HttpServer::new(|| {
        App::new()
            .route("/slow/{tail:.*}", web::get().to(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                HttpResponse::Ok().finish()
            }))
            .default_service(web::to(|req: HttpRequest, body: web::Bytes| async move {
                let headers: serde_json::Map<String, Value> =
                    req.headers().iter().map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("")))).collect();
                HttpResponse::Created()
                    .insert_header(("x-upstream", "yes"))
                    .json(json!({"method": req.method().as_str(), "uri": req.uri().to_string(), "headers": headers, "body": String::from_utf8_lossy(&body)}))
            }))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    format!("http://{addr}")
}

async fn gateway(routes: Vec<Route>) -> (String, CancellationToken) {
    gateway_with(routes, HashMap::new()).await
}

/// A gateway with these routes and `[upstreams]` entries.
async fn gateway_with(routes: Vec<Route>, upstreams: HashMap<String, Addresses>) -> (String, CancellationToken) {
    static TELEMETRY: std::sync::OnceLock<Option<telemetry::TelemetryGuard>> = std::sync::OnceLock::new();
    TELEMETRY.get_or_init(|| telemetry::init("gateway-test").ok());
    let settings = settings::changed(gateway::DEFAULTS, |s: &mut gateway::Settings| {
        s.http.port = 0;
        s.http.workers = 1;
        s.proxy.body_idle_timeout = settings::Span::from_millis(300);
        s.routes = routes;
        s.upstreams.extend(upstreams);
    })
    .unwrap();
    let shutdown = CancellationToken::new();
    let started = gateway::start(
        settings,
        Deps {
            bus: Arc::new(InProcessBus::new()),
            shutdown: shutdown.clone(),
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", started.http.addr);
    tokio::spawn(started.stopped());
    (base, shutdown)
}

#[tokio::test]
async fn forwards_with_forwarding_headers_and_streams_back() {
    let up = upstream();
    let (gw, _stop) = gateway(vec![public("/api", &up, 1), public("/slow", &up, 1)]).await;
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{gw}/api/things?x=1"))
        .header("x-request-id", "req-42")
        .header("x-forwarded-for", "6.6.6.6")
        .header("connection", "keep-alive, x-secret-hop")
        .header("x-secret-hop", "not for the upstream")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers().get("x-upstream").unwrap(), "yes");
    assert_eq!(res.headers().get("x-request-id").unwrap(), "req-42");
    let echo: Value = res.json().await.unwrap();
    assert_eq!(
        (echo["method"].as_str(), echo["uri"].as_str(), echo["body"].as_str()),
        (Some("POST"), Some("/api/things?x=1"), Some("hello"))
    );
    let headers = &echo["headers"];
    assert_eq!(headers["x-request-id"], "req-42");
    assert_eq!(
        headers["x-forwarded-for"], "127.0.0.1",
        "a client's X-Forwarded-For is replaced"
    );
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert!(
        headers.get("x-secret-hop").is_none(),
        "fields named in Connection stay on this hop"
    );
    assert!(
        headers["traceparent"].as_str().is_some_and(|tp| tp.starts_with("00-")),
        "the gateway's span is the upstream's parent"
    );

    let res = client.get(format!("{gw}/slow/x")).send().await.unwrap();
    assert_eq!(res.status(), 504);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "gateway_timeout");
    let res = client.get(format!("{gw}/apix")).send().await.unwrap();
    assert_eq!(res.status(), 404, "prefixes match whole segments");
    let res = client.get(format!("{gw}/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200, "the gateway's own endpoints are not forwarded");
}

#[tokio::test]
async fn unreachable_upstream_is_502_in_the_envelope() {
    let (gw, _stop) = gateway(vec![public("/down", "http://127.0.0.1:9", 1)]).await;
    let res = reqwest::get(format!("{gw}/down")).await.unwrap();
    assert_eq!(res.status(), 502);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (body["success"].as_bool(), body["code"].as_str()),
        (Some(false), Some("bad_gateway"))
    );
}

#[tokio::test]
async fn bodies_stream_to_the_upstream_within_the_limit() {
    let up = upstream();
    let (gw, _stop) = gateway(vec![public("/api", &up, 5)]).await;
    let client = reqwest::Client::new();
    let chunks = |n: usize| {
        reqwest::Body::wrap_stream(futures_util::stream::iter(
            (0..n).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 64 * 1024])),
        ))
    };
    // Chunked (no length): forwarded as it comes.
    let res = client
        .post(format!("{gw}/api/upload"))
        .body(chunks(4))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let echo: Value = res.json().await.unwrap();
    assert_eq!(echo["body"].as_str().map(str::len), Some(4 * 64 * 1024));

    // Over the limit (1 MiB by default), declared or not: 413 in the envelope.
    let res = client
        .post(format!("{gw}/api/upload"))
        .body(vec![b'x'; 2 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "payload_too_large");
    let res = client.post(format!("{gw}/api/upload")).body(chunks(40)).send().await;
    assert!(
        res.is_err() || res.unwrap().status() == 413,
        "an endless chunked body is cut off"
    );
}

/// What the gateway answers on a raw connection that sends `request`: the status line, or
/// `None` when it closes without a word.
async fn raw(gw: &str, request: &[u8]) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(gw.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = vec![0; 4096];
    // A bound for the test, not a measure: the gateway's own timeouts are far shorter.
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut answer))
        .await
        .expect("an answer or a close");
    let n = read.unwrap_or(0);
    let text = String::from_utf8_lossy(&answer[..n]).into_owned();
    text.lines().next().map(str::to_owned).filter(|l| !l.is_empty())
}

#[tokio::test]
async fn a_body_that_stops_coming_is_408_not_a_504() {
    let up = upstream();
    // The route's timeout is far longer than the body's idle timeout (300 ms here).
    let (gw, _stop) = gateway(vec![public("/api", &up, 60)]).await;
    let stalled = raw(
        &gw,
        b"POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n0123456789",
    )
    .await;
    assert_eq!(stalled.as_deref(), Some("HTTP/1.1 408 Request Timeout"));
}

/// An instance that passes its readiness checks but dies with every other request in flight:
/// it reads the request and closes the connection without a word, as one SIGKILLed would.
async fn dies_mid_request() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = vec![0; 4096];
                let n = stream.read(&mut request).await.unwrap_or(0);
                if request[..n].starts_with(b"GET /readyz") {
                    let ready = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}";
                    let _ = stream.write_all(ready).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_safe_request_an_instance_died_with_goes_to_the_next_an_unsafe_one_does_not() {
    let (dying, alive) = (dies_mid_request().await, upstream());
    let (gw, _stop) = gateway_with(
        vec![public("/api", "pair", 5)],
        HashMap::from([("pair".to_owned(), Addresses::Many(vec![dying, alive]))]),
    )
    .await;
    let client = reqwest::Client::new();
    // Instances are taken in turn: four requests give each instance two.
    for _ in 0..4 {
        let res = client.get(format!("{gw}/api/x")).send().await.unwrap();
        assert_eq!(res.status(), 201, "answered by the instance alive");
    }
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let res = client.post(format!("{gw}/api/x")).body("once").send().await.unwrap();
        statuses.push(res.status().as_u16());
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [201, 201, 502, 502],
        "a write that may have happened is not sent twice"
    );
}
