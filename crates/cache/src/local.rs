//! A bounded in-process map whose entries expire: the first level of every cache here.
//! Sharded, so concurrent workers rarely wait on one another's lock.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

const SHARDS: usize = 16;

pub struct LocalCache<K, V> {
    shards: Vec<Mutex<HashMap<K, (V, Instant)>>>,
    per_shard: usize,
    hasher: RandomState,
}

impl<K: Hash + Eq + Clone, V: Clone> LocalCache<K, V> {
    /// Holds at most about `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &K) -> std::sync::MutexGuard<'_, HashMap<K, (V, Instant)>> {
        let index = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0);
        self.shards[index].lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let mut shard = self.shard(key);
        match shard.get(key) {
            Some((value, until)) if *until > Instant::now() => Some(value.clone()),
            Some(_) => {
                shard.remove(key);
                None
            }
            None => None,
        }
    }

    /// Stores `value` for `ttl`; when the shard is full, expired entries go first, then any.
    pub fn insert(&self, key: K, value: V, ttl: Duration) {
        let now = Instant::now();
        let mut shard = self.shard(&key);
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            shard.retain(|_, (_, until)| *until > now);
            // Which entry goes hardly matters: the hash order is as good as random.
            if shard.len() >= self.per_shard
                && let Some(victim) = shard.keys().next().cloned()
            {
                shard.remove(&victim);
            }
        }
        shard.insert(key, (value, now + ttl));
    }

    pub fn remove(&self, key: &K) -> Option<V> {
        self.shard(key).remove(key).map(|(value, _)| value)
    }

    /// Keeps only the entries for which `keep` is true; returns how many were removed.
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
                let before = shard.len();
                shard.retain(|k, (v, _)| keep(k, v));
                before - shard.len()
            })
            .sum()
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_size_stays_bounded() {
        let cache = LocalCache::new(32);
        cache.insert("a".to_owned(), 1, Duration::from_secs(60));
        cache.insert("gone".to_owned(), 2, Duration::ZERO);
        assert_eq!(cache.get(&"a".to_owned()), Some(1));
        assert_eq!(cache.get(&"gone".to_owned()), None);
        for i in 0..1000 {
            cache.insert(i.to_string(), i, Duration::from_secs(60));
        }
        assert!(cache.len() <= 32 + 16, "bounded: {}", cache.len());
        let before = cache.len();
        let removed = cache.retain(|_, v| *v % 2 == 0);
        assert_eq!(before - removed, cache.len());
        assert!((0..1000).all(|i| cache.get(&i.to_string()).is_none_or(|v| v % 2 == 0)));
    }
}
