//! One trace, end to end: a request enters the gateway with a `traceparent`, the gateway
//! forwards it to user-profile, whose change is published by its outbox relay over RabbitMQ
//! and consumed by the blog. Gateway, user-profile and blog run as processes (the workspace's
//! binaries) exporting spans over OTLP/HTTP to a receiver in this test, which checks that they
//! all carry the caller's trace id: gateway → service → outbox relay → consumer.

use crate::platform;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use platform::{Backend, Platform};
use prost::Message;
use serde_json::json;
use test_support::{Db, IDENTITY_SECRET};

#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
}

type Spans = Arc<Mutex<Vec<Received>>>;

/// An OTLP/HTTP trace receiver: decodes what exporters send and keeps it.
fn receiver() -> (String, Spans) {
    let spans: Spans = Arc::default();
    let kept = spans.clone();
    let server = HttpServer::new(move || {
        let kept = kept.clone();
        App::new().route(
            "/v1/traces",
            web::post().to(move |body: web::Bytes| {
                let kept = kept.clone();
                async move {
                    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                        return HttpResponse::BadRequest().finish();
                    };
                    let mut kept = kept.lock().unwrap();
                    for resource in request.resource_spans {
                        let service = resource
                            .resource
                            .iter()
                            .flat_map(|r| &r.attributes)
                            .find(|a| a.key == "service.name")
                            .and_then(|a| a.value.as_ref())
                            .map(|v| format!("{:?}", v.value))
                            .unwrap_or_default();
                        for scope in resource.scope_spans {
                            for span in scope.spans {
                                kept.push(Received {
                                    service: service.clone(),
                                    name: span.name,
                                    trace_id: hex(&span.trace_id),
                                    span_id: hex(&span.span_id),
                                    parent_span_id: hex(&span.parent_span_id),
                                });
                            }
                        }
                    }
                    HttpResponse::Ok().content_type("application/x-protobuf").finish()
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    (format!("http://{addr}"), spans)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A workspace binary beside this crate's own (`cargo build --workspace` builds them all).
fn binary(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_gateway")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace` first",
        path.display()
    );
    path
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn spawn(name: &str, port: u16, envs: &[(String, String)], otlp: &str) -> Process {
    let child = Command::new(binary(name))
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("PLATFORM_HTTP__PORT", port.to_string())
        .env("PLATFORM_HTTP__WORKERS", "1")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the service");
    let started = Instant::now();
    while reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .map_or(true, |r| !r.status().is_success())
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{name} did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Process(child)
}

#[tokio::test]
async fn one_trace_from_the_gateway_through_a_service_and_the_bus_to_a_consumer() {
    let p = Platform::start(Backend::Postgres).await;
    let (otlp, spans) = receiver();
    let (profile_db, blog_db) = (Db::create(Backend::Postgres), Db::create(Backend::Postgres));
    let (profile_port, blog_port, gateway_port) = (
        test_support::free_port(),
        test_support::free_port(),
        test_support::free_port(),
    );
    let shared = |db: Option<&Db>, prefix: &str| {
        let mut envs = vec![
            ("PLATFORM_BUS__KIND".to_owned(), "rabbitmq".to_owned()),
            ("PLATFORM_BUS__URL".to_owned(), test_support::amqp_url()),
            ("PLATFORM_BUS__EXCHANGE".to_owned(), p.exchange.clone()),
            ("PLATFORM_IDENTITY__SECRET".to_owned(), IDENTITY_SECRET.to_owned()),
        ];
        if let Some(db) = db {
            envs.push((format!("{prefix}DATABASE__URL"), db.url()));
        }
        envs
    };
    let _profiles = spawn(
        "user-profile",
        profile_port,
        &shared(Some(&profile_db), "USER_PROFILE_"),
        &otlp,
    )
    .await;
    let _blog = spawn("blog", blog_port, &shared(Some(&blog_db), "BLOG_"), &otlp).await;
    let mut gateway_env = shared(None, "GATEWAY_");
    gateway_env.extend([
        (
            "GATEWAY_INTROSPECTION__URL".to_owned(),
            format!("{}/oauth2/introspect", p.introspection),
        ),
        ("GATEWAY_TOKENS__ISSUER".to_owned(), platform::ISSUER.to_owned()),
        ("GATEWAY_UPSTREAMS__AUTH".to_owned(), p.auth.clone()),
        (
            "GATEWAY_UPSTREAMS__USER_PROFILE".to_owned(),
            format!("http://127.0.0.1:{profile_port}"),
        ),
        (
            "GATEWAY_UPSTREAMS__BLOG".to_owned(),
            format!("http://127.0.0.1:{blog_port}"),
        ),
    ]);
    let _gateway = spawn("gateway", gateway_port, &gateway_env, &otlp).await;

    // A user (registered at auth: user.registered reaches user-profile and the blog).
    p.register("tracy").await;
    let app = p
        .application(json!({"name": "Traced", "grant_types": ["password"], "scopes": ["profile"]}))
        .await;
    let token = p.password_token(&app, "tracy", "tracy-password-1", "profile").await;

    // The traced request: a profile change, whose user.updated the blog consumes.
    let trace_id = test_support::unique("t").replace('_', "")[1..33].to_owned();
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let started = Instant::now();
    loop {
        let res = p
            .http
            .patch(format!("http://127.0.0.1:{gateway_port}/users/me"))
            .bearer_auth(&token)
            .header("traceparent", &traceparent)
            .json(&json!({"picture": "https://cdn.example.com/tracy.png"}))
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            break;
        }
        // The profile is created from user.registered; it may not be there yet.
        assert_eq!(res.status(), 404, "{}", res.text().await.unwrap_or_default());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the profile was never created"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let expected = [
        ("gateway", "PATCH"),
        ("user-profile", "PATCH /users/me"),
        ("user-profile", "outbox.publish"),
        ("blog", "consume"),
    ];
    let started = Instant::now();
    loop {
        let seen: Vec<Received> = spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect();
        let find = |(service, name): &(&str, &str)| {
            seen.iter()
                .find(|s| s.service.contains(&format!("\"{service}\"")) && s.name.starts_with(name))
                .cloned()
        };
        let found = |e: &(&str, &str)| find(e).is_some();
        if let [Some(gateway), Some(request), Some(relay), Some(consume)] = expected.map(|e| find(&e)) {
            // Each hop is the child of the one before: the ids the exporter saw are the ones
            // that travelled.
            assert_eq!(request.parent_span_id, gateway.span_id, "service ← gateway");
            assert_eq!(
                relay.parent_span_id, request.span_id,
                "relay ← the request that wrote the event"
            );
            assert_eq!(consume.parent_span_id, relay.span_id, "consumer ← relay");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "spans of trace {trace_id} missing: {:?}; seen: {seen:?}; all: {:?}",
            expected.iter().filter(|e| !found(e)).collect::<Vec<_>>(),
            spans
                .lock()
                .unwrap()
                .iter()
                .filter(|s| !s.name.contains("readyz") && s.name != "io_loop")
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
