//! Per-client request rates, by GCRA (the generic cell rate algorithm): one timestamp per key,
//! the "theoretical arrival time", smooth like a token bucket with no refill job. Atomic in
//! Redis (one script, Redis's clock) so replicas share one budget; in process in embedded mode.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::{CacheError, Redis};

/// `rate` requests per second on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GcraPolicy {
    pub rate: f64,
    pub burst: u32,
}

impl GcraPolicy {
    /// `rate` per second with a burst of one second's worth (at least one): the limits
    /// partners set on their endpoints, services and providers.
    pub fn per_second(rate: f64) -> Self {
        Self {
            rate,
            burst: (rate.ceil() as u32).max(1),
        }
    }

    fn interval_us(&self) -> u64 {
        // Bounded to one request per day, so the arithmetic cannot overflow.
        (1_000_000.0 / self.rate.max(1.0 / 86_400.0)).round() as u64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    /// Requests that could still be made at once.
    pub remaining: u32,
    /// When refused: how long until one more request is allowed.
    pub retry_after: Duration,
    /// How long until the budget is whole again.
    pub reset_after: Duration,
}

#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one request against `key` if the policy allows it.
    async fn check(&self, key: &str, policy: &GcraPolicy) -> Result<Decision, CacheError>;
}

/// One step of GCRA at `now` (µs) from the stored arrival time; returns the decision and the
/// arrival time to store when the request is allowed.
fn gcra(now: u64, stored: Option<u64>, policy: &GcraPolicy) -> (Decision, Option<u64>) {
    // Signed: early in a process's life `allow_at` lies before its clock's zero.
    let (now_i, interval) = (i128::from(now), i128::from(policy.interval_us()));
    let tat = i128::from(stored.unwrap_or(now).max(now));
    let new_tat = tat + interval;
    let allow_at = new_tat - interval * i128::from(policy.burst);
    let us = |v: i128| Duration::from_micros(u64::try_from(v).unwrap_or(0));
    if now_i < allow_at {
        let decision = Decision {
            allowed: false,
            limit: policy.burst,
            remaining: 0,
            retry_after: us(allow_at - now_i),
            reset_after: us(tat - now_i),
        };
        return (decision, None);
    }
    let remaining = u32::try_from((now_i - allow_at) / interval)
        .unwrap_or(u32::MAX)
        .min(policy.burst);
    let decision = Decision {
        allowed: true,
        limit: policy.burst,
        remaining,
        retry_after: Duration::ZERO,
        reset_after: us(new_tat - now_i),
    };
    (decision, u64::try_from(new_tat).ok())
}

pub struct InProcessRates {
    arrivals: Mutex<HashMap<String, u64>>,
    epoch: Instant,
}

impl Default for InProcessRates {
    fn default() -> Self {
        Self {
            arrivals: Mutex::default(),
            epoch: Instant::now(),
        }
    }
}

/// Beyond this many keys, keys whose budget is whole again are swept.
const SWEEP_AT: usize = 100_000;

#[async_trait]
impl RateLimiter for InProcessRates {
    async fn check(&self, key: &str, policy: &GcraPolicy) -> Result<Decision, CacheError> {
        let now = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        let mut arrivals = self.arrivals.lock().unwrap_or_else(PoisonError::into_inner);
        if arrivals.len() >= SWEEP_AT {
            arrivals.retain(|_, tat| *tat > now);
        }
        let (decision, store) = gcra(now, arrivals.get(key).copied(), policy);
        if let Some(tat) = store {
            arrivals.insert(key.to_owned(), tat);
        }
        Ok(decision)
    }
}

pub struct RedisRates {
    redis: Arc<Redis>,
}

impl RedisRates {
    pub fn new(redis: Arc<Redis>) -> Self {
        Self { redis }
    }
}

/// [`gcra`] in Lua, on Redis's clock so replicas agree. Returns
/// `{allowed, remaining, retry_after_us, reset_after_us}`.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then return {0, 0, allow_at - now, tat - now} end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.min(burst, math.floor((now - allow_at) / interval)), 0, new_tat - now}
";

#[async_trait]
impl RateLimiter for RedisRates {
    async fn check(&self, key: &str, policy: &GcraPolicy) -> Result<Decision, CacheError> {
        let key = self.redis.key(key);
        let (interval, burst) = (policy.interval_us(), policy.burst);
        let (allowed, remaining, retry, reset): (i64, i64, i64, i64) = self
            .redis
            .call(|mut c| async move {
                redis::Script::new(GCRA)
                    .key(key)
                    .arg(interval)
                    .arg(burst)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        let us = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
        Ok(Decision {
            allowed: allowed == 1,
            limit: burst,
            remaining: u32::try_from(remaining).unwrap_or(0),
            retry_after: us(retry),
            reset_after: us(reset),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_interval() {
        let policy = GcraPolicy { rate: 10.0, burst: 3 };
        // Early in the clock's life too: the burst is whole from the first request.
        let (mut tat, now) = (None, 1_000);
        for expected_remaining in [2, 1, 0] {
            let (decision, next) = gcra(now, tat, &policy);
            assert!(decision.allowed);
            assert_eq!(decision.remaining, expected_remaining);
            tat = next;
        }
        let (refused, none) = gcra(now, tat, &policy);
        assert!(!refused.allowed && none.is_none());
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        let (later, _) = gcra(now + 100_000, tat, &policy);
        assert!(later.allowed, "one interval later one more request passes");
    }
}
