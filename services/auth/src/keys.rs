//! Signing keys: stored in the database, one active (it signs), older ones retired (they still
//! verify until the last token they signed has expired), published as a JWKS. Rotation is a
//! command (`auth rotate-keys`) or an admin call; other replicas pick keys up on reload.

use std::collections::HashMap;
use std::sync::RwLock;

use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use storage::{Database, StorageError};

use crate::store::{self, KeyRow};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("signing key unusable: {0}")]
    Key(String),
    #[error("unsupported signing algorithm `{0}`")]
    Algorithm(String),
}

/// Why a token did not verify; callers answer all of them alike (RFC 6750 `invalid_token`).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("not a JWT access token")]
    Malformed,
    #[error("signed by an unknown key")]
    UnknownKey,
    #[error("invalid: {0}")]
    Invalid(String),
}

/// RFC 9068 access token claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// The user, or the client itself for client_credentials.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

struct Ring {
    kid: String,
    algorithm: Algorithm,
    signer: EncodingKey,
    verifiers: HashMap<String, (Algorithm, DecodingKey)>,
    jwks: serde_json::Value,
}

pub struct KeyRing {
    ring: RwLock<Ring>,
    issuer: String,
    audience: String,
    /// How long a retired key keeps verifying: the access token lifetime.
    keep_ms: i64,
}

impl KeyRing {
    /// Loads the live keys, creating the first one when there is none.
    pub async fn load(db: &Database, issuer: &str, audience: &str, keep_ms: i64) -> Result<Self, KeyError> {
        let rows = Self::live_rows(db, keep_ms, true).await?;
        Ok(Self {
            ring: RwLock::new(build(&rows)?),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            keep_ms,
        })
    }

    async fn live_rows(db: &Database, keep_ms: i64, create: bool) -> Result<Vec<KeyRow>, KeyError> {
        let now = storage::now_millis();
        let rows = db.run(move |c| Ok(store::live_keys(c, now, keep_ms)?)).await?;
        if !create || rows.iter().any(|r| r.retired_at.is_none()) {
            return Ok(rows);
        }
        let key = generate()?;
        db.transaction(move |c| {
            store::insert_key(c, &key)?;
            Ok(store::live_keys(c, now, keep_ms)?)
        })
        .await
        .map_err(KeyError::from)
    }

    /// Retires the active key and makes a new one; returns the new `kid`.
    pub async fn rotate(&self, db: &Database) -> Result<String, KeyError> {
        let key = generate()?;
        let kid = key.kid.clone();
        let now = storage::now_millis();
        db.transaction(move |c| {
            store::retire_active_keys(c, now)?;
            store::insert_key(c, &key)?;
            Ok(())
        })
        .await?;
        self.reload(db).await?;
        tracing::info!(key.kid = %kid, "signing key rotated");
        Ok(kid)
    }

    /// Re-reads the keys (another replica may have rotated) and forgets dead ones.
    pub async fn reload(&self, db: &Database) -> Result<(), KeyError> {
        let rows = Self::live_rows(db, self.keep_ms, true).await?;
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
        let mut header = Header::new(ring.algorithm);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(ring.kid.clone());
        jsonwebtoken::encode(&header, claims, &ring.signer).map_err(|e| KeyError::Key(e.to_string()))
    }

    /// Checks signature, `typ`, issuer, audience and time claims (no leeway on `exp`).
    pub fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("at+jwt")) {
            return Err(VerifyError::Malformed);
        }
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let ring = self.ring.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (algorithm, key) = ring.verifiers.get(&kid).ok_or(VerifyError::UnknownKey)?;
        if *algorithm != header.alg {
            return Err(VerifyError::Invalid("algorithm does not match the key".into()));
        }
        let mut validation = Validation::new(*algorithm);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| VerifyError::Invalid(e.to_string()))
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
    let algorithm = parse_algorithm(&active.algorithm)?;
    let signer = match algorithm {
        Algorithm::EdDSA => EncodingKey::from_ed_pem(active.private_pem.as_bytes()),
        other => return Err(KeyError::Algorithm(format!("{other:?}"))),
    }
    .map_err(|e| KeyError::Key(e.to_string()))?;
    let mut verifiers = HashMap::new();
    let mut keys = Vec::new();
    for row in rows {
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_str(&row.public_jwk).map_err(|e| KeyError::Key(e.to_string()))?;
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| KeyError::Key(e.to_string()))?;
        verifiers.insert(row.kid.clone(), (parse_algorithm(&row.algorithm)?, decoding));
        keys.push(
            serde_json::from_str::<serde_json::Value>(&row.public_jwk).map_err(|e| KeyError::Key(e.to_string()))?,
        );
    }
    Ok(Ring {
        kid: active.kid.clone(),
        algorithm,
        signer,
        verifiers,
        jwks: serde_json::json!({ "keys": keys }),
    })
}

fn parse_algorithm(name: &str) -> Result<Algorithm, KeyError> {
    match name {
        "EdDSA" => Ok(Algorithm::EdDSA),
        other => Err(KeyError::Algorithm(other.to_owned())),
    }
}

/// A new Ed25519 key with its public JWK.
fn generate() -> Result<KeyRow, KeyError> {
    let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let pem = signing
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|e| KeyError::Key(e.to_string()))?;
    let kid = uuid::Uuid::now_v7().simple().to_string();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes());
    let jwk = serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig" });
    Ok(KeyRow {
        kid,
        algorithm: "EdDSA".to_owned(),
        private_pem: pem.to_string(),
        public_jwk: jwk.to_string(),
        created_at: storage::now_millis(),
        retired_at: None,
    })
}
