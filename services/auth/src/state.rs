use std::sync::Arc;

use events::Event;
use events::catalogue::TokenRevoked;
use storage::{Database, StorageError};
use tokio::sync::Notify;

use crate::OAuthSettings;
use crate::crypto;
use crate::domain::{Role, Scopes, parse_roles};
use crate::keys::{AccessClaims, KeyRing};
use crate::limiter::FailureLimiter;
use crate::store::{self, RefreshRow, UserRow};

pub const SOURCE: &str = "/auth";

/// What every handler of the service shares.
pub struct AppState {
    pub db: Database,
    pub keys: Arc<KeyRing>,
    pub oauth: OAuthSettings,
    /// Every scope an application may be granted.
    pub platform_scopes: Scopes,
    /// Scopes a token carries only for a user with the admin role.
    pub admin_scopes: Scopes,
    /// Wakes the outbox relay after a commit that wrote events.
    pub outbox: Arc<Notify>,
    pub limiter: FailureLimiter,
    pub clients: crate::client_cache::ClientCache,
}

/// Tokens issued by one grant.
pub struct Issued {
    pub access_token: String,
    pub claims: AccessClaims,
    pub refresh_token: Option<String>,
}

impl AppState {
    /// A client, from the short-lived cache or the database.
    pub async fn client(&self, id: &str) -> Result<Option<store::ClientRow>, StorageError> {
        if let Some(row) = self.clients.get(id) {
            return Ok(Some(row));
        }
        let key = id.to_owned();
        let row = self.db.run(move |c| Ok(store::client_by_id(c, &key)?)).await?;
        if let Some(row) = &row {
            self.clients.put(row);
        }
        Ok(row)
    }

    /// Signs an RFC 9068 access token for `client_id`, on behalf of `user` when there is one.
    pub fn access_token(
        &self,
        client_id: &str,
        user: Option<&UserRow>,
        scope: &Scopes,
    ) -> Result<(String, AccessClaims), crate::keys::KeyError> {
        let now = storage::now_millis() / 1000;
        let admin = user.is_some_and(|u| parse_roles(&u.roles).contains(&Role::Admin));
        // Never more than the bearer may do: an application granted `blog:admin` acts as an
        // administrator only for users who are.
        let scope = if admin {
            scope.clone()
        } else {
            scope.without(&self.admin_scopes)
        };
        let claims = AccessClaims {
            iss: self.keys.issuer().to_owned(),
            sub: user.map_or_else(|| client_id.to_owned(), |u| u.id.clone()),
            aud: self.keys.audience().to_owned(),
            exp: now + self.oauth.access_token_ttl_secs,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::now_v7().to_string(),
            client_id: client_id.to_owned(),
            scope: scope.to_string(),
            username: user.map(|u| u.username.clone()),
        };
        Ok((self.keys.sign(&claims)?, claims))
    }

    /// A new opaque refresh token and the row that stores its hash.
    pub fn refresh_token(
        &self,
        family: &str,
        client_id: &str,
        user_id: Option<&str>,
        scope: &Scopes,
    ) -> (String, RefreshRow) {
        let token = format!("rt_{}", crypto::random_secret());
        let now = storage::now_millis();
        let row = RefreshRow {
            token_hash: crypto::sha256_hex(&token),
            family_id: family.to_owned(),
            client_id: client_id.to_owned(),
            user_id: user_id.map(str::to_owned),
            scope: scope.to_string(),
            created_at: now,
            expires_at: now + self.oauth.refresh_token_ttl_secs * 1000,
            used_at: None,
            revoked_at: None,
        };
        (token, row)
    }

    /// Records a revoked access token and its `token.revoked` event in one transaction, then
    /// wakes the relay. Revoking twice is harmless and publishes once.
    pub async fn revoke_access(&self, claims: &AccessClaims) -> Result<(), StorageError> {
        let user = (claims.sub != claims.client_id).then(|| claims.sub.clone());
        let payload = TokenRevoked {
            jti: claims.jti.clone(),
            client_id: claims.client_id.clone(),
            sub: user,
            exp: claims.exp,
        };
        self.revoke(payload).await
    }

    pub async fn revoke(&self, revoked: TokenRevoked) -> Result<(), StorageError> {
        let recorded = self
            .db
            .transaction(move |conn| {
                let first = store::revoke_access(conn, &revoked.jti, &revoked.client_id, revoked.exp * 1000)?;
                if first {
                    let event = Event::new(SOURCE, Some(revoked.jti.clone()), &revoked)
                        .map_err(|e| StorageError::Open(e.to_string()))?;
                    events::outbox::enqueue(conn, &[event])?;
                }
                Ok(first)
            })
            .await?;
        if recorded {
            self.outbox.notify_one();
        }
        Ok(())
    }
}
