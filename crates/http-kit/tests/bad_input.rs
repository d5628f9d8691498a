//! Every way a client can get a request wrong answers the error envelope with the right status,
//! never a 500 and never actix's plain text; plus the kit's own endpoints.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use http_kit::server::{self, HttpSettings, Service};
use http_kit::{ApiError, Endpoint, Envelope, Readiness};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Deserialize, Serialize)]
struct NewItem {
    name: String,
    count: u32,
}

async fn create(item: http_kit::Json<NewItem>) -> Result<Envelope<NewItem>, ApiError> {
    if item.name.is_empty() {
        return Err(ApiError::invalid_field("name", "must not be empty"));
    }
    Ok(Envelope::created(item.into_inner()))
}

async fn trace() -> Envelope<Option<String>> {
    Envelope::ok(telemetry::current_traceparent())
}

struct TestServer {
    base: String,
    client: reqwest::Client,
    shutdown: CancellationToken,
    running: Option<server::Running>,
}

impl TestServer {
    fn start(readiness: Readiness) -> Self {
        static TELEMETRY: std::sync::OnceLock<Option<telemetry::TelemetryGuard>> = std::sync::OnceLock::new();
        TELEMETRY.get_or_init(|| telemetry::init("kit-test").ok());
        let settings = HttpSettings {
            host: "127.0.0.1".into(),
            port: 0,
            body_limit: 1024,
            shutdown_grace: settings::Span::from_secs(5),
            workers: 1,
            drain_delay: settings::Span::default(),
        };
        let service = Service {
            name: "kit-test",
            openapi: http_kit::openapi::complete(utoipa::openapi::OpenApiBuilder::new().build()),
            readiness,
            routes: Arc::new(|cfg| {
                cfg.service(Endpoint::new("/items").post(create).build());
                cfg.service(Endpoint::new("/trace").get(trace).build());
            }),
            metrics: Vec::new(),
        };
        let shutdown = CancellationToken::new();
        let running = server::start(service, &settings, shutdown.clone()).expect("start");
        Self {
            base: format!("http://{}", running.addr),
            client: reqwest::Client::new(),
            shutdown,
            running: Some(running),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post(
        &self,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let res = self
            .client
            .post(self.url("/items"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("send");
        parts(res).await
    }
}

async fn parts(res: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    (status, headers, body)
}

fn assert_envelope(body: &Value, code: &str) {
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(
        body.get("debugMessage").is_some() && body.get("moreInfo").is_some(),
        "{body}"
    );
}

#[tokio::test]
async fn valid_request_answers_the_success_envelope() {
    let server = TestServer::start(Readiness::new());
    let (status, headers, body) = server.post("application/json", r#"{"name":"a","count":2}"#).await;
    assert_eq!(status, 201);
    assert_eq!(
        body,
        serde_json::json!({"success": true, "code": "created", "message": "Created", "data": {"name": "a", "count": 2}})
    );
    assert!(headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn an_integer_written_as_a_float_is_the_integer_and_a_fraction_is_refused() {
    let server = TestServer::start(Readiness::new());
    let (status, _, body) = server.post("application/json", r#"{"name":"a","count":2.0}"#).await;
    assert_eq!((status, &body["data"]["count"]), (201, &Value::from(2)));
    let (status, _, body) = server.post("application/json", r#"{"name":"a","count":2.5}"#).await;
    assert_eq!(status, 422);
    assert_envelope(&body, "validation_failed");
}

#[tokio::test]
async fn malformed_json_is_400() {
    let server = TestServer::start(Readiness::new());
    let (status, _, body) = server.post("application/json", r#"{"name": "a", "#).await;
    assert_eq!(status, 400);
    assert_envelope(&body, "malformed_json");
}

#[tokio::test]
async fn wrong_field_type_is_422_naming_the_problem() {
    let server = TestServer::start(Readiness::new());
    let (status, _, body) = server
        .post("application/json", r#"{"name": "a", "count": "many"}"#)
        .await;
    assert_eq!(status, 422);
    assert_envelope(&body, "validation_failed");
    assert!(
        body["debugMessage"].as_str().unwrap().contains("invalid type"),
        "{body}"
    );
    let long = format!(r#"{{"name": "a", "count": "{}"}}"#, "9".repeat(900));
    let (status, _, body) = server.post("application/json", long).await;
    let message = body["debugMessage"].as_str().unwrap();
    assert_eq!(status, 422);
    assert!(
        message.chars().count() < 250 && message.contains("expected u32"),
        "bounded, with its end: {message}"
    );
    let (status, _, body) = server.post("application/json", r#"{"name": "", "count": 1}"#).await;
    assert_eq!(
        (status, body["debugMessage"].as_str()),
        (422, Some("name: must not be empty"))
    );
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let server = TestServer::start(Readiness::new());
    let (status, _, body) = server.post("text/plain", r#"{"name":"a","count":2}"#).await;
    assert_eq!(status, 415);
    assert_envelope(&body, "unsupported_media_type");
}

#[tokio::test]
async fn oversized_body_is_413() {
    let server = TestServer::start(Readiness::new());
    let big = format!(r#"{{"name":"{}","count":1}}"#, "x".repeat(5000));
    let (status, _, body) = server.post("application/json", big).await;
    assert_eq!(status, 413);
    assert_envelope(&body, "payload_too_large");
}

#[tokio::test]
async fn unknown_route_is_404() {
    let server = TestServer::start(Readiness::new());
    let (status, _, body) = parts(server.client.get(server.url("/nowhere")).send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert_envelope(&body, "not_found");
    let long = format!("/{}", "x".repeat(20_000));
    let (status, _, body) = parts(server.client.get(server.url(&long)).send().await.unwrap()).await;
    assert_eq!(status, 404);
    let message = body["debugMessage"].as_str().unwrap();
    assert!(
        message.chars().count() < 150,
        "the path is not echoed whole: {} characters",
        message.len()
    );
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let server = TestServer::start(Readiness::new());
    let (status, headers, body) = parts(server.client.delete(server.url("/items")).send().await.unwrap()).await;
    assert_eq!(status, 405);
    assert_eq!(headers.get("allow").and_then(|v| v.to_str().ok()), Some("POST"));
    assert_envelope(&body, "method_not_allowed");
}

#[tokio::test]
async fn request_id_is_kept_or_made() {
    let server = TestServer::start(Readiness::new());
    let res = server
        .client
        .get(server.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers().get("x-request-id").and_then(|v| v.to_str().ok()),
        Some("abc-123")
    );
    let res = server
        .client
        .get(server.url("/healthz"))
        .header("x-request-id", "bad id\twith tab")
        .send()
        .await
        .unwrap();
    let made = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap()
        .to_owned();
    assert_eq!(made.len(), 36, "a fresh UUID replaces an unsafe id: {made}");
}

#[tokio::test]
async fn traceparent_is_continued() {
    let server = TestServer::start(Readiness::new());
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let res = server
        .client
        .get(server.url("/trace"))
        .header("traceparent", incoming)
        .send()
        .await
        .unwrap();
    let (_, _, body) = parts(res).await;
    let ours = body["data"].as_str().expect("a traceparent inside the request span");
    assert!(
        ours.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "same trace id: {ours}"
    );
    assert!(!ours.contains("00f067aa0ba902b7"), "a new span id: {ours}");
}

#[tokio::test]
async fn health_metrics_and_openapi() {
    let server = TestServer::start(Readiness::new());
    let (status, _, body) = parts(server.client.get(server.url("/healthz")).send().await.unwrap()).await;
    assert_eq!((status, &body["data"]["status"]), (200, &Value::from("alive")));
    let (status, _, body) = parts(server.client.get(server.url("/readyz")).send().await.unwrap()).await;
    assert_eq!((status, &body["data"]["status"]), (200, &Value::from("ready")));
    server.post("application/json", "{").await;
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"http_requests_total{method="POST",route="/items",status="400",service="kit-test"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("http_request_duration_seconds_bucket"), "{metrics}");
    let (status, _, doc) = parts(server.client.get(server.url("/openapi.json")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/readyz"].is_object() && doc["components"]["schemas"]["ErrorBody"].is_object());
    assert_eq!(
        doc["components"]["responses"]["TooManyRequests"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
}

#[test]
fn the_kit_writes_its_own_answers_into_each_operation() {
    let mut doc = utoipa::openapi::OpenApiBuilder::new().build();
    let operation = serde_json::json!({
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                       {"name": "page", "in": "query", "required": false, "schema": {"type": "integer"}}],
        "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
        "security": [{"bearer": ["blog:write"]}],
        "responses": {"200": {"description": "OK"}, "404": {"description": "no such article"}},
    });
    doc.paths =
        serde_json::from_value(serde_json::json!({"paths": {"/things/{id}": {"patch": operation}}})["paths"].take())
            .unwrap();
    let doc = http_kit::openapi::complete(doc);
    let responses = doc["paths"]["/things/{id}"]["patch"]["responses"].as_object().unwrap();
    let codes: Vec<&str> = responses.keys().map(String::as_str).collect();
    assert_eq!(codes, ["200", "400", "401", "403", "404", "413", "415", "422"]);
    assert_eq!(
        responses["404"]["description"], "no such article",
        "what the operation says is kept"
    );
    assert_eq!(responses["401"]["$ref"], "#/components/responses/Unauthorized");
}

#[tokio::test]
async fn readiness_reports_failed_checks_and_draining() {
    let readiness = Readiness::new()
        .check("database", || async { Ok(()) })
        .check("bus", || async { Err("connection refused".to_owned()) });
    let mut server = TestServer::start(readiness);
    let (status, _, body) = parts(server.client.get(server.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, 503);
    assert_envelope(&body, "not_ready");
    assert_eq!(body["moreInfo"], "bus: connection refused");

    let running = server.running.take().unwrap();
    let readiness = running.readiness.clone();
    server.shutdown.cancel();
    running.stopped().await.expect("stops");
    assert!(readiness.is_draining());
}
