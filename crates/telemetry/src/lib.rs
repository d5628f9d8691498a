//! Logs and traces for every binary, set up once in `main`.
//!
//! Logs are JSON lines (or human-readable with `LOG_FORMAT=pretty`), filtered by `RUST_LOG`.
//! Spans are exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (OpenTelemetry
//! spans, then); otherwise every span carries only its trace and span ids ([`ids`]). Either way
//! W3C `traceparent` values are read from and written to requests and events.

mod ids;

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub const TRACEPARENT: &str = "traceparent";

/// Set once `init` has an exporter: spans then carry the attributes OpenTelemetry wants.
static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether spans are exported over OTLP. Without an exporter a span's fields only reach log
/// lines, and the log layer formats every field of every span when it opens: request spans
/// then carry just what a log line needs.
pub fn exporting() -> bool {
    EXPORTING.load(std::sync::atomic::Ordering::Relaxed)
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Flushes and shuts down the span exporter when dropped (end of `main`).
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(Err(error)) = self.provider.as_ref().map(SdkTracerProvider::shutdown) {
            eprintln!("telemetry: span exporter shutdown failed: {error}");
        }
    }
}

/// Installs the global subscriber: env filter, JSON or pretty logs, OpenTelemetry layer.
pub fn init(service_name: &str) -> Result<TelemetryGuard, TelemetryError> {
    let provider = tracer_provider(service_name)?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let pretty = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("pretty"));
    let fmt = if pretty {
        tracing_subscriber::fmt::layer().with_target(false).boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed()
    };
    let traces = match &provider {
        Some(provider) => tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service_name.to_owned()))
            .boxed(),
        None => ids::IdsLayer.boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(traces)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    EXPORTING.store(provider.is_some(), std::sync::atomic::Ordering::Relaxed);
    Ok(TelemetryGuard { provider })
}

/// The exporting tracer provider, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
fn tracer_provider(service_name: &str) -> Result<Option<SdkTracerProvider>, TelemetryError> {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty());
    if endpoint.is_none() {
        return Ok(None);
    }
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    // The exporter reads OTEL_EXPORTER_OTLP_* itself (endpoint, headers, timeout).
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    Ok(Some(
        SdkTracerProvider::builder()
            .with_resource(resource)
            .with_batch_exporter(exporter)
            .build(),
    ))
}

/// The `traceparent` of `span`, to send with an outgoing request or event.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    if let Some(ids) = ids::of(span) {
        return Some(ids.traceparent());
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// The `traceparent` of the current span.
pub fn current_traceparent() -> Option<String> {
    traceparent_of(&tracing::Span::current())
}

/// Links `span` to the remote span named by `traceparent`: a batch's span to each event's
/// trace. Only exported spans carry links; malformed values are ignored.
pub fn link_trace(span: &tracing::Span, traceparent: &str) {
    if !exporting() {
        return;
    }
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    let remote = opentelemetry::trace::TraceContextExt::span(&context)
        .span_context()
        .clone();
    if remote.is_valid() {
        span.add_link(remote);
    }
}

/// Makes `span` a child of the remote span named by `traceparent`; malformed values are ignored,
/// as W3C Trace Context requires.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    if let Some(ids) = ids::TraceIds::child_of(traceparent)
        && ids::set(span, ids)
    {
        return;
    }
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    if opentelemetry::trace::TraceContextExt::span(&context)
        .span_context()
        .is_valid()
    {
        // Fails only when the span is disabled, in which case there is nothing to continue.
        let _ = span.set_parent(context);
    }
}
