//! The identity secret made ready for HMAC once: the gateway signs every request it forwards
//! (twice with a token), and each signature would otherwise begin with HMAC's key schedule,
//! two SHA-256 blocks, before the few blocks of the message.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{CLIENT_ID, SCOPE, SIGNATURE, SUBJECT, TIMESTAMP, USERNAME};

/// What the identity headers say, borrowed: the gateway signs straight from its token answer.
#[derive(Debug, Clone, Copy)]
pub struct Claims<'a> {
    pub subject: &'a str,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub username: Option<&'a str>,
}

#[derive(Clone)]
pub struct SigningKey(Hmac<Sha256>);

impl SigningKey {
    pub fn new(secret: &[u8]) -> Self {
        // Hmac accepts keys of any length.
        Self(<Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!()))
    }

    /// The MAC of `parts`, each length-prefixed so that no two different lists read alike.
    pub(crate) fn mac(&self, parts: &[&str]) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    pub(crate) fn identity_mac(&self, claims: Claims<'_>, request_id: &str, timestamp: i64) -> Hmac<Sha256> {
        self.mac(&[
            "v1",
            claims.subject,
            claims.client_id,
            claims.scope,
            claims.username.unwrap_or(""),
            request_id,
            &timestamp.to_string(),
        ])
    }

    pub(crate) fn address_mac(&self, address: &str, request_id: &str, timestamp: i64) -> Hmac<Sha256> {
        self.mac(&["address-v1", address, request_id, &timestamp.to_string()])
    }

    /// The `x-auth-signature` value for `claims` (sent with `x-auth-timestamp: now`).
    fn identity_signature(&self, claims: Claims<'_>, request_id: &str, now: i64) -> String {
        let mac = self.identity_mac(claims, request_id, now).finalize().into_bytes();
        format!("v1={}", hex::encode(mac))
    }

    /// The `x-auth-client-address-signature` value for `address`.
    pub fn address_signature(&self, address: &str, request_id: &str, now: i64) -> String {
        let mac = self.address_mac(address, request_id, now).finalize().into_bytes();
        format!("t={now},v1={}", hex::encode(mac))
    }

    /// The identity headers for `claims`, signed, each handed to `set` (names in lower case):
    /// the gateway writes them straight into the request it forwards.
    pub fn identity_headers(
        &self,
        claims: Claims<'_>,
        request_id: &str,
        now: i64,
        mut set: impl FnMut(&'static str, &str),
    ) {
        set(SUBJECT, claims.subject);
        set(CLIENT_ID, claims.client_id);
        set(SCOPE, claims.scope);
        set(TIMESTAMP, &now.to_string());
        set(SIGNATURE, &self.identity_signature(claims, request_id, now));
        if let Some(username) = claims.username {
            set(USERNAME, username);
        }
    }
}
