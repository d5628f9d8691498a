//! Signing secrets at rest. An endpoint's `whsec_` secret and its `v1a` secret key are read back
//! to sign every delivery, so they cannot be hashed as client secrets are: they are stored
//! sealed with AES-256-GCM under a key derived from `webhook.secrets_key`, bound to their
//! endpoint, so a copy of the database (or a row moved to another endpoint) signs nothing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, Salt};
use ring::rand::{SecureRandom, SystemRandom};

/// What a sealed value starts with; a stored value without it was written before sealing.
const PREFIX: &str = "sealed:v1:";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("a sealed secret could not be opened (another webhook.secrets_key, or altered)")]
    Unopenable,
    #[error("no randomness for a nonce")]
    Random,
    #[error("webhook.secrets_key could not be made into a key")]
    Key,
}

/// Seals and opens secrets under one key. No `Debug`: it holds the key.
pub struct Sealer {
    key: LessSafeKey,
    random: SystemRandom,
}

impl Sealer {
    /// The AES key is derived (HKDF-SHA256) from `secret`, which any length of random text may be.
    pub fn new(secret: &str) -> Result<Self, SealError> {
        let prk = Salt::new(HKDF_SHA256, b"partner-platform webhook").extract(secret.as_bytes());
        let okm = prk
            .expand(&[b"signing secrets at rest"], &AES_256_GCM)
            .map_err(|_| SealError::Key)?;
        Ok(Self {
            key: LessSafeKey::new(UnboundKey::from(okm)),
            random: SystemRandom::new(),
        })
    }

    /// `plain`, sealed for `endpoint`.
    pub fn seal(&self, plain: &str, endpoint: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut sealed = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(endpoint), &mut sealed)
            .map_err(|_| SealError::Random)?;
        let mut out = nonce.to_vec();
        out.append(&mut sealed);
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    /// The secret `stored` holds for `endpoint` (a value from before sealing as it is).
    pub fn open(&self, stored: &str, endpoint: &str) -> Result<String, SealError> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let mut bytes = STANDARD.decode(encoded).map_err(|_| SealError::Unopenable)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Unopenable);
        }
        let mut sealed = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| SealError::Unopenable)?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(endpoint), &mut sealed)
            .map_err(|_| SealError::Unopenable)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Unopenable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_for_its_endpoint() {
        let sealer = Sealer::new("key-one-0123456789").unwrap();
        let sealed = sealer.seal("whsec_abc", "ep_1").unwrap();
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("whsec_abc"));
        assert_ne!(
            sealed,
            sealer.seal("whsec_abc", "ep_1").unwrap(),
            "a fresh nonce each time"
        );
        assert_eq!(sealer.open(&sealed, "ep_1").unwrap(), "whsec_abc");
        assert!(sealer.open(&sealed, "ep_2").is_err(), "bound to its endpoint");
        assert!(
            Sealer::new("key-two-0123456789")
                .unwrap()
                .open(&sealed, "ep_1")
                .is_err()
        );
        let mut altered = sealed.clone();
        altered.pop();
        assert!(sealer.open(&altered, "ep_1").is_err());
    }

    #[test]
    fn a_value_from_before_sealing_reads_as_it_is() {
        assert_eq!(
            Sealer::new("k").unwrap().open("whsec_old", "ep_1").unwrap(),
            "whsec_old"
        );
    }
}
