//! A service's copy of what each user authorized each application for, kept from auth's
//! `consent.granted` and `consent.revoked` ([`project`]), for the services that let data out
//! (webhooks, notifications) to decide who may learn of a user. Each service creates the table
//! in its own migration:
//!
//! ```sql
//! CREATE TABLE consents (user_id TEXT NOT NULL, client_id TEXT NOT NULL, scopes TEXT NOT NULL,
//!     changed_at BIGINT NOT NULL, PRIMARY KEY (user_id, client_id));
//! ```
//!
//! A withdrawn consent stays as a row with no scopes, so an older grant arriving late cannot
//! revive it.

use diesel::prelude::*;
use events::catalogue::{ConsentGranted, ConsentRevoked};
use events::{Event, EventPayload};
use storage::{AnyConnection, StorageError};

diesel::table! {
    consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scopes -> Text,
        changed_at -> BigInt,
    }
}

/// The change a consent event makes, if `event` is one.
pub fn project(event: &Event, c: &mut AnyConnection) -> Option<Result<(), StorageError>> {
    let decode = |e: serde_json::Error| StorageError::Open(format!("{}: {e}", event.event_type));
    if let Some(granted) = event.payload::<ConsentGranted>() {
        return Some(granted.map_err(decode).and_then(|g| {
            Ok(set(
                c,
                g.user_id.as_str(),
                g.client_id.as_str(),
                &g.scopes.join(" "),
                g.granted_at,
            )?)
        }));
    }
    let revoked = event.payload::<ConsentRevoked>()?;
    Some(
        revoked
            .map_err(decode)
            .and_then(|r| Ok(set(c, r.user_id.as_str(), r.client_id.as_str(), "", r.revoked_at)?)),
    )
}

/// The event types [`project`] handles, for a consumer's bindings.
pub const EVENT_TYPES: [&str; 2] = [ConsentGranted::TYPE, ConsentRevoked::TYPE];

/// Sets a consent's scopes as of `at`, unless a later change is already recorded (events may
/// arrive out of order). Empty scopes: withdrawn.
pub fn set(c: &mut AnyConnection, user: &str, client: &str, scopes: &str, at: i64) -> QueryResult<()> {
    let stored: Option<i64> = consents::table
        .find((user, client))
        .select(consents::changed_at)
        .first(c)
        .optional()?;
    match stored {
        Some(changed) if changed > at => Ok(()),
        Some(_) => diesel::update(consents::table.find((user, client)))
            .set((consents::scopes.eq(scopes), consents::changed_at.eq(at)))
            .execute(c)
            .map(drop),
        None => diesel::insert_into(consents::table)
            .values((
                consents::user_id.eq(user),
                consents::client_id.eq(client),
                consents::scopes.eq(scopes),
                consents::changed_at.eq(at),
            ))
            .execute(c)
            .map(drop),
    }
}

/// The scopes `user` authorizes `client` for now: `None` when no consent was ever recorded
/// (or the user was forgotten), `Some("")` once withdrawn.
pub fn scopes(c: &mut AnyConnection, user: &str, client: &str) -> QueryResult<Option<String>> {
    consents::table
        .find((user, client))
        .select(consents::scopes)
        .first(c)
        .optional()
}

/// client → scopes for every application `user` authorizes.
pub fn granted_by(c: &mut AnyConnection, user: &str) -> QueryResult<Vec<(String, String)>> {
    consents::table
        .filter(consents::user_id.eq(user))
        .filter(consents::scopes.ne(""))
        .select((consents::client_id, consents::scopes))
        .load(c)
}

/// Forgets a deleted user's consents.
pub fn forget_user(c: &mut AnyConnection, user: &str) -> QueryResult<()> {
    diesel::delete(consents::table.filter(consents::user_id.eq(user)))
        .execute(c)
        .map(drop)
}

/// Forgets the consents given to a deleted application.
pub fn forget_client(c: &mut AnyConnection, client: &str) -> QueryResult<()> {
    diesel::delete(consents::table.filter(consents::client_id.eq(client)))
        .execute(c)
        .map(drop)
}
