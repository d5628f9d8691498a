//! The full answer about a token, before deciding what the caller may see: access tokens are
//! verified here (signature, time claims, revocations), opaque refresh tokens looked up at auth.

use std::sync::Arc;
use std::time::Duration;

use http_kit::OAuthError;
use sha2::{Digest, Sha256};
use tokens::{Introspection, VerifyError, now_secs};

use crate::state::Introspector;

impl Introspector {
    /// The full answer for `token`, before deciding what the caller may see.
    pub async fn inspect(&self, token: &str) -> Result<Introspection, OAuthError> {
        if token.starts_with("rt_") {
            return self.lookup_opaque(token).await;
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let claims = match self.verified.get(&digest) {
            Some(claims) => claims,
            None => match self.keys.verify(token, None).await {
                Ok(claims) => {
                    let claims = Arc::new(claims);
                    let ttl = u64::try_from(claims.exp - now_secs()).unwrap_or(0);
                    self.verified
                        .insert(digest, claims.clone(), Duration::from_secs(ttl.min(3600)));
                    claims
                }
                Err(VerifyError::KeysUnavailable) => {
                    return Err(OAuthError::temporarily_unavailable(
                        "auth's signing keys cannot be fetched",
                    ));
                }
                Err(_) => return Ok(Introspection::inactive()),
            },
        };
        let now = now_secs();
        if claims.exp <= now || claims.nbf > now || self.revocations.is_revoked(&claims) {
            return Ok(Introspection::inactive());
        }
        Ok(Introspection::of(&claims))
    }

    async fn lookup_opaque(&self, token: &str) -> Result<Introspection, OAuthError> {
        self.client
            .post(&self.lookup_url)
            .form(&[("token", token)])
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(OAuthError::temporarily_unavailable)?
            .json()
            .await
            .map_err(OAuthError::server_error)
    }
}
