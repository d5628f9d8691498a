//! The blog's copy of who writes: created from `user.registered`, kept current from
//! `user.updated` (never overwritten by an older event), and forgotten with `user.deleted`,
//! which also deletes the user's articles and comments and keeps a tombstone, so that neither
//! a late event nor a write with a not-yet-refused token brings the user back. Requests never
//! ask another service.

use std::sync::Arc;

use async_trait::async_trait;
use events::catalogue::{ArticleDeleted, UserDeleted, UserRegistered, UserUpdated};
use events::{Delivery, EventPayload, Handler, HandlerError};

use crate::http::articles::enqueue;
use crate::{state::Blog, store};

pub const BINDINGS: [&str; 3] = [UserRegistered::TYPE, UserUpdated::TYPE, UserDeleted::TYPE];

pub struct Authors(pub Arc<Blog>);

#[async_trait]
impl Handler for Authors {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let event = delivery.event;
        let at = event.time.timestamp_millis();
        let work: Box<dyn FnOnce(&mut storage::AnyConnection) -> Result<(), storage::StorageError> + Send> =
            if let Some(payload) = event.payload::<UserRegistered>() {
                let user = payload.map_err(HandlerError::new)?;
                Box::new(move |c| Ok(store::author_registered(c, &user.user_id, &user.username, at)?))
            } else if let Some(payload) = event.payload::<UserUpdated>() {
                let user = payload.map_err(HandlerError::new)?;
                Box::new(move |c| {
                    Ok(store::author_updated(
                        c,
                        &user.user_id,
                        &user.username,
                        user.picture.as_deref(),
                        at,
                    )?)
                })
            } else if let Some(payload) = event.payload::<UserDeleted>() {
                let user = payload.map_err(HandlerError::new)?;
                Box::new(move |c| forget(c, &user.user_id, at))
            } else {
                return Ok(());
            };
        let changed = events::inbox::once(&self.0.db, crate::NAME, event.id, work)
            .await
            .map_err(HandlerError::new)?;
        if changed {
            self.0.outbox.notify_one();
        }
        Ok(())
    }
}

fn forget(c: &mut storage::AnyConnection, user_id: &str, at: i64) -> Result<(), storage::StorageError> {
    let articles = store::delete_author(c, user_id, at)?;
    for article in articles {
        let deleted = ArticleDeleted {
            article_id: article,
            author_id: user_id.to_owned(),
        };
        enqueue(c, &deleted, article)?;
    }
    Ok(())
}
