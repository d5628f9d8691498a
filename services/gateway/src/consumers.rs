//! Revocation at once: every replica consumes `token.revoked` on a queue of its own, refuses
//! the token from then on, drops it from both cache levels, and leaves a marker in Redis so a
//! replica started later knows too.

use std::sync::Arc;

use async_trait::async_trait;
use events::catalogue::TokenRevoked;
use events::{Delivery, Handler, HandlerError};

use crate::token_validator::{Validator, jti_key};
use tokens::{RevocationList, now_secs};

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
        self.0.revoke(
            &revoked.jti,
            &revoked.client_id,
            revoked.sub.as_deref(),
            revoked.exp,
            at,
        );
        // A failure here is retried later; this replica already refuses the token.
        share(&self.0, &revoked, at).await.map_err(HandlerError::new)
    }
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
    let value = format!("{} {} {at}", revoked.client_id, revoked.exp).into_bytes();
    if revoked.jti == RevocationList::EVERY_TOKEN {
        let key = match revoked.sub.as_deref() {
            Some(sub) if revoked.client_id == RevocationList::EVERY_TOKEN => format!("{USER_MARKER}{sub}"),
            Some(sub) => format!("{GRANT_MARKER}{}:{sub}", revoked.client_id),
            None => format!("{CLIENT_MARKER}{}", revoked.client_id),
        };
        return shared.set(&key, &value, ttl).await;
    }
    shared
        .set(&format!("{TOKEN_MARKER}{}", revoked.jti), &value, ttl)
        .await?;
    if let Some(token_key) = shared.take(&jti_key(&revoked.jti)).await? {
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
            let named = &key[prefix.len()..];
            let (jti, sub) = match prefix {
                TOKEN_MARKER => (named, None),
                CLIENT_MARKER => (RevocationList::EVERY_TOKEN, None),
                GRANT_MARKER => (RevocationList::EVERY_TOKEN, named.split_once(':').map(|(_, sub)| sub)),
                _ => (RevocationList::EVERY_TOKEN, Some(named)),
            };
            validator.revoke(jti, client, sub, exp, at);
            loaded += 1;
        }
    }
    Ok(loaded)
}
