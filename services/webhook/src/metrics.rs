//! The webhook service's own metric families, beside the HTTP ones every service exports.

use prometheus::core::Collector;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts};

#[derive(Clone)]
pub struct WebhookMetrics {
    /// Attempts by outcome: `succeeded`, `retrying`, `failed` (schedule spent), `disabled`.
    pub attempts: IntCounterVec,
    pub attempt_seconds: Histogram,
    /// From the event's time to a successful delivery.
    pub event_to_delivery_seconds: Histogram,
    /// Deliveries due and not yet made (sampled by the dispatcher).
    pub backlog: IntGauge,
    pub disabled_endpoints: IntGauge,
}

const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0,
];

impl WebhookMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let histogram =
            |name: &str, help: &str| Histogram::with_opts(HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()));
        Ok(Self {
            attempts: IntCounterVec::new(
                Opts::new("webhook_attempts_total", "Delivery attempts by outcome."),
                &["outcome"],
            )?,
            attempt_seconds: histogram(
                "webhook_attempt_duration_seconds",
                "Time from sending an attempt to its answer.",
            )?,
            event_to_delivery_seconds: histogram(
                "webhook_event_to_delivery_seconds",
                "Time from the event to its successful delivery.",
            )?,
            backlog: IntGauge::new("webhook_due_backlog", "Deliveries due and not yet made.")?,
            disabled_endpoints: IntGauge::new(
                "webhook_disabled_endpoints",
                "Endpoints disabled (410 Gone, or failing too long).",
            )?,
        })
    }

    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.attempts.clone()),
            Box::new(self.attempt_seconds.clone()),
            Box::new(self.event_to_delivery_seconds.clone()),
            Box::new(self.backlog.clone()),
            Box::new(self.disabled_endpoints.clone()),
        ]
    }
}
