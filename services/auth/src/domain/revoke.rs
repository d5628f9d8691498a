//! Revoking access tokens: the record and its `token.revoked` event in one transaction.

use events::Event;
use events::catalogue::TokenRevoked;
use storage::StorageError;

use crate::keys::AccessClaims;
use crate::state::{AppState, SOURCE};
use crate::store;

impl AppState {
    /// Records a revoked access token and its `token.revoked` event in one transaction, then
    /// wakes the relay. Revoking twice is harmless and publishes once.
    pub async fn revoke_access(&self, claims: &AccessClaims) -> Result<(), StorageError> {
        let user = (claims.sub != claims.client_id).then(|| claims.sub.clone());
        let payload = TokenRevoked {
            jti: claims.jti.clone(),
            client_id: claims.client_id.clone(),
            sub: user,
            exp: claims.exp,
        };
        self.revoke(payload).await
    }

    pub async fn revoke(&self, revoked: TokenRevoked) -> Result<(), StorageError> {
        let recorded = self
            .db
            .transaction(move |conn| {
                let first = store::revoke_access(conn, &revoked.jti, &revoked.client_id, revoked.exp * 1000)?;
                if first {
                    let event = Event::new(SOURCE, Some(revoked.jti.clone()), &revoked)
                        .map_err(|e| StorageError::Open(e.to_string()))?;
                    events::outbox::enqueue(conn, &[event])?;
                }
                Ok(first)
            })
            .await?;
        if recorded {
            self.outbox.notify_one();
        }
        Ok(())
    }
}
