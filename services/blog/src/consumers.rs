//! The blog's copy of who writes: created from `user.registered`, kept current from
//! `user.updated` (never overwritten by an older event), and forgotten with `user.deleted`,
//! which also deletes the user's articles and comments and keeps a tombstone, so that neither
//! a late event nor a write with a not-yet-refused token brings the user back. Requests never
//! ask another service.

use std::sync::Arc;

use async_trait::async_trait;
use events::catalogue::{UserDeleted, UserRegistered, UserUpdated};
use events::{Delivery, EventPayload, Handler, HandlerError, Staged};
use storage::{AnyConnection, StorageError};

use crate::domain::writes;
use crate::{state::Blog, store};

pub const BINDINGS: [&str; 3] = [UserRegistered::TYPE, UserUpdated::TYPE, UserDeleted::TYPE];

pub struct Authors(pub Arc<Blog>);

#[async_trait]
impl Handler for Authors {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let event = delivery.event;
        let at = event.time.timestamp_millis();
        type Work = Box<dyn Fn(&mut AnyConnection, &mut Staged) -> Result<(), StorageError> + Send>;
        let work: Work = if let Some(payload) = event.payload::<UserRegistered>() {
            let user = payload.map_err(HandlerError::new)?;
            Box::new(move |c, _| Ok(store::author_registered(c, &user.user_id, &user.username, at)?))
        } else if let Some(payload) = event.payload::<UserUpdated>() {
            let user = payload.map_err(HandlerError::new)?;
            Box::new(move |c, _| {
                let picture = user.picture.as_deref();
                Ok(store::author_updated(c, &user.user_id, &user.username, picture, at)?)
            })
        } else if let Some(payload) = event.payload::<UserDeleted>() {
            let user = payload.map_err(HandlerError::new)?;
            Box::new(move |c, events| writes::forget_author(c, events, &user.user_id, at))
        } else {
            return Ok(());
        };
        self.0
            .outbox
            .once(crate::NAME, event.id, work)
            .await
            .map(drop)
            .map_err(HandlerError::new)
    }
}
