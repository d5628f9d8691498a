//! Auth's public keys as the services that check its tokens hold them (the gateway,
//! introspection): fetched from its JWKS, and fetched again when a token names a key not seen
//! yet (a rotation), at most once per `min_interval`, so forged `kid`s cannot make a service
//! hammer auth.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::{AccessClaims, KeySet, VerifyError};

pub struct RemoteKeys {
    url: String,
    issuer: String,
    client: reqwest::Client,
    set: RwLock<Arc<KeySet>>,
    /// When the JWKS was last asked for, and whether that worked.
    last_fetch: tokio::sync::Mutex<Option<(Instant, bool)>>,
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
        if let Some((at, worked)) = *last
            && at.elapsed() < self.min_interval
        {
            return if worked {
                Ok(())
            } else {
                Err(FetchError("the last fetch failed; not asking again yet".into()))
            };
        }
        let fetched = self.fetch().await;
        if let Err(error) = &fetched {
            tracing::warn!(%error, "could not fetch signing keys");
        }
        *last = Some((Instant::now(), fetched.is_ok()));
        let set = fetched?;
        tracing::info!(keys = set.len(), "signing keys loaded");
        *self.set.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(set);
        Ok(())
    }

    async fn fetch(&self) -> Result<KeySet, FetchError> {
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
        KeySet::from_jwks(&jwks).map_err(|e| FetchError(e.to_string()))
    }

    /// Verifies signature, issuer, time claims and, when given, the audience. A token naming
    /// a key that no fetch could confirm or deny (auth unreachable) is
    /// [`VerifyError::KeysUnavailable`]: the caller cannot tell, and must not call it forged.
    pub async fn verify(&self, token: &str, audience: Option<&str>) -> Result<AccessClaims, VerifyError> {
        match self.current().verify(token, &self.issuer, audience) {
            Err(VerifyError::UnknownKey) => {
                if self.refresh().await.is_err() {
                    return Err(VerifyError::KeysUnavailable);
                }
                self.current().verify(token, &self.issuer, audience)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use actix_web::{App, HttpResponse, HttpServer, web};
    use base64::Engine;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use jsonwebtoken::{EncodingKey, Header};

    use super::*;

    struct Jwks {
        document: Mutex<serde_json::Value>,
        fetches: AtomicUsize,
        down: std::sync::atomic::AtomicBool,
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
                        if jwks.down.load(Ordering::SeqCst) {
                            return HttpResponse::ServiceUnavailable().finish();
                        }
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

    /// An Ed25519 key as auth holds one: its JWK and a signer.
    struct Key {
        kid: String,
        encoding: EncodingKey,
        jwk: serde_json::Value,
    }

    fn key(kid: &str) -> Key {
        let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let pem = signing.to_pkcs8_pem(Default::default()).unwrap();
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes());
        Key {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
            jwk: serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}),
        }
    }

    fn claims() -> AccessClaims {
        let now = crate::now_secs();
        AccessClaims {
            iss: "http://issuer".into(),
            user: None,
            aud: "partner-api".into(),
            exp: now + 600,
            iat: now,
            nbf: now,
            jti: "j".parse().unwrap(),
            client_id: "app".parse().unwrap(),
            scope: "profile".into(),
            username: None,
            allowed_networks: Vec::new(),
        }
    }

    fn sign(key: &Key, claims: &AccessClaims) -> String {
        let mut header = Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        header.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
    }

    fn jwks_of(keys: &[&Key]) -> serde_json::Value {
        serde_json::json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
    }

    #[tokio::test]
    async fn a_new_key_is_fetched_once_and_forged_kids_do_not_hammer_auth() {
        let first = key("k1");
        let jwks = Arc::new(Jwks {
            document: Mutex::new(jwks_of(&[&first])),
            fetches: AtomicUsize::new(0),
            down: Default::default(),
        });
        let interval = Duration::from_millis(300);
        let keys = RemoteKeys::new(&serve(jwks.clone()), "http://issuer", reqwest::Client::new(), interval);
        keys.refresh().await.unwrap();
        let token = sign(&first, &claims());
        assert!(keys.verify(&token, Some("partner-api")).await.is_ok());
        assert!(matches!(
            keys.verify(&token, Some("elsewhere")).await,
            Err(VerifyError::Invalid(_))
        ));

        // Auth rotates: tokens name a key this service has not seen; one fetch finds it.
        let second = key("k2");
        *jwks.document.lock().unwrap() = jwks_of(&[&first, &second]);
        tokio::time::sleep(interval).await;
        assert!(keys.verify(&sign(&second, &claims()), None).await.is_ok());
        assert!(
            keys.verify(&token, None).await.is_ok(),
            "the retired key still verifies"
        );
        assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2);

        // Unknown kids, or a known kid under another key, cost no fetch within the interval.
        let forged = sign(&key("forged"), &claims());
        let impersonating = sign(&key("k1"), &claims());
        for _ in 0..5 {
            assert!(matches!(keys.verify(&forged, None).await, Err(VerifyError::UnknownKey)));
            assert!(matches!(
                keys.verify(&impersonating, None).await,
                Err(VerifyError::Invalid(_))
            ));
        }
        assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2);

        // With auth down, a key no fetch could find cannot be called forged.
        jwks.down.store(true, Ordering::SeqCst);
        tokio::time::sleep(interval).await;
        assert!(matches!(
            keys.verify(&forged, None).await,
            Err(VerifyError::KeysUnavailable)
        ));
        assert!(matches!(
            keys.verify(&forged, None).await,
            Err(VerifyError::KeysUnavailable)
        ));
        assert_eq!(jwks.fetches.load(Ordering::SeqCst), 3, "still once per interval");
        assert!(keys.verify(&token, None).await.is_ok(), "known keys go on verifying");
    }
}
