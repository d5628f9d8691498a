//! Signing keys: stored in the database, one active (it signs), older ones retired (they still
//! verify until the last token they signed has expired), published as a JWKS. Rotation is a
//! command (`auth rotate-keys`) or an admin call; other replicas pick keys up on reload.

use std::sync::RwLock;

use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{EncodingKey, Header};
use storage::{Database, StorageError};
use tokens::KeySet;
pub use tokens::{AccessClaims, SigningAlgorithm, VerifyError};

use crate::store::{KeyRow, Store};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("signing key unusable: {0}")]
    Key(String),
    #[error("unsupported signing algorithm `{0}`")]
    Algorithm(String),
}

struct Ring {
    kid: String,
    algorithm: SigningAlgorithm,
    signer: EncodingKey,
    verifiers: KeySet,
    jwks: serde_json::Value,
}

pub struct KeyRing {
    ring: RwLock<Ring>,
    /// Algorithm of the keys this replica creates (at first start and on rotation).
    algorithm: SigningAlgorithm,
    issuer: String,
    audience: String,
    /// How long a retired key keeps verifying: the access token lifetime.
    keep_ms: i64,
}

impl KeyRing {
    /// Loads the live keys, creating the first one (of `algorithm`) when there is none.
    pub async fn load(
        db: &Database,
        issuer: &str,
        audience: &str,
        keep_ms: i64,
        algorithm: SigningAlgorithm,
    ) -> Result<Self, KeyError> {
        let rows = Self::live_rows(&Store::new(db.clone()), keep_ms, algorithm).await?;
        Ok(Self {
            ring: RwLock::new(build(&rows)?),
            algorithm,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            keep_ms,
        })
    }

    async fn live_rows(store: &Store, keep_ms: i64, algorithm: SigningAlgorithm) -> Result<Vec<KeyRow>, KeyError> {
        let now = storage::now_millis();
        let rows = store.live_keys(now, keep_ms).await?;
        if rows.iter().any(|r| r.retired_at.is_none()) {
            return Ok(rows);
        }
        Ok(store.add_key(generate(algorithm)?, now, keep_ms).await?)
    }

    /// Retires the active key and makes a new one; returns the new `kid`.
    pub async fn rotate(&self, db: &Database) -> Result<String, KeyError> {
        let store = Store::new(db.clone());
        let key = generate(self.algorithm)?;
        let kid = key.kid.clone();
        store.rotate_key(key, storage::now_millis()).await?;
        self.reload(&store).await?;
        tracing::info!(key.kid = %kid, "signing key rotated");
        Ok(kid)
    }

    /// Re-reads the keys (another replica may have rotated) and forgets dead ones.
    pub async fn reload(&self, store: &Store) -> Result<(), KeyError> {
        let rows = Self::live_rows(store, self.keep_ms, self.algorithm).await?;
        let ring = build(&rows)?;
        *self.ring.write().unwrap_or_else(std::sync::PoisonError::into_inner) = ring;
        Ok(())
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn sign(&self, claims: &AccessClaims) -> Result<String, KeyError> {
        let ring = self.ring.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut header = Header::new(ring.algorithm.jwt());
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(ring.kid.clone());
        jsonwebtoken::encode(&header, claims, &ring.signer).map_err(|e| KeyError::Key(e.to_string()))
    }

    /// Checks signature, `typ`, issuer, audience and time claims (no leeway on `exp`).
    pub fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let ring = self.ring.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        ring.verifiers.verify(token, &self.issuer, Some(&self.audience))
    }

    /// The JSON Web Key Set of every key that still verifies.
    pub fn jwks(&self) -> serde_json::Value {
        self.ring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .jwks
            .clone()
    }
}

fn build(rows: &[KeyRow]) -> Result<Ring, KeyError> {
    let active = rows
        .iter()
        .find(|r| r.retired_at.is_none())
        .ok_or_else(|| KeyError::Key("no active signing key".into()))?;
    let algorithm: SigningAlgorithm = active
        .algorithm
        .parse()
        .map_err(|_| KeyError::Algorithm(active.algorithm.clone()))?;
    let pem = active.private_pem.as_bytes();
    let signer = match algorithm {
        SigningAlgorithm::ES256 => EncodingKey::from_ec_pem(pem),
        SigningAlgorithm::RS256 => EncodingKey::from_rsa_pem(pem),
        SigningAlgorithm::EdDSA => EncodingKey::from_ed_pem(pem),
    }
    .map_err(|e| KeyError::Key(e.to_string()))?;
    let mut verifiers = KeySet::default();
    let mut keys = Vec::new();
    for row in rows {
        let jwk = serde_json::from_str::<serde_json::Value>(&row.public_jwk).map_err(key_error)?;
        verifiers.insert(&jwk).map_err(key_error)?;
        keys.push(jwk);
    }
    Ok(Ring {
        kid: active.kid.clone(),
        algorithm,
        signer,
        verifiers,
        jwks: serde_json::json!({ "keys": keys }),
    })
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn key_error(e: impl std::fmt::Display) -> KeyError {
    KeyError::Key(e.to_string())
}

/// A new private key (PKCS#8 PEM) with its public JWK.
fn generate(algorithm: SigningAlgorithm) -> Result<KeyRow, KeyError> {
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    let mut rng = rand::rngs::OsRng;
    let kid = uuid::Uuid::now_v7().simple().to_string();
    let (pem, public) = match algorithm {
        SigningAlgorithm::ES256 => {
            use p256::elliptic_curve::sec1::ToEncodedPoint;
            use p256::pkcs8::EncodePrivateKey as _;
            let secret = p256::SecretKey::random(&mut rng);
            let point = secret.public_key().to_encoded_point(false);
            let (x, y) = (
                point.x().ok_or_else(|| key_error("no x"))?,
                point.y().ok_or_else(|| key_error("no y"))?,
            );
            let pem = secret.to_pkcs8_pem(LineEnding::LF).map_err(key_error)?.to_string();
            (
                pem,
                serde_json::json!({ "kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y) }),
            )
        }
        SigningAlgorithm::RS256 => {
            use rsa::pkcs8::EncodePrivateKey as _;
            use rsa::traits::PublicKeyParts;
            let key = rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(key_error)?;
            let public =
                serde_json::json!({ "kty": "RSA", "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be()) });
            (key.to_pkcs8_pem(LineEnding::LF).map_err(key_error)?.to_string(), public)
        }
        SigningAlgorithm::EdDSA => {
            let signing = ed25519_dalek::SigningKey::generate(&mut rng);
            let pem = signing.to_pkcs8_pem(LineEnding::LF).map_err(key_error)?.to_string();
            let x = b64(&signing.verifying_key().to_bytes());
            (pem, serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": x }))
        }
    };
    let mut jwk = public;
    jwk["kid"] = serde_json::json!(kid);
    jwk["alg"] = serde_json::json!(algorithm.name());
    jwk["use"] = serde_json::json!("sig");
    Ok(KeyRow {
        kid,
        algorithm: algorithm.name().to_owned(),
        private_pem: pem,
        public_jwk: jwk.to_string(),
        created_at: storage::now_millis(),
        retired_at: None,
    })
}
