//! What auth does on events. Accounts end when their profile does: on `user.deleted`
//! (published by user-profile when a user deletes themselves) auth deletes the account, its
//! sessions, consents and refresh tokens, and revokes every access token issued to the user,
//! through one `token.revoked` that gateways and introspection apply at once. And every replica
//! forgets the application a client-wide `token.revoked` names (its networks changed, it was
//! deleted), so none goes on accepting or minting under the old state from its cache.

use std::sync::Arc;

use async_trait::async_trait;
use events::catalogue::{Revoked, TokenRevoked, UserDeleted};
use events::{Delivery, EventPayload, Handler, HandlerError};

use crate::domain::users;
use crate::state::AppState;

pub const BINDINGS: [&str; 1] = [UserDeleted::TYPE];

/// What each replica consumes on a queue of its own.
pub const PER_REPLICA: [&str; 1] = [TokenRevoked::TYPE];

pub struct Deletions(pub Arc<AppState>);

#[async_trait]
impl Handler for Deletions {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let Some(payload) = delivery.event.payload::<UserDeleted>() else {
            return Ok(());
        };
        let user = payload.map_err(HandlerError::new)?.user_id;
        let (id, ttl) = (user.clone(), self.0.oauth.access_token_ttl);
        let deleted = self
            .0
            .outbox
            .once(crate::NAME, delivery.event.id, move |c, events| {
                users::delete_in(c, events, &id, ttl)
            })
            .await
            .map_err(HandlerError::new)?;
        if deleted {
            tracing::info!(user.id = %user, "account deleted; its tokens revoked");
        }
        Ok(())
    }
}

/// Each replica's own consumer of `token.revoked`.
pub struct ClientChanges(pub Arc<AppState>);

#[async_trait]
impl Handler for ClientChanges {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let Some(payload) = delivery.event.payload::<TokenRevoked>() else {
            return Ok(());
        };
        let revoked = payload.map_err(HandlerError::new)?;
        if let Revoked::Client(client) | Revoked::Grant { client_id: client, .. } = &revoked.revoked {
            self.0.clients.evict(client);
        }
        Ok(())
    }
}
