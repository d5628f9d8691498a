//! Revoking access tokens: the record and its `token.revoked` event in one transaction.

use events::catalogue::TokenRevoked;
use storage::StorageError;

use crate::keys::AccessClaims;
use crate::state::{AppState, SOURCE};
use crate::store;

impl AppState {
    /// Records a revoked access token and its `token.revoked` event in one transaction, then
    /// wakes the relay. Revoking twice is harmless and publishes once.
    pub async fn revoke_access(&self, claims: &AccessClaims) -> Result<(), StorageError> {
        let payload = TokenRevoked {
            jti: claims.jti.to_string(),
            client_id: claims.client_id.to_string(),
            sub: claims.user.as_ref().map(ToString::to_string),
            exp: claims.exp,
        };
        self.revoke(payload).await
    }

    pub async fn revoke(&self, revoked: TokenRevoked) -> Result<(), StorageError> {
        self.outbox
            .write(move |conn, events| {
                // Revoking twice records and publishes once.
                if store::revoke_access(conn, &revoked.jti, &revoked.client_id, revoked.exp * 1000)? {
                    events.publish(SOURCE, Some(revoked.jti.clone()), &revoked)?;
                }
                Ok(())
            })
            .await
    }
}
