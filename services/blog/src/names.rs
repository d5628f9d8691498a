//! The names of locales, categories and authors' groups, kept in memory: a few rows that
//! rarely change, read by every request. Reloaded every few seconds, at once after a change
//! made here, and whenever a row names an id the copy does not know (an entry another replica
//! just added); a rename made on another replica shows within the refresh period.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use storage::StorageError;

use crate::store::{NamedRow, Store};

#[derive(Debug, Default)]
pub struct Snapshot {
    locales: HashMap<i64, String>,
    categories: HashMap<i64, String>,
    /// id → (name, parent id)
    groups: HashMap<i64, (String, i64)>,
}

impl Snapshot {
    pub fn locale(&self, id: i64) -> &str {
        self.locales.get(&id).map_or("", String::as_str)
    }

    pub fn category(&self, id: i64) -> &str {
        self.categories.get(&id).map_or("", String::as_str)
    }

    pub fn group(&self, id: i64) -> (&str, i64) {
        self.groups
            .get(&id)
            .map_or(("", id), |(name, parent)| (name.as_str(), *parent))
    }

    pub fn has_locale(&self, id: i64) -> bool {
        self.locales.contains_key(&id)
    }

    pub fn has_category(&self, id: i64) -> bool {
        self.categories.contains_key(&id)
    }

    fn knows(&self, locales: &[i64], categories: &[i64], groups: &[i64]) -> bool {
        locales.iter().all(|id| self.locales.contains_key(id))
            && categories.iter().all(|id| self.categories.contains_key(id))
            && groups.iter().all(|id| self.groups.contains_key(id))
    }
}

pub struct Names {
    store: Store,
    current: RwLock<Arc<Snapshot>>,
}

impl Names {
    pub async fn load(store: Store) -> Result<Self, StorageError> {
        let names = Self {
            store,
            current: RwLock::new(Arc::default()),
        };
        names.refresh().await?;
        Ok(names)
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub async fn refresh(&self) -> Result<Arc<Snapshot>, StorageError> {
        let (locales, categories, groups) = self.store.all_names().await?;
        let named = |rows: Vec<NamedRow>| rows.into_iter().map(|r| (r.id, r.name)).collect();
        let snapshot = Arc::new(Snapshot {
            locales: named(locales),
            categories: named(categories),
            groups: groups.into_iter().map(|g| (g.id, (g.name, g.parent_id))).collect(),
        });
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = snapshot.clone();
        Ok(snapshot)
    }

    /// A snapshot that knows every id given, reloading once if the current one does not.
    pub async fn covering(
        &self,
        locales: &[i64],
        categories: &[i64],
        groups: &[i64],
    ) -> Result<Arc<Snapshot>, StorageError> {
        let current = self.current();
        if current.knows(locales, categories, groups) {
            return Ok(current);
        }
        self.refresh().await
    }
}
