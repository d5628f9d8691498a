//! The gateway's own metric families, beside the HTTP ones every service exports.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

#[derive(Clone)]
pub struct GatewayMetrics {
    /// Token look-ups by cache level (`local`, `redis`, `introspection`) and outcome.
    pub lookups: IntCounterVec,
    pub introspection: HistogramVec,
    pub upstream: HistogramVec,
    pub rejected: IntCounterVec,
}

const BUCKETS: [f64; 14] = [
    0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

impl GatewayMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        Ok(Self {
            lookups: IntCounterVec::new(
                Opts::new(
                    "gateway_token_lookups_total",
                    "Token look-ups by cache level and result (hit, miss, error); hit ratio per level = hit / (hit + miss).",
                ),
                &["level", "result"],
            )?,
            introspection: HistogramVec::new(
                HistogramOpts::new(
                    "gateway_introspection_duration_seconds",
                    "Introspection calls, by outcome.",
                )
                .buckets(BUCKETS.to_vec()),
                &["outcome"],
            )?,
            upstream: HistogramVec::new(
                HistogramOpts::new(
                    "gateway_upstream_duration_seconds",
                    "Upstream time to response headers, by route.",
                )
                .buckets(BUCKETS.to_vec()),
                &["route"],
            )?,
            rejected: IntCounterVec::new(
                Opts::new("gateway_rejected_total", "Requests refused by the gateway, by reason."),
                &["reason"],
            )?,
        })
    }

    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.lookups.clone()),
            Box::new(self.introspection.clone()),
            Box::new(self.upstream.clone()),
            Box::new(self.rejected.clone()),
        ]
    }

    pub fn lookup(&self, level: &str, result: &str) {
        self.lookups.with_label_values(&[level, result]).inc();
    }

    pub fn reject(&self, reason: &str) {
        self.rejected.with_label_values(&[reason]).inc();
    }
}
