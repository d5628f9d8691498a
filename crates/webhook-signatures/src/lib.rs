//! Standard Webhooks signatures (https://www.standardwebhooks.com): `v1` is HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}` keyed by the base64 part of a `whsec_` secret;
//! `v1a` is an Ed25519 signature of the same bytes by a `whsk_` key, which receivers verify
//! with its `whpk_` public key (they can check, never forge). The `webhook-signature` header
//! lists one `v1,<base64>` per secret signing now, and a `v1a,<base64>` where a key signs.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

pub const PREFIX: &str = "whsec_";

/// A signing secret as shown to its owner: `whsec_` and 32 random bytes in base64.
pub fn generate() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    format!("{PREFIX}{}", STANDARD.encode(key))
}

fn key_of(secret: &str) -> Vec<u8> {
    // Our own secrets always decode; a stored value that did not would sign with its bytes.
    let encoded = secret.strip_prefix(PREFIX).unwrap_or(secret);
    STANDARD.decode(encoded).unwrap_or_else(|_| encoded.as_bytes().to_vec())
}

/// `v1,<base64 HMAC-SHA256>` of one message by one secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(&key_of(secret)) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one signature for each secret (the new one first during a
/// rotation's overlap).
pub fn header(secrets: &[&str], id: &str, timestamp: i64, body: &str) -> String {
    secrets
        .iter()
        .map(|s| sign(s, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

pub const SECRET_KEY_PREFIX: &str = "whsk_";
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";

/// A `v1a` key pair: the secret key (`whsk_` and the 32-byte seed in base64) stays with the
/// sender, the public key (`whpk_` and the 32-byte key in base64) goes to the receiver.
pub struct KeyPair {
    pub secret: String,
    pub public: String,
}

pub fn generate_key_pair() -> KeyPair {
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    KeyPair {
        secret: format!("{SECRET_KEY_PREFIX}{}", STANDARD.encode(key.to_bytes())),
        public: format!("{PUBLIC_KEY_PREFIX}{}", STANDARD.encode(key.verifying_key().to_bytes())),
    }
}

fn signing_key(secret: &str) -> Option<ed25519_dalek::SigningKey> {
    let seed = STANDARD.decode(secret.strip_prefix(SECRET_KEY_PREFIX)?).ok()?;
    Some(ed25519_dalek::SigningKey::from_bytes(&seed.try_into().ok()?))
}

/// `v1a,<base64 Ed25519 signature>` of one message; empty for a key that does not decode.
pub fn sign_v1a(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    use ed25519_dalek::Signer;
    let Some(key) = signing_key(secret) else {
        return String::new();
    };
    let signature = key.sign(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1a,{}", STANDARD.encode(signature.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1a_signatures_verify_with_the_public_key_only() {
        use ed25519_dalek::{Signature, Verifier, VerifyingKey};
        let pair = generate_key_pair();
        assert!(pair.secret.starts_with(SECRET_KEY_PREFIX) && pair.public.starts_with(PUBLIC_KEY_PREFIX));
        let signed = sign_v1a(&pair.secret, "msg_1", 1_614_265_330, r#"{"test": 2432232314}"#);
        let raw = STANDARD.decode(signed.strip_prefix("v1a,").unwrap()).unwrap();
        let public: [u8; 32] = STANDARD
            .decode(&pair.public[PUBLIC_KEY_PREFIX.len()..])
            .unwrap()
            .try_into()
            .unwrap();
        let key = VerifyingKey::from_bytes(&public).unwrap();
        let signature = Signature::from_slice(&raw).unwrap();
        assert!(
            key.verify(br#"msg_1.1614265330.{"test": 2432232314}"#, &signature)
                .is_ok()
        );
        assert!(
            key.verify(br#"msg_1.1614265330.{"test": 1}"#, &signature).is_err(),
            "another body"
        );
        assert_eq!(sign_v1a("whsk_not-base64", "m", 1, "{}"), "");
    }

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn matches_the_specification_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, id, 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_fresh_and_every_one_signs() {
        let (a, b) = (generate(), generate());
        assert!(a.starts_with(PREFIX) && a != b);
        assert_eq!(STANDARD.decode(&a[PREFIX.len()..]).unwrap().len(), 32);
        let both = header(&[&a, &b], "msg_1", 1, "{}");
        assert_eq!(both.split(' ').count(), 2);
        assert_eq!(both.split(' ').next(), Some(sign(&a, "msg_1", 1, "{}").as_str()));
    }
}
