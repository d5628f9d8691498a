//! W3C trace context without OpenTelemetry. With no exporter configured, spans need no
//! recording, only their ids, so that a `traceparent` still continues across services and
//! events; building an OpenTelemetry span per request for nothing cost the gateway a fifth of
//! its throughput.

use tracing::Subscriber;
use tracing::span::{Attributes, Id};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TraceIds {
    trace_id: u128,
    span_id: u64,
    sampled: bool,
}

fn random_u64() -> u64 {
    // Never 0: W3C reserves all-zero ids.
    (uuid::Uuid::new_v4().as_u128() as u64).max(1)
}

impl TraceIds {
    pub(crate) fn traceparent(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }

    /// A child of the remote span `traceparent` names, if it is a valid W3C value.
    pub(crate) fn child_of(traceparent: &str) -> Option<Self> {
        let mut parts = traceparent.trim().split('-');
        let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| (s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())).then_some(());
        hex(version, 2)?;
        hex(trace, 32)?;
        hex(parent, 16)?;
        hex(flags, 2)?;
        if version == "ff" {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok().filter(|t| *t != 0)?;
        u64::from_str_radix(parent, 16).ok().filter(|p| *p != 0)?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(Self {
            trace_id,
            span_id: random_u64(),
            sampled: flags & 1 == 1,
        })
    }
}

/// Gives every span its ids: the parent's trace id (a new one at the root) and a span id.
pub(crate) struct IdsLayer;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for IdsLayer {
    fn on_new_span(&self, _attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span.parent().and_then(|p| p.extensions().get::<TraceIds>().copied());
        let ids = TraceIds {
            trace_id: parent.map_or_else(|| uuid::Uuid::new_v4().as_u128().max(1), |p| p.trace_id),
            span_id: random_u64(),
            sampled: parent.is_none_or(|p| p.sampled),
        };
        span.extensions_mut().insert(ids);
    }
}

/// The ids of `span`, when this layer gave it some.
pub(crate) fn of(span: &tracing::Span) -> Option<TraceIds> {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        registry.span(id)?.extensions().get::<TraceIds>().copied()
    })
    .flatten()
}

/// Replaces the ids of `span`; false when this layer is not installed (the span then has no
/// ids to replace: OpenTelemetry's layer keeps the trace instead).
pub(crate) fn set(span: &tracing::Span, ids: TraceIds) -> bool {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let span = registry.span(id)?;
        let mut extensions = span.extensions_mut();
        let current = extensions.get_mut::<TraceIds>()?;
        *current = ids;
        Some(())
    })
    .flatten()
    .is_some()
}

#[cfg(test)]
mod tests {
    use super::TraceIds;

    #[test]
    fn traceparents_parse_and_continue() {
        let ids = TraceIds::child_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let out = ids.traceparent();
        assert!(out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && out.ends_with("-01"));
        assert!(!out.contains("00f067aa0ba902b7"), "a new span id");
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceIds::child_of(bad), None, "{bad}");
        }
    }
}
