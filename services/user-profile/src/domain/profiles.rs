//! Changes to profiles, each with the event that tells the platform in one transaction
//! (`events::Outbox::write`).

use events::Outbox;
use events::catalogue::{UserDeleted, UserUpdated};
use ids::UserId;
use storage::StorageError;

use crate::SOURCE;
use crate::store::{self, ProfileRow};

/// Writes `next` and its `user.updated`, unless the profile changed since it was read (`None`).
pub async fn update(outbox: &Outbox, next: ProfileRow) -> Result<Option<ProfileRow>, StorageError> {
    outbox
        .write(move |conn, events| {
            if !store::replace(conn, &next)? {
                return Ok(None);
            }
            let payload = UserUpdated {
                user_id: next.user_id.clone(),
                username: next.username.clone(),
                picture: next.picture.clone(),
                group: None,
                phone: next.phone.clone(),
            };
            events.publish(SOURCE, Some(next.user_id.to_string()), &payload)?;
            Ok(Some(next.clone()))
        })
        .await
}

/// Deletes the profile of `user_id` and publishes `user.deleted` (auth then ends the account).
pub async fn delete(outbox: &Outbox, user_id: UserId) -> Result<(), StorageError> {
    outbox
        .write(move |conn, events| {
            if store::delete(conn, &user_id)? == 0 {
                return Err(StorageError::NotFound);
            }
            let subject = user_id.to_string();
            events.publish(
                SOURCE,
                Some(subject),
                &UserDeleted {
                    user_id: user_id.clone(),
                },
            )
        })
        .await
}
