//! Changes to profiles, each with the event that tells the platform, in the caller's
//! transaction (`events::Outbox::write`).

use events::Staged;
use events::catalogue::{UserDeleted, UserUpdated};
use ids::UserId;
use storage::{AnyConnection, StorageError};

use crate::SOURCE;
use crate::store::{self, ProfileRow};

/// Writes `next` and its `user.updated`, unless the profile changed since it was read (`None`).
pub fn update(
    conn: &mut AnyConnection,
    events: &mut Staged,
    next: ProfileRow,
) -> Result<Option<ProfileRow>, StorageError> {
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
    Ok(Some(next))
}

/// Deletes the profile of `user_id` and publishes `user.deleted` (auth then ends the account).
pub fn delete(conn: &mut AnyConnection, events: &mut Staged, user_id: &UserId) -> Result<(), StorageError> {
    if store::delete(conn, user_id)? == 0 {
        return Err(StorageError::NotFound);
    }
    let payload = UserDeleted {
        user_id: user_id.clone(),
    };
    events.publish(SOURCE, Some(user_id.to_string()), &payload)
}
