//! State that replicas share for a short while: counters over a time window (failed logins per
//! address, requests per client). Redis in production, so every replica counts together; in
//! process in embedded mode. The same contract tests run against both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

mod entries;
mod local;
mod rate;
mod redis_conn;

pub use entries::RedisEntries;
pub use local::LocalCache;
pub use rate::{Decision, GcraPolicy, InProcessRates, RateLimiter, RedisRates};
pub use redis_conn::Redis;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache unavailable: {0}")]
    Unavailable(String),
}

/// A counter's value and how long its window still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub count: u64,
    pub remaining: Duration,
}

#[async_trait]
pub trait Counters: Send + Sync + 'static {
    /// Adds one to `key`; the first hit opens a window of `window`, after which the key resets.
    async fn hit(&self, key: &str, window: Duration) -> Result<Window, CacheError>;

    /// The current window of `key`, if one is open.
    async fn get(&self, key: &str) -> Result<Option<Window>, CacheError>;

    /// The current windows of `keys`, in order, in one round trip.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Window>>, CacheError>;

    /// Readiness probe.
    async fn ping(&self) -> Result<(), CacheError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheKind {
    InProcess,
    Redis,
}

/// `[cache]`, shared by every service (`PLATFORM_CACHE__…`).
#[derive(Debug, Clone, Deserialize)]
pub struct CacheSettings {
    pub kind: CacheKind,
    pub url: SecretString,
    /// Prefixed to every key, so services (and tests) sharing a Redis never collide.
    pub prefix: String,
    /// Longest wait for one Redis call before the caller degrades.
    pub timeout: settings::Span,
    /// The CAs a `rediss://` server's certificate must chain to; empty: the system's roots.
    /// Unused with `redis://`, so one CA can be given to every service whatever its URLs.
    pub tls_ca: settings::TrustedCas,
}

impl CacheSettings {
    pub fn validate(&self) -> Result<(), settings::SettingsError> {
        if self.kind == CacheKind::Redis && !self.url.expose_secret().starts_with("redis") {
            return Err(settings::rule(
                "cache.url",
                "must be a redis:// or rediss:// URL when cache.kind = \"redis\"",
            ));
        }
        // redis-rs reads this fragment as "TLS without checking the server's certificate".
        if self
            .url
            .expose_secret()
            .rsplit_once('#')
            .is_some_and(|(_, f)| f == "insecure")
        {
            return Err(settings::rule(
                "cache.url",
                "`#insecure` would skip the check of the server's certificate; name its CA in cache.tls_ca instead",
            ));
        }
        Ok(())
    }

    /// The Redis these settings name, or `None` in embedded mode. It connects lazily and
    /// reconnects by itself; a process makes one and gives it to every cache kind
    /// ([`counters`], [`rates`], [`RedisEntries`]).
    pub fn redis(&self) -> Result<Option<Arc<Redis>>, CacheError> {
        match self.kind {
            CacheKind::InProcess => Ok(None),
            CacheKind::Redis => Ok(Some(Arc::new(Redis::new(
                self.url.expose_secret(),
                &self.tls_ca,
                &self.prefix,
                self.timeout.0,
            )?))),
        }
    }
}

#[derive(Default)]
pub struct InProcessCounters {
    windows: Mutex<HashMap<String, (u64, Instant, Duration)>>,
}

/// Beyond this many keys, closed windows are swept before adding more.
const SWEEP_AT: usize = 100_000;

#[async_trait]
impl Counters for InProcessCounters {
    async fn hit(&self, key: &str, window: Duration) -> Result<Window, CacheError> {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() >= SWEEP_AT {
            windows.retain(|_, (_, start, length)| now.duration_since(*start) < *length);
        }
        let entry = windows.entry(key.to_owned()).or_insert((0, now, window));
        if now.duration_since(entry.1) >= entry.2 {
            *entry = (0, now, window);
        }
        entry.0 += 1;
        Ok(Window {
            count: entry.0,
            remaining: entry.2.saturating_sub(now.duration_since(entry.1)),
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Window>, CacheError> {
        Ok(self.get_many(&[key.to_owned()]).await?.pop().flatten())
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Window>>, CacheError> {
        let now = Instant::now();
        let windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(keys
            .iter()
            .map(|key| {
                windows
                    .get(key)
                    .filter(|(_, start, length)| now.duration_since(*start) < *length)
                    .map(|(count, start, length)| Window {
                        count: *count,
                        remaining: length.saturating_sub(now.duration_since(*start)),
                    })
            })
            .collect())
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }
}

/// Counters on `redis`, or in process without one.
pub fn counters(redis: Option<Arc<Redis>>) -> Arc<dyn Counters> {
    match redis {
        None => Arc::new(InProcessCounters::default()),
        Some(redis) => Arc::new(RedisCounters::new(redis)),
    }
}

/// A rate limiter on `redis`, or in process without one.
pub fn rates(redis: Option<Arc<Redis>>) -> Arc<dyn RateLimiter> {
    match redis {
        None => Arc::new(InProcessRates::default()),
        Some(redis) => Arc::new(RedisRates::new(redis)),
    }
}

/// Windowed counters in Redis, so every replica counts together.
pub struct RedisCounters {
    redis: Arc<Redis>,
}

impl RedisCounters {
    pub fn new(redis: Arc<Redis>) -> Self {
        Self { redis }
    }
}

/// INCR, and open the window on the first hit: atomic, so concurrent replicas count together.
const HIT: &str = "local n = redis.call('INCR', KEYS[1]) \
    if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
    return {n, redis.call('PTTL', KEYS[1])}";

fn window(count: i64, ttl_ms: i64) -> Window {
    Window {
        count: u64::try_from(count).unwrap_or(0),
        remaining: Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0)),
    }
}

#[async_trait]
impl Counters for RedisCounters {
    async fn hit(&self, key: &str, length: Duration) -> Result<Window, CacheError> {
        let key = self.redis.key(key);
        let ms = i64::try_from(length.as_millis()).unwrap_or(i64::MAX);
        let (count, ttl): (i64, i64) = self
            .redis
            .call(|mut c| async move { redis::Script::new(HIT).key(key).arg(ms).invoke_async(&mut c).await })
            .await?;
        Ok(window(count, ttl))
    }

    async fn get(&self, key: &str) -> Result<Option<Window>, CacheError> {
        Ok(self.get_many(&[key.to_owned()]).await?.pop().flatten())
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Window>>, CacheError> {
        let keys: Vec<String> = keys.iter().map(|k| self.redis.key(k)).collect();
        let answers: Vec<(Option<i64>, i64)> = self
            .redis
            .call(|mut c| async move {
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.cmd("GET").arg(key).cmd("PTTL").arg(key);
                }
                let flat: Vec<redis::Value> = pipe.query_async(&mut c).await?;
                flat.chunks(2)
                    .map(|pair| {
                        let count = redis::from_redis_value::<Option<i64>>(&pair[0])?;
                        let ttl = pair.get(1).map_or(Ok(-2), redis::from_redis_value::<i64>)?;
                        Ok((count, ttl))
                    })
                    .collect::<redis::RedisResult<Vec<_>>>()
            })
            .await?;
        Ok(answers
            .into_iter()
            .map(|(count, ttl)| count.filter(|_| ttl > 0).map(|c| window(c, ttl)))
            .collect())
    }

    async fn ping(&self) -> Result<(), CacheError> {
        self.redis.ping().await
    }
}

#[cfg(test)]
mod settings_tests {
    use super::*;

    fn redis(url: &str) -> CacheSettings {
        CacheSettings {
            kind: CacheKind::Redis,
            url: url.to_owned().into(),
            prefix: String::new(),
            timeout: settings::Span::from_millis(100),
            tls_ca: settings::TrustedCas::default(),
        }
    }

    #[test]
    fn a_redis_url_must_not_turn_the_certificate_check_off() {
        assert!(redis("rediss://cache.example:6380/0").validate().is_ok());
        let refused = redis("rediss://cache.example:6380/#insecure").validate();
        assert!(refused.is_err_and(|e| e.to_string().contains("cache.tls_ca")));
        assert!(redis("memcached://cache.example").validate().is_err());
    }
}
