//! Revocation at once: every replica consumes `token.revoked` on a queue of its own, refuses
//! the token from then on, drops it from both cache levels, and leaves a marker in Redis so a
//! replica started later knows too.

use std::sync::Arc;

use async_trait::async_trait;
use events::catalogue::{Revoked, TokenRevoked};
use events::{Delivery, Handler, HandlerError};

use crate::token_validator::{Validator, jti_key};
use tokens::now_secs;

const TOKEN_MARKER: &str = "revoked:";
const CLIENT_MARKER: &str = "revoked-client:";
const USER_MARKER: &str = "revoked-user:";
/// `revoked-grant:<client>:<sub>`: the tokens one application holds for one user.
const GRANT_MARKER: &str = "revoked-grant:";

pub struct RevocationFeed(pub Arc<Validator>);

#[async_trait]
impl Handler for RevocationFeed {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let Some(payload) = delivery.event.payload::<TokenRevoked>() else {
            return Ok(());
        };
        let revoked = payload.map_err(HandlerError::new)?;
        let at = delivery.event.time.timestamp();
        self.0.revoke(&revoked.revoked, revoked.exp, at);
        // A failure here is retried later; this replica already refuses the token.
        share(&self.0, &revoked, at).await.map_err(HandlerError::new)
    }
}

/// The Redis key of a revocation's marker.
fn marker(revoked: &Revoked) -> String {
    match revoked {
        Revoked::Token { jti, .. } => format!("{TOKEN_MARKER}{jti}"),
        Revoked::Client(client) => format!("{CLIENT_MARKER}{client}"),
        Revoked::Grant { client_id, user } => format!("{GRANT_MARKER}{client_id}:{user}"),
        Revoked::User(user) => format!("{USER_MARKER}{user}"),
    }
}

/// The revocation a marker stands for: its key after the prefix, and the client its value
/// names (the token's, for a token marker); `None` for one no replica could have written.
fn from_marker(prefix: &str, named: &str, client: &str) -> Option<Revoked> {
    Some(match prefix {
        TOKEN_MARKER => Revoked::Token {
            jti: named.parse().ok()?,
            client_id: client.parse().ok()?,
            user: None,
        },
        CLIENT_MARKER => Revoked::Client(named.parse().ok()?),
        GRANT_MARKER => {
            let (client_id, user) = named.split_once(':')?;
            Revoked::Grant {
                client_id: client_id.parse().ok()?,
                user: user.parse().ok()?,
            }
        }
        _ => Revoked::User(named.parse().ok()?),
    })
}

async fn share(validator: &Validator, revoked: &TokenRevoked, at: i64) -> Result<(), cache::CacheError> {
    let Some(shared) = validator.shared() else {
        return Ok(());
    };
    let left = revoked.exp - now_secs();
    if left <= 0 {
        return Ok(());
    }
    let ttl = std::time::Duration::from_secs(u64::try_from(left).unwrap_or(0));
    // `<client> <exp> <at>`, the client `*` for a user's (the form replicas have always read).
    let client = match &revoked.revoked {
        Revoked::Token { client_id, .. } | Revoked::Client(client_id) | Revoked::Grant { client_id, .. } => {
            client_id.as_str()
        }
        Revoked::User(_) => "*",
    };
    let value = format!("{client} {} {at}", revoked.exp).into_bytes();
    shared.set(&marker(&revoked.revoked), &value, ttl).await?;
    if let Revoked::Token { jti, .. } = &revoked.revoked
        && let Some(token_key) = shared.take(&jti_key(jti)).await?
    {
        shared.delete(&String::from_utf8_lossy(&token_key)).await?;
    }
    Ok(())
}

/// Learns the revocations other replicas recorded before this one started.
pub async fn load_markers(validator: &Validator) -> Result<usize, cache::CacheError> {
    let Some(shared) = validator.shared() else {
        return Ok(0);
    };
    let mut loaded = 0;
    for prefix in [TOKEN_MARKER, CLIENT_MARKER, USER_MARKER, GRANT_MARKER] {
        for (key, value) in shared.scan(prefix).await? {
            let value = String::from_utf8_lossy(&value);
            let mut parts = value.split(' ');
            let (Some(client), Some(Ok(exp)), Some(Ok(at))) =
                (parts.next(), parts.next().map(str::parse), parts.next().map(str::parse))
            else {
                continue;
            };
            let Some(revoked) = from_marker(prefix, &key[prefix.len()..], client) else {
                continue;
            };
            validator.revoke(&revoked, exp, at);
            loaded += 1;
        }
    }
    Ok(loaded)
}
