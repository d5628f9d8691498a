use std::collections::HashMap;
use std::str::FromStr;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::AccessClaims;

/// The signing algorithms the platform uses: EdDSA (Ed25519, the default), ES256, RS256. Spelt
/// as JOSE spells them (`alg`), in settings, the key table and the JWKS alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum SigningAlgorithm {
    EdDSA,
    ES256,
    RS256,
}

impl SigningAlgorithm {
    pub const ALL: [Self; 3] = [Self::EdDSA, Self::ES256, Self::RS256];

    pub fn name(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }

    pub fn jwt(self) -> Algorithm {
        match self {
            Self::EdDSA => Algorithm::EdDSA,
            Self::ES256 => Algorithm::ES256,
            Self::RS256 => Algorithm::RS256,
        }
    }
}

impl FromStr for SigningAlgorithm {
    type Err = KeySetError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| KeySetError::Algorithm(name.to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    #[error("unsupported signing algorithm `{0}`")]
    Algorithm(String),
    #[error("unusable key: {0}")]
    Key(String),
}

/// Why a token did not verify; callers answer all of them alike (RFC 6750 `invalid_token`).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("not a JWT access token")]
    Malformed,
    #[error("signed by an unknown key")]
    UnknownKey,
    /// The token names a key the signer's key set could not be fetched to confirm.
    #[error("the signing keys cannot be fetched")]
    KeysUnavailable,
    #[error("invalid: {0}")]
    Invalid(String),
}

/// Public keys by `kid`, each bound to its one algorithm (a token cannot pick another).
#[derive(Default)]
pub struct KeySet {
    keys: HashMap<String, (Algorithm, DecodingKey)>,
}

impl KeySet {
    /// Adds one public JWK; it must carry `kid` and `alg`.
    pub fn insert(&mut self, jwk: &serde_json::Value) -> Result<(), KeySetError> {
        let field = |name: &str| {
            jwk.get(name)
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| KeySetError::Key(format!("JWK without `{name}`")))
        };
        let (kid, algorithm) = (field("kid")?, field("alg")?.parse::<SigningAlgorithm>()?.jwt());
        let parsed: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(jwk.clone()).map_err(|e| KeySetError::Key(e.to_string()))?;
        let key = DecodingKey::from_jwk(&parsed).map_err(|e| KeySetError::Key(e.to_string()))?;
        self.keys.insert(kid.to_owned(), (algorithm, key));
        Ok(())
    }

    /// The keys of a JWKS document (`{"keys": [...]}`); keys of other algorithms are skipped.
    pub fn from_jwks(jwks: &serde_json::Value) -> Result<Self, KeySetError> {
        let mut set = Self::default();
        let keys = jwks
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| KeySetError::Key("JWKS without `keys`".into()))?;
        for jwk in keys {
            match set.insert(jwk) {
                Ok(()) | Err(KeySetError::Algorithm(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(set)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks `typ: at+jwt`, the signature, the issuer, the time claims (no leeway) and, when
    /// given, the audience.
    pub fn verify(&self, token: &str, issuer: &str, audience: Option<&str>) -> Result<AccessClaims, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("at+jwt")) {
            return Err(VerifyError::Malformed);
        }
        let kid = header.kid.ok_or(VerifyError::Malformed)?;
        let (algorithm, key) = self.keys.get(&kid).ok_or(VerifyError::UnknownKey)?;
        if *algorithm != header.alg {
            return Err(VerifyError::Invalid("algorithm does not match the key".into()));
        }
        let mut validation = Validation::new(*algorithm);
        validation.leeway = 0;
        validation.validate_nbf = true;
        match audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| VerifyError::Invalid(e.to_string()))
    }
}
