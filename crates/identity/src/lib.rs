//! Who is calling, as the gateway tells upstream services. The gateway strips every incoming
//! `x-auth-*` header, validates the bearer token, and sets these headers with an HMAC over
//! them, the request id and the time, keyed by a secret only the gateway and the services
//! hold. A service trusts the headers only when the signature verifies and is fresh, so a
//! request that reaches it some other way (a misrouted port, a pod in the same network)
//! cannot claim to be anyone.

mod address;
mod caller;
mod key;
mod requirement;

use hmac::Mac;
use ids::{ClientId, IdError, UserId};

pub use address::{CLIENT_ADDRESS, CLIENT_ADDRESS_SIGNATURE, ClientAddress, sign_address, verify_address};
pub use caller::{Caller, IdentitySettings};
pub use key::{Claims, SigningKey};
pub use requirement::{AnyScope, ForUser, Requirement, Scoped};

pub const SUBJECT: &str = "x-auth-subject";
pub const CLIENT_ID: &str = "x-auth-client-id";
pub const SCOPE: &str = "x-auth-scope";
pub const USERNAME: &str = "x-auth-username";
pub const TIMESTAMP: &str = "x-auth-timestamp";
pub const SIGNATURE: &str = "x-auth-signature";
/// Every header name that starts with this is the gateway's to set, never a caller's.
pub const PREFIX: &str = "x-auth-";

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user the token acts for; `None` for a client's own (client_credentials) token.
    pub user: Option<UserId>,
    pub client_id: ClientId,
    /// Space-separated scopes of the token.
    pub scope: String,
    pub username: Option<String>,
}

impl Identity {
    /// The identity of the wire's `sub` and `client_id` (RFC 9068: a client's own token has
    /// its client as subject): read here once, then told apart by type.
    pub fn from_wire(subject: &str, client_id: &str, scope: String, username: Option<String>) -> Result<Self, IdError> {
        let client_id = ClientId::parse(client_id)?;
        let user = ids::user_of(subject, &client_id)?;
        Ok(Self {
            user,
            client_id,
            scope,
            username,
        })
    }

    /// The wire's subject: the user, or the client itself.
    pub fn subject(&self) -> &str {
        ids::subject(self.user.as_ref(), &self.client_id)
    }

    pub fn claims(&self) -> Claims<'_> {
        Claims {
            subject: self.subject(),
            client_id: self.client_id.as_str(),
            scope: &self.scope,
            username: self.username.as_deref(),
        }
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split_ascii_whitespace().any(|s| s == scope)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("no identity headers: the request did not come through the gateway")]
    Missing,
    #[error("identity headers are not signed by the gateway")]
    BadSignature,
    #[error("identity headers are too old")]
    Stale,
}

/// The headers to add to a forwarded request (names in lower case).
pub fn sign(identity: &Identity, secret: &[u8], request_id: &str, now: i64) -> Vec<(&'static str, String)> {
    let mut headers = Vec::with_capacity(6);
    SigningKey::new(secret).identity_headers(identity.claims(), request_id, now, |name, value| {
        headers.push((name, value.to_owned()));
    });
    headers
}

/// The identity a request carries, if the gateway signed it within `max_age` of `now`.
pub fn verify<'a>(
    header: impl Fn(&str) -> Option<&'a str>,
    secret: &[u8],
    request_id: &str,
    now: i64,
    max_age: std::time::Duration,
) -> Result<Identity, IdentityError> {
    let required = |name| header(name).map(str::to_owned).ok_or(IdentityError::Missing);
    let identity = Identity::from_wire(
        header(SUBJECT).ok_or(IdentityError::Missing)?,
        header(CLIENT_ID).ok_or(IdentityError::Missing)?,
        required(SCOPE)?,
        header(USERNAME).map(str::to_owned),
    )
    .map_err(|_| IdentityError::BadSignature)?;
    let timestamp: i64 = required(TIMESTAMP)?.parse().map_err(|_| IdentityError::BadSignature)?;
    let presented = required(SIGNATURE)?;
    let presented = presented
        .strip_prefix("v1=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(IdentityError::BadSignature)?;
    // verify_slice compares in constant time.
    SigningKey::new(secret)
        .identity_mac(identity.claims(), request_id, timestamp)
        .verify_slice(&presented)
        .map_err(|_| IdentityError::BadSignature)?;
    if (now - timestamp).unsigned_abs() > max_age.as_secs() {
        return Err(IdentityError::Stale);
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn ana() -> Identity {
        Identity::from_wire("user-1", "app", "profile email".into(), Some("ana".into())).unwrap()
    }

    fn check(headers: &HashMap<&str, String>, secret: &[u8], now: i64) -> Result<Identity, IdentityError> {
        verify(
            |name| headers.get(name).map(String::as_str),
            secret,
            "req-1",
            now,
            std::time::Duration::from_secs(60),
        )
    }

    #[test]
    fn signed_headers_verify_and_tampering_does_not() {
        let headers: HashMap<_, _> = sign(&ana(), b"secret", "req-1", 1000).into_iter().collect();
        assert_eq!(check(&headers, b"secret", 1010), Ok(ana()));
        assert_eq!(check(&headers, b"other", 1010), Err(IdentityError::BadSignature));
        assert_eq!(check(&headers, b"secret", 1100), Err(IdentityError::Stale));
        let mut widened = headers.clone();
        widened.insert(SCOPE, "profile email admin".into());
        assert_eq!(check(&widened, b"secret", 1010), Err(IdentityError::BadSignature));
        let replayed = verify(
            |n| headers.get(n).map(String::as_str),
            b"secret",
            "req-2",
            1010,
            std::time::Duration::from_secs(60),
        );
        assert_eq!(replayed, Err(IdentityError::BadSignature), "bound to its request id");
        assert_eq!(check(&HashMap::new(), b"secret", 1010), Err(IdentityError::Missing));
        assert!(ana().has_scope("email") && !ana().has_scope("mail"));
        let own = Identity::from_wire("app", "app", String::new(), None).unwrap();
        assert_eq!(
            (own.user.as_ref(), own.subject()),
            (None, "app"),
            "a client's own token acts for no user"
        );
        assert_eq!(ana().user.unwrap(), "user-1");
    }
}
