//! Confirming an e-mail address: a single-use link (its token stored as SHA-256, valid a day)
//! is e-mailed by notification-dispatch on `account.verification_requested`; opening it
//! publishes `user.verified`, which sets seed 003's `user_verified` on the profile.

use events::Staged;
use events::catalogue::{UserVerified, VerificationRequested};
use storage::{AnyConnection, StorageError};

use crate::crypto;
use crate::state::{AppState, SOURCE};
use crate::store::{self, UserRow, VerificationRow};

pub const LINK_TTL_MS: i64 = 24 * 3600 * 1000;

/// Records a link for `user`'s address and asks for it to be e-mailed, in the caller's
/// transaction (the one that creates the user).
pub fn request(
    c: &mut AnyConnection,
    events: &mut Staged,
    user: &UserRow,
    issuer: &str,
    now: i64,
) -> Result<(), StorageError> {
    let token = crypto::random_secret();
    let row = VerificationRow {
        token_hash: crypto::sha256_hex(&token),
        user_id: user.id.clone(),
        email: user.email.clone(),
        created_at: now,
        expires_at: now + LINK_TTL_MS,
        used_at: None,
    };
    store::insert_verification(c, &row)?;
    let query = serde_urlencoded::to_string([("token", token.as_str())]).unwrap_or_default();
    let requested = VerificationRequested {
        user_id: user.id.clone(),
        email: user.email.clone(),
        verify_url: format!("{}/oauth2/verify-email?{query}", issuer.trim_end_matches('/')),
        expires_at: row.expires_at,
    };
    events.publish(SOURCE, Some(user.id.to_string()), &requested)
}

/// Uses the link's token; false when it is unknown, used already or expired.
pub async fn confirm(state: &AppState, token: &str) -> Result<bool, StorageError> {
    let hash = crypto::sha256_hex(token);
    state
        .outbox
        .write(move |c, events| {
            let now = storage::now_millis();
            let Some(row) = store::use_verification(c, &hash, now)? else {
                return Ok(false);
            };
            let verified = UserVerified {
                user_id: row.user_id.clone(),
                email: row.email,
                verified_at: now,
            };
            events.publish(SOURCE, Some(row.user_id.to_string()), &verified)?;
            Ok(true)
        })
        .await
}
