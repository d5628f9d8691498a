//! Failed-attempt limits (logins, client authentication), per client, per username and per
//! source address: after `max_failures` within the window, further attempts answer 429 until it
//! closes. Counted in the shared cache (Redis in production), so replicas count together.

use std::sync::Arc;
use std::time::Duration;

use cache::Counters;

pub struct FailureLimiter {
    counters: Arc<dyn Counters>,
    max_failures: u64,
    window: Duration,
}

impl FailureLimiter {
    pub fn new(counters: Arc<dyn Counters>, max_failures: u64, window: Duration) -> Self {
        Self {
            counters,
            max_failures,
            window,
        }
    }

    fn key(key: &str) -> String {
        format!("auth:failures:{key}")
    }

    /// `Err(wait)` when any of `keys` is over its limit. A cache outage lets attempts through
    /// (logged): the limit defends in depth, it must not take logins down with it.
    pub async fn check(&self, keys: &[String]) -> Result<(), Duration> {
        let mut wait = None;
        for key in keys {
            match self.counters.get(&Self::key(key)).await {
                Ok(Some(window)) if window.count >= self.max_failures => {
                    wait = wait.max(Some(window.remaining));
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "failure limits unavailable; attempt allowed"),
            }
        }
        wait.map_or(Ok(()), Err)
    }

    pub async fn record_failure(&self, keys: &[String]) {
        for key in keys {
            if let Err(error) = self.counters.hit(&Self::key(key), self.window).await {
                tracing::warn!(%error, "failure not counted");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blocks_after_the_limit_within_the_window() {
        let limiter = FailureLimiter::new(
            Arc::new(cache::InProcessCounters::default()),
            3,
            Duration::from_secs(60),
        );
        let keys = vec!["ip:1.2.3.4".to_owned()];
        for _ in 0..3 {
            assert!(limiter.check(&keys).await.is_ok());
            limiter.record_failure(&keys).await;
        }
        let wait = limiter.check(&keys).await.expect_err("limited");
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50));
        assert!(
            limiter.check(&["ip:5.6.7.8".to_owned()]).await.is_ok(),
            "other keys are not affected"
        );
    }
}
