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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use actix_web::{App, HttpResponse, HttpServer, web};

    use super::*;

    struct Jwks {
        document: Mutex<serde_json::Value>,
        fetches: AtomicUsize,
    }

    fn serve(jwks: Arc<Jwks>) -> String {
        let server = HttpServer::new(move || {
            let jwks = jwks.clone();
            App::new().route(
                "/.well-known/jwks.json",
                web::get().to(move || {
                    let jwks = jwks.clone();
                    async move {
                        jwks.fetches.fetch_add(1, Ordering::SeqCst);
                        HttpResponse::Ok().json(jwks.document.lock().unwrap().clone())
                    }
                }),
            )
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let addr = server.addrs()[0];
        tokio::spawn(server.run());
        format!("http://{addr}")
    }

    fn claims() -> AccessClaims {
        let now = tokens::now_secs();
        AccessClaims {
            iss: "http://issuer".into(),
            sub: "app".into(),
            aud: "partner-api".into(),
            exp: now + 600,
            iat: now,
            nbf: now,
            jti: "j".into(),
            client_id: "app".into(),
            scope: "profile".into(),
            username: None,
        }
    }

    #[tokio::test]
    async fn a_new_key_is_fetched_once_when_a_token_names_it() {
        let file = test_support::TestSqlite::create();
        let db = storage::Database::connect(&file.url, &storage::PoolSettings::default()).unwrap();
        db.migrate(&[&events::MIGRATIONS, &auth::MIGRATIONS]).await.unwrap();
        let ring = auth::keys::KeyRing::load(&db, "http://issuer", "partner-api", 3_600_000, "EdDSA")
            .await
            .unwrap();
        let jwks = Arc::new(Jwks {
            document: Mutex::new(ring.jwks()),
            fetches: AtomicUsize::new(0),
        });
        let keys = RemoteKeys::new(
            &serve(jwks.clone()),
            "http://issuer",
            reqwest::Client::new(),
            Duration::from_secs(60),
        );
        keys.refresh().await.unwrap();
        let first = ring.sign(&claims()).unwrap();
        assert!(keys.verify(&first).await.is_ok());

        // Auth rotates: tokens name a key this service has not seen; one fetch finds it.
        ring.rotate(&db).await.unwrap();
        *jwks.document.lock().unwrap() = ring.jwks();
        let rotated = ring.sign(&claims()).unwrap();
        *keys.last_fetch.lock().await = None; // the minimum interval has passed
        assert!(keys.verify(&rotated).await.is_ok());
        assert!(keys.verify(&first).await.is_ok(), "the retired key still verifies");
        assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2);

        // Unknown kids do not make it fetch again within the interval.
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("forged".into());
        header.typ = Some("at+jwt".into());
        let forged = jsonwebtoken::encode(&header, &claims(), &jsonwebtoken::EncodingKey::from_secret(b"x")).unwrap();
        for _ in 0..5 {
            assert!(matches!(keys.verify(&forged).await, Err(VerifyError::UnknownKey)));
        }
        assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2);
    }
}
