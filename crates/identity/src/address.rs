//! Where a request really comes from. Behind the gateway every request's peer is the gateway,
//! so limits keyed on the peer put every partner in one bucket. The gateway therefore signs the
//! client's address (`x-auth-client-address`, bound to the request id and the time, like the
//! identity headers) on every request it forwards, public or not; a service believes that
//! address only when the signature verifies, and otherwise takes the peer it sees.

use std::future::{Ready, ready};
use std::net::IpAddr;
use std::time::Duration;

use actix_web::{FromRequest, HttpRequest, web};
use hmac::Mac;
use secrecy::ExposeSecret;

use crate::{IdentityError, IdentitySettings, SigningKey, now_secs};

pub const CLIENT_ADDRESS: &str = "x-auth-client-address";
pub const CLIENT_ADDRESS_SIGNATURE: &str = "x-auth-client-address-signature";

/// The two headers that tell the next hop who the client is.
pub fn sign_address(address: IpAddr, secret: &[u8], request_id: &str, now: i64) -> [(&'static str, String); 2] {
    let address = address.to_string();
    let signature = SigningKey::new(secret).address_signature(&address, request_id, now);
    [(CLIENT_ADDRESS, address), (CLIENT_ADDRESS_SIGNATURE, signature)]
}

/// The signed client address, if the headers carry one signed within `max_age` of `now`.
pub fn verify_address<'a>(
    header: impl Fn(&str) -> Option<&'a str>,
    secret: &[u8],
    request_id: &str,
    now: i64,
    max_age: Duration,
) -> Result<IpAddr, IdentityError> {
    let address = header(CLIENT_ADDRESS).ok_or(IdentityError::Missing)?;
    let signed = header(CLIENT_ADDRESS_SIGNATURE).ok_or(IdentityError::Missing)?;
    let (timestamp, signature) = signed
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .ok_or(IdentityError::BadSignature)?;
    let timestamp: i64 = timestamp.parse().map_err(|_| IdentityError::BadSignature)?;
    let signature = hex::decode(signature).map_err(|_| IdentityError::BadSignature)?;
    SigningKey::new(secret)
        .address_mac(address, request_id, timestamp)
        .verify_slice(&signature)
        .map_err(|_| IdentityError::BadSignature)?;
    if (now - timestamp).unsigned_abs() > max_age.as_secs() {
        return Err(IdentityError::Stale);
    }
    address.parse().map_err(|_| IdentityError::BadSignature)
}

/// The address a request comes from: the one the gateway (or another holder of the identity
/// secret) signed, else the peer. An extractor, for services that register their
/// `web::Data<IdentitySettings>`; without them it is the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    pub fn of(req: &HttpRequest) -> Self {
        let peer = req.peer_addr().map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        let Some(settings) = req.app_data::<web::Data<IdentitySettings>>() else {
            return Self(peer);
        };
        let headers = req.headers();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let signed = verify_address(
            header,
            settings.secret.expose_secret().as_bytes(),
            header("x-request-id").unwrap_or_default(),
            now_secs(),
            settings.max_age.0,
        );
        match signed {
            Ok(address) => Self(address),
            Err(IdentityError::Missing) => Self(peer),
            Err(error) => {
                tracing::debug!(%error, %peer, "client address not believed; using the peer");
                Self(peer)
            }
        }
    }
}

impl std::fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl FromRequest for ClientAddress {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(Ok(Self::of(req)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn check(
        headers: &HashMap<&str, String>,
        secret: &[u8],
        request_id: &str,
        now: i64,
    ) -> Result<IpAddr, IdentityError> {
        verify_address(
            |n| headers.get(n).map(String::as_str),
            secret,
            request_id,
            now,
            Duration::from_secs(60),
        )
    }

    #[test]
    fn a_signed_address_verifies_and_a_forged_one_does_not() {
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let headers: HashMap<_, _> = sign_address(client, b"secret", "req-1", 1000).into_iter().collect();
        assert_eq!(check(&headers, b"secret", "req-1", 1010), Ok(client));
        assert_eq!(
            check(&headers, b"other", "req-1", 1010),
            Err(IdentityError::BadSignature)
        );
        assert_eq!(
            check(&headers, b"secret", "req-2", 1010),
            Err(IdentityError::BadSignature)
        );
        assert_eq!(check(&headers, b"secret", "req-1", 1100), Err(IdentityError::Stale));
        let mut moved = headers.clone();
        moved.insert(CLIENT_ADDRESS, "198.51.100.1".into());
        assert_eq!(
            check(&moved, b"secret", "req-1", 1010),
            Err(IdentityError::BadSignature)
        );
        let mut garbled = headers.clone();
        garbled.insert(CLIENT_ADDRESS_SIGNATURE, "v1=00".into());
        assert_eq!(
            check(&garbled, b"secret", "req-1", 1010),
            Err(IdentityError::BadSignature)
        );
        assert_eq!(
            check(&HashMap::new(), b"secret", "req-1", 1010),
            Err(IdentityError::Missing)
        );
    }

    #[actix_web::test]
    async fn the_extractor_believes_only_a_signature_it_can_verify() {
        use actix_web::test::TestRequest;
        let settings = IdentitySettings {
            secret: "a-secret-of-sixteen-chars".to_owned().into(),
            max_age: settings::Span::from_secs(60),
        };
        let peer: std::net::SocketAddr = "10.1.2.3:5555".parse().unwrap();
        let signed = sign_address(
            "192.0.2.9".parse().unwrap(),
            b"a-secret-of-sixteen-chars",
            "r",
            now_secs(),
        );
        let request = |headers: &[(&'static str, String)], with_settings: bool| {
            let mut req = TestRequest::default()
                .peer_addr(peer)
                .insert_header(("x-request-id", "r"));
            for (name, value) in headers {
                req = req.insert_header((*name, value.clone()));
            }
            if with_settings {
                req = req.app_data(web::Data::new(settings.clone()));
            }
            ClientAddress::of(&req.to_http_request()).0.to_string()
        };
        assert_eq!(request(&signed, true), "192.0.2.9");
        assert_eq!(request(&signed, false), "10.1.2.3", "no secret, no belief");
        let forged = [(CLIENT_ADDRESS, "192.0.2.9".to_owned())];
        assert_eq!(request(&forged, true), "10.1.2.3");
        assert_eq!(request(&[], true), "10.1.2.3");
    }
}
