//! Client records for the token endpoint, kept a few seconds in memory: with high-entropy
//! secrets hashed by one SHA-256, the database round trip would be most of a token request's
//! cost. Changes made through this replica (secret rotation, deletion) evict at once; changes
//! made through another replica are seen within `ttl`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::ClientRow;

pub struct ClientCache {
    ttl: Duration,
    entries: Mutex<HashMap<ids::ClientId, (ClientRow, Instant)>>,
}

const MAX_ENTRIES: usize = 10_000;

impl ClientCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ids::ClientId, (ClientRow, Instant)>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn get(&self, id: &str) -> Option<ClientRow> {
        self.lock()
            .get(id)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(row, _)| row.clone())
    }

    pub fn put(&self, row: &ClientRow) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(row.id.clone(), (row.clone(), Instant::now()));
    }

    pub fn evict(&self, id: &str) {
        self.lock().remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> ClientRow {
        ClientRow {
            id: id.parse().unwrap(),
            secret_hash: None,
            name: "n".into(),
            owner_id: "o".parse().unwrap(),
            redirect_uris: String::new(),
            grant_types: "client_credentials".into(),
            scopes: String::new(),
            created_at: 0,
            secret_rotated_at: 0,
            allowed_networks: String::new(),
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            first_party: false,
        }
    }

    #[test]
    fn entries_expire_and_evict() {
        let cache = ClientCache::new(Duration::from_millis(50));
        cache.put(&row("a"));
        assert!(cache.get("a").is_some());
        cache.evict("a");
        assert!(cache.get("a").is_none());
        cache.put(&row("b"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("b").is_none());
    }
}
