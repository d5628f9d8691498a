//! What the service does on events: a profile for each new user.

use std::sync::Arc;

use async_trait::async_trait;
use events::catalogue::UserRegistered;
use events::{Delivery, Handler, HandlerError};

use crate::state::Profiles;
use crate::{NAME, store};

/// Creates the profile of each new user.
pub struct Registrations(pub Arc<Profiles>);

#[async_trait]
impl Handler for Registrations {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
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
