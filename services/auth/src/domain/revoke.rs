//! Revoking access tokens: the record and its `token.revoked` event in one transaction.

use events::catalogue::TokenRevoked;
use ids::{ClientId, Jti, UserId};
use storage::StorageError;

use crate::keys::AccessClaims;
use crate::state::{AppState, SOURCE};
use crate::store;

impl AppState {
    /// Records a revoked access token and its `token.revoked` event in one transaction, then
    /// wakes the relay. Revoking twice is harmless and publishes once.
    pub async fn revoke_access(&self, claims: &AccessClaims) -> Result<(), StorageError> {
        let (jti, client, user) = (claims.jti.clone(), claims.client_id.clone(), claims.user.clone());
        self.revoke_token(jti, client, user, claims.exp).await
    }

    /// Records one token's revocation and its `token.revoked`; `exp` is the token's.
    pub async fn revoke_token(
        &self,
        jti: Jti,
        client_id: ClientId,
        user: Option<UserId>,
        exp: i64,
    ) -> Result<(), StorageError> {
        self.outbox
            .write(move |conn, events| {
                // Revoking twice records and publishes once.
                if store::revoke_access(conn, &jti, &client_id, exp * 1000)? {
                    let revoked = TokenRevoked::token(jti.clone(), client_id.clone(), user.clone(), exp);
                    events.publish(SOURCE, Some(revoked.subject()), &revoked)?;
                }
                Ok(())
            })
            .await
    }
}
