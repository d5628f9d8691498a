//! The notification service's own metric families, beside the HTTP ones every service exports.

use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts};

#[derive(Clone)]
pub struct DispatchMetrics {
    /// Requests accepted by `POST /Services`, by kind.
    pub accepted: IntCounterVec,
    /// Provider calls by channel, provider and outcome (`sent`, `recorded`, `failed`,
    /// `rejected`, `unreachable`), and the in-app inbox's deliveries.
    pub sends: IntCounterVec,
    pub provider_seconds: HistogramVec,
    /// Notifications by final status and reason (`delivered`, `failed`).
    pub outcomes: IntCounterVec,
    /// Queued notifications due and not yet tried (sampled by the dispatcher).
    pub backlog: IntGauge,
}

const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

impl DispatchMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        Ok(Self {
            accepted: IntCounterVec::new(
                Opts::new("notifications_accepted_total", "Notifications accepted, by kind."),
                &["kind"],
            )?,
            sends: IntCounterVec::new(
                Opts::new(
                    "notifications_sends_total",
                    "Provider calls by channel, provider and outcome.",
                ),
                &["channel", "provider", "outcome"],
            )?,
            provider_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "notifications_provider_duration_seconds",
                    "Time a channel provider took to take or refuse a notification.",
                )
                .buckets(BUCKETS.to_vec()),
                &["provider"],
            )?,
            outcomes: IntCounterVec::new(
                Opts::new(
                    "notifications_outcomes_total",
                    "Notifications that reached a final status, by status and reason.",
                ),
                &["status", "reason"],
            )?,
            backlog: IntGauge::new(
                "notifications_due_backlog",
                "Queued notifications due and not yet tried.",
            )?,
        })
    }

    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.accepted.clone()),
            Box::new(self.sends.clone()),
            Box::new(self.provider_seconds.clone()),
            Box::new(self.outcomes.clone()),
            Box::new(self.backlog.clone()),
        ]
    }
}
