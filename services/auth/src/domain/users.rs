//! Accounts: a new one publishes `user.registered` (and asks for its address to be confirmed)
//! in the transaction that stores it; a deleted one takes with it everything that acts for
//! the user and revokes their access tokens.

use events::catalogue::{Revoked, TokenRevoked, UserRegistered};
use events::{Outbox, Staged};
use ids::UserId;
use settings::Span;
use storage::{AnyConnection, StorageError};

use crate::domain::verification;
use crate::state::SOURCE;
use crate::store::{self, UserRow};

/// Whether a new account is asked to confirm its e-mail address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    Email,
    /// The bootstrap administrator: the operator typed the address.
    No,
}

/// Stores `user` with its `user.registered` (and, with `Verify::Email`, the request to e-mail
/// a confirmation link whose address starts with `issuer`); `Conflict` when the username or
/// address is taken. Returns the user.
pub async fn create(outbox: &Outbox, user: UserRow, issuer: String, verify: Verify) -> Result<UserRow, StorageError> {
    outbox
        .write(move |c, events| {
            store::insert_user(c, &user)?;
            let registered = UserRegistered {
                user_id: user.id.clone(),
                username: user.username.clone(),
                email: user.email.clone(),
                registered_at: user.created_at,
            };
            events.publish(SOURCE, Some(user.id.to_string()), &registered)?;
            if verify == Verify::Email {
                verification::request(c, events, &user, &issuer, user.created_at)?;
            }
            Ok(user.clone())
        })
        .await
}

/// Deletes `user`'s account (see `store::delete_user`) and publishes one `token.revoked` for
/// every access token they hold, in the caller's transaction.
pub fn delete_in(
    c: &mut AnyConnection,
    events: &mut Staged,
    user: &UserId,
    access_ttl: Span,
) -> Result<(), StorageError> {
    store::delete_user(c, user)?;
    // Made after the delete, so its time (from which on tokens are revoked) follows any token
    // issued before the user was gone.
    let revoked = TokenRevoked {
        revoked: Revoked::User(user.clone()),
        exp: storage::now_millis() / 1000 + access_ttl.secs(),
    };
    events.publish(SOURCE, Some(revoked.subject()), &revoked)
}
