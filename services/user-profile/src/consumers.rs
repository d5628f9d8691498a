//! What the service does on events: a profile for each new user; a confirmed e-mail address
//! marks it verified.

use std::sync::Arc;

use async_trait::async_trait;
use events::catalogue::{UserRegistered, UserVerified};
use events::{Delivery, Handler, HandlerError};

use crate::state::Profiles;
use crate::{NAME, store};

/// Creates the profile of each new user and records confirmed addresses.
pub struct Registrations(pub Arc<Profiles>);

#[async_trait]
impl Handler for Registrations {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        if let Some(verified) = delivery.event.payload::<UserVerified>() {
            let verified = verified.map_err(HandlerError::new)?;
            return self
                .0
                .outbox
                .once(NAME, delivery.event.id, move |c, _| {
                    store::set_verified(c, &verified.user_id, &verified.email, verified.verified_at)?;
                    Ok(())
                })
                .await
                .map(drop)
                .map_err(HandlerError::new);
        }
        let Some(payload) = delivery.event.payload::<UserRegistered>() else {
            return Ok(());
        };
        let user = payload.map_err(HandlerError::new)?;
        let row = store::ProfileRow::registered(user.user_id, user.username, user.email, user.registered_at);
        self.0
            .outbox
            .once(NAME, delivery.event.id, move |c, _| {
                store::insert_if_absent(c, &row)?;
                Ok(())
            })
            .await
            .map(drop)
            .map_err(HandlerError::new)
    }
}
