use std::sync::Arc;

use storage::StorageError;

use crate::OAuthSettings;
use crate::domain::Scopes;
use crate::keys::KeyRing;
use crate::limiter::FailureLimiter;
use crate::store::{self, Store};

pub const SOURCE: &str = "/auth";

/// What every handler of the service shares.
pub struct AppState {
    pub store: Store,
    pub keys: Arc<KeyRing>,
    pub oauth: OAuthSettings,
    /// Every scope an application may be granted.
    pub platform_scopes: Scopes,
    /// Scopes a token carries only for a user with the admin role.
    pub admin_scopes: Scopes,
    /// Writes that publish events.
    pub outbox: events::Outbox,
    pub limiter: FailureLimiter,
    /// Password hashing, on bounded lanes.
    pub passwords: crate::passwords::Passwords,
    pub clients: crate::client_cache::ClientCache,
}

impl AppState {
    /// A client, from the short-lived cache or the database.
    pub async fn client(&self, id: &str) -> Result<Option<store::ClientRow>, StorageError> {
        if let Some(row) = self.clients.get(id) {
            return Ok(Some(row));
        }
        let row = self.store.client(id.to_owned()).await?;
        if let Some(row) = &row {
            self.clients.put(row);
        }
        Ok(row)
    }
}
