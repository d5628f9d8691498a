//! One middleware for what every request gets: a request id (kept from `X-Request-Id` when
//! sane, otherwise made), a span continuing the caller's W3C `traceparent`, and Prometheus
//! counters and latency by route pattern and status.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id, for handlers that pass it on (to upstreams, into events).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The service's metrics registry, with the HTTP families every service exports.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl Metrics {
    pub fn new(service: &str) -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(
            None,
            Some(std::collections::HashMap::from([(
                "service".to_owned(),
                service.to_owned(),
            )])),
        )?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route pattern and status.",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by method and route pattern.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
        })
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[method, route, status_label(status)])
            .inc();
        self.latency.with_label_values(&[method, route]).observe(seconds);
    }

    /// The Prometheus text exposition of every family in the registry.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Encoding into a String fails only on invalid UTF-8, which label values cannot hold.
        let _ = prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out);
        out
    }
}

fn status_label(status: u16) -> &'static str {
    // Static labels avoid an allocation per request; the set of statuses is small.
    match status {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        301 => "301",
        302 => "302",
        303 => "303",
        304 => "304",
        307 => "307",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        412 => "412",
        413 => "413",
        415 => "415",
        422 => "422",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        _ => "other",
    }
}

fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(&req);
    let method = req.method().as_str().to_owned();
    // The pattern, not the path: `/users/{id}` keeps the metric's cardinality bounded.
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let exporting = telemetry::exporting();
    let span = if exporting {
        tracing::info_span!(
            "http.request",
            otel.kind = "server",
            otel.name = %format_args!("{method} {route}"),
            http.method = %method,
            http.route = %route,
            request_id = %id,
            http.status_code = tracing::field::Empty,
        )
    } else {
        // The route and status are in the metrics; a log line needs the id to find the rest.
        tracing::info_span!("http.request", request_id = %id)
    };
    if let Some(tp) = req.headers().get(telemetry::TRACEPARENT).and_then(|v| v.to_str().ok()) {
        telemetry::continue_trace(&span, tp);
    }
    req.extensions_mut().insert(RequestId(id.clone()));
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let mut response = next.call(req).instrument(span.clone()).await?;
    let status = response.status().as_u16();
    if exporting {
        span.record("http.status_code", status);
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if let Some(metrics) = metrics {
        metrics.observe(&method, &route, status, started.elapsed().as_secs_f64());
    }
    // Access lines at debug: at gateway rates an info line per request costs more than the work.
    tracing::debug!(parent: &span, %method, %route, status, elapsed_ms = started.elapsed().as_secs_f64() * 1000.0, "request handled");
    Ok(response)
}
