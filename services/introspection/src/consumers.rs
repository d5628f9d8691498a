//! What the service does on events: `token.revoked`, on a queue per replica.

use std::sync::Arc;

use async_trait::async_trait;
use events::catalogue::{Revoked, TokenRevoked};
use events::{Delivery, Handler, HandlerError};

use crate::state::Introspector;

/// This replica's `token.revoked` consumer.
pub struct RevokedHandler(pub Arc<Introspector>);

#[async_trait]
impl Handler for RevokedHandler {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let Some(payload) = delivery.event.payload::<TokenRevoked>() else {
            return Ok(());
        };
        let revoked = payload.map_err(HandlerError::new)?;
        if let Revoked::Client(client) | Revoked::Grant { client_id: client, .. } = &revoked.revoked {
            self.0.callers.forget_client(client);
        }
        self.0
            .revocations
            .record(revoked, delivery.event.time.timestamp())
            .await
            .map_err(HandlerError::new)
    }
}
