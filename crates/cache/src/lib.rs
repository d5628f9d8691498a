//! State that replicas share for a short while: counters over a time window (failed logins per
//! address, requests per client). Redis in production, so every replica counts together; in
//! process in embedded mode. The same contract tests run against both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

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
}

impl CacheSettings {
    pub fn validate(&self) -> Result<(), settings::SettingsError> {
        if self.kind == CacheKind::Redis && !self.url.expose_secret().starts_with("redis") {
            return Err(settings::rule(
                "cache.url",
                "must be a redis:// or rediss:// URL when cache.kind = \"redis\"",
            ));
        }
        Ok(())
    }

    /// The counters these settings select. Redis connects lazily and reconnects by itself.
    pub fn counters(&self) -> Result<Arc<dyn Counters>, CacheError> {
        Ok(match self.kind {
            CacheKind::InProcess => Arc::new(InProcessCounters::default()),
            CacheKind::Redis => Arc::new(RedisCounters::new(self.url.expose_secret(), &self.prefix)?),
        })
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
        let now = Instant::now();
        let windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(windows
            .get(key)
            .filter(|(_, start, length)| now.duration_since(*start) < *length)
            .map(|(count, start, length)| Window {
                count: *count,
                remaining: length.saturating_sub(now.duration_since(*start)),
            }))
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }
}

pub struct RedisCounters {
    client: redis::Client,
    connection: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
    prefix: String,
}

fn unavailable(error: redis::RedisError) -> CacheError {
    CacheError::Unavailable(error.to_string())
}

impl RedisCounters {
    pub fn new(url: &str, prefix: &str) -> Result<Self, CacheError> {
        Ok(Self {
            client: redis::Client::open(url).map_err(unavailable)?,
            connection: tokio::sync::OnceCell::new(),
            prefix: prefix.to_owned(),
        })
    }

    async fn connection(&self) -> Result<redis::aio::ConnectionManager, CacheError> {
        self.connection
            .get_or_try_init(|| async {
                tokio::time::timeout(
                    Duration::from_secs(2),
                    redis::aio::ConnectionManager::new(self.client.clone()),
                )
                .await
                .map_err(|_| CacheError::Unavailable("no answer from Redis within 2s".into()))?
                .map_err(unavailable)
            })
            .await
            .cloned()
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
        let mut conn = self.connection().await?;
        let ms = i64::try_from(length.as_millis()).unwrap_or(i64::MAX);
        let (count, ttl): (i64, i64) = redis::Script::new(HIT)
            .key(format!("{}{key}", self.prefix))
            .arg(ms)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(window(count, ttl))
    }

    async fn get(&self, key: &str) -> Result<Option<Window>, CacheError> {
        let mut conn = self.connection().await?;
        let full = format!("{}{key}", self.prefix);
        let (count, ttl): (Option<i64>, i64) = redis::pipe()
            .get(&full)
            .pttl(&full)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(count.filter(|_| ttl > 0).map(|c| window(c, ttl)))
    }

    async fn ping(&self) -> Result<(), CacheError> {
        let mut conn = self.connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(unavailable)
    }
}
