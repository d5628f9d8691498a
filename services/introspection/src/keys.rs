//! Auth's public keys, fetched from its JWKS and fetched again when a token names a key not
//! seen yet (a rotation), at most once per `jwks_refresh_secs` so forged `kid`s cannot make
//! this service hammer auth.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokens::{AccessClaims, KeySet, VerifyError};

pub struct RemoteKeys {
    url: String,
    issuer: String,
    client: reqwest::Client,
    set: RwLock<Arc<KeySet>>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    min_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("JWKS unavailable: {0}")]
pub struct FetchError(String);

impl RemoteKeys {
    pub fn new(auth_url: &str, issuer: &str, client: reqwest::Client, min_interval: Duration) -> Self {
        Self {
            url: format!("{}/.well-known/jwks.json", auth_url.trim_end_matches('/')),
            issuer: issuer.to_owned(),
            client,
            set: RwLock::default(),
            last_fetch: tokio::sync::Mutex::new(None),
            min_interval,
        }
    }

    fn current(&self) -> Arc<KeySet> {
        self.set
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn loaded(&self) -> bool {
        !self.current().is_empty()
    }

    /// Fetches the JWKS unless another caller did within the minimum interval (callers that
    /// wait on the lock then find the fresh set).
    pub async fn refresh(&self) -> Result<(), FetchError> {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.min_interval) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let jwks: serde_json::Value = self
            .client
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| FetchError(e.to_string()))?
            .json()
            .await
            .map_err(|e| FetchError(e.to_string()))?;
        let set = KeySet::from_jwks(&jwks).map_err(|e| FetchError(e.to_string()))?;
        tracing::info!(keys = set.len(), "signing keys loaded");
        *self.set.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(set);
        Ok(())
    }

    /// Verifies signature, issuer and time claims; any audience (who may see the answer is
    /// decided afterwards).
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        match self.current().verify(token, &self.issuer, None) {
            Err(VerifyError::UnknownKey) => {
                if let Err(error) = self.refresh().await {
                    tracing::warn!(%error, "could not fetch signing keys");
                }
                self.current().verify(token, &self.issuer, None)
            }
            other => other,
        }
    }
}
