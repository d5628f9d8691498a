//! Values with an expiry in Redis, shared by replicas: the gateway's second cache level and
//! its revocation markers. (Embedded mode has one process, so its in-process level is enough.)

use std::sync::Arc;
use std::time::Duration;

use crate::{CacheError, Redis};

pub struct RedisEntries {
    redis: Arc<Redis>,
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisEntries {
    pub fn new(redis: Arc<Redis>) -> Self {
        Self { redis }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let key = self.redis.key(key);
        self.redis
            .call(|mut c| async move { redis::cmd("GET").arg(key).query_async(&mut c).await })
            .await
    }

    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let (key, value, ms) = (self.redis.key(key), value.to_vec(), millis(ttl));
        self.redis
            .call(|mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("PX")
                    .arg(ms)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
    }

    /// Sets several keys with one expiry, in one round trip.
    pub async fn set_many(&self, entries: &[(String, Vec<u8>)], ttl: Duration) -> Result<(), CacheError> {
        let mut pipe = redis::pipe();
        for (key, value) in entries {
            pipe.cmd("SET")
                .arg(self.redis.key(key))
                .arg(value)
                .arg("PX")
                .arg(millis(ttl))
                .ignore();
        }
        self.redis
            .call(|mut c| async move { pipe.query_async::<()>(&mut c).await })
            .await
    }

    /// Deletes `key` and returns what it held (GETDEL).
    pub async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let key = self.redis.key(key);
        self.redis
            .call(|mut c| async move { redis::cmd("GETDEL").arg(key).query_async(&mut c).await })
            .await
    }

    pub async fn delete(&self, key: &str) -> Result<(), CacheError> {
        let key = self.redis.key(key);
        self.redis
            .call(|mut c| async move { redis::cmd("DEL").arg(key).query_async::<()>(&mut c).await })
            .await
    }

    /// Every live entry whose key starts with `prefix`, with its value (SCAN, not KEYS, so a
    /// large Redis is not blocked).
    pub async fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, CacheError> {
        let pattern = format!("{}*", self.redis.key(prefix));
        let strip = self.redis.prefix().len();
        let keys: Vec<String> = self
            .redis
            .call(|mut c| async move {
                let mut keys = Vec::new();
                let mut cursor = 0_u64;
                loop {
                    let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut c)
                        .await?;
                    keys.extend(batch);
                    if next == 0 {
                        return Ok(keys);
                    }
                    cursor = next;
                }
            })
            .await?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let lookup = keys.clone();
        let values: Vec<Option<Vec<u8>>> = self
            .redis
            .call(|mut c| async move { redis::cmd("MGET").arg(lookup).query_async(&mut c).await })
            .await?;
        Ok(keys
            .into_iter()
            .zip(values)
            .filter_map(|(key, value)| Some((key.get(strip..)?.to_owned(), value?)))
            .collect())
    }

    pub async fn ping(&self) -> Result<(), CacheError> {
        self.redis.ping().await
    }
}
