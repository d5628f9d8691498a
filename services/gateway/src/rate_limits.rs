//! Per-client rate limits (GCRA, see the cache crate): shared through Redis by every replica,
//! and in process when Redis is down or in embedded mode, so a Redis outage never opens the
//! gates nor closes them.

use std::sync::Arc;

use actix_web::http::header::{HeaderName, HeaderValue};
use cache::{Decision, GcraPolicy, InProcessRates, RateLimiter};
use http_kit::ApiError;
use serde::Deserialize;

/// `[rate_limits.<name>]`: `rate` requests per second on average, `burst` at once.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct RatePolicy {
    pub rate: f64,
    pub burst: u32,
}

pub struct Limits {
    shared: Arc<dyn RateLimiter>,
    fallback: InProcessRates,
}

/// The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers).
pub fn headers(decision: &Decision) -> [(HeaderName, HeaderValue); 3] {
    let reset = decision.reset_after.as_secs_f64().ceil() as u64;
    [
        (
            HeaderName::from_static("ratelimit-limit"),
            HeaderValue::from(decision.limit),
        ),
        (
            HeaderName::from_static("ratelimit-remaining"),
            HeaderValue::from(decision.remaining),
        ),
        (HeaderName::from_static("ratelimit-reset"), HeaderValue::from(reset)),
    ]
}

impl Limits {
    pub fn new(shared: Arc<dyn RateLimiter>) -> Self {
        Self {
            shared,
            fallback: InProcessRates::default(),
        }
    }

    /// Counts one request of `who` under policy `name`; refused requests get 429 with
    /// `Retry-After` and the RateLimit fields.
    pub async fn check(&self, name: &str, policy: RatePolicy, who: &str) -> Result<Decision, ApiError> {
        let key = format!("rate:{name}:{who}");
        let policy = GcraPolicy {
            rate: policy.rate,
            burst: policy.burst,
        };
        let decision = match self.shared.check(&key, &policy).await {
            Ok(decision) => decision,
            Err(error) => {
                tracing::debug!(%error, "shared rate limits unavailable; counting in process");
                self.fallback.check(&key, &policy).await.map_err(ApiError::internal)?
            }
        };
        if decision.allowed {
            return Ok(decision);
        }
        let refused = ApiError::too_many_requests(decision.retry_after);
        Err(headers(&decision)
            .into_iter()
            .fold(refused, |error, (name, value)| error.header(name, value)))
    }
}
