use ids::{ClientId, Jti, UserId};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// RFC 9068 access token claims. On the wire a client's own (client_credentials) token has
/// its client as `sub`; here it has no `user`, so nothing can mistake it for a user's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    /// The user the token acts for; `None` when it acts for its client alone.
    pub user: Option<UserId>,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: Jti,
    pub client_id: ClientId,
    pub scope: String,
    pub username: Option<String>,
    /// The networks the client's tokens are accepted from (seed 001's IP filtering), as the
    /// application had them when the token was issued; empty: any. A change revokes the
    /// client's tokens, so no token outlives the list it was issued under.
    pub allowed_networks: Vec<IpNet>,
}

/// The claims as RFC 9068 writes them.
#[derive(Serialize, Deserialize)]
struct Wire<S, C, J> {
    iss: S,
    sub: S,
    aud: S,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: J,
    client_id: C,
    scope: S,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    username: Option<S>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    allowed_networks: Vec<IpNet>,
}

impl Serialize for AccessClaims {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        Wire {
            iss: self.iss.as_str(),
            sub: self.subject(),
            aud: &self.aud,
            exp: self.exp,
            iat: self.iat,
            nbf: self.nbf,
            jti: self.jti.as_str(),
            client_id: self.client_id.as_str(),
            scope: &self.scope,
            username: self.username.as_deref(),
            allowed_networks: self.allowed_networks.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for AccessClaims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::<String, ClientId, Jti>::deserialize(deserializer)?;
        let user = ids::user_of(&wire.sub, &wire.client_id).map_err(serde::de::Error::custom)?;
        Ok(Self {
            iss: wire.iss,
            user,
            aud: wire.aud,
            exp: wire.exp,
            iat: wire.iat,
            nbf: wire.nbf,
            jti: wire.jti,
            client_id: wire.client_id,
            scope: wire.scope,
            username: wire.username,
            allowed_networks: wire.allowed_networks,
        })
    }
}

/// Whether `networks` (an `allowed_networks` list) admit a request from `address`: an empty
/// list admits any; IPv4-mapped IPv6 addresses count as IPv4.
pub fn networks_admit(networks: &[IpNet], address: std::net::IpAddr) -> bool {
    let address = address.to_canonical();
    networks.is_empty() || networks.iter().any(|net| net.contains(&address))
}

impl AccessClaims {
    /// The wire's `sub`: the user, or the client itself.
    pub fn subject(&self) -> &str {
        ids::subject(self.user.as_ref(), &self.client_id)
    }

    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_ascii_whitespace()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(user: Option<&str>) -> AccessClaims {
        AccessClaims {
            iss: "https://auth".into(),
            user: user.map(|u| UserId::parse(u).unwrap()),
            aud: "platform".into(),
            exp: 2,
            iat: 1,
            nbf: 1,
            jti: Jti::parse("j1").unwrap(),
            client_id: ClientId::parse("app").unwrap(),
            scope: "profile".into(),
            username: None,
            allowed_networks: Vec::new(),
        }
    }

    #[test]
    fn a_clients_own_token_has_its_client_as_subject_on_the_wire_and_no_user_here() {
        for user in [Some("ana"), None] {
            let json = serde_json::to_value(claims(user)).unwrap();
            assert_eq!(json["sub"], user.unwrap_or("app"));
            assert!(json.get("user").is_none() && json.get("username").is_none());
            let read: AccessClaims = serde_json::from_value(json).unwrap();
            assert_eq!(read, claims(user));
        }
        let mut blank = serde_json::to_value(claims(None)).unwrap();
        blank["client_id"] = "".into();
        assert!(
            serde_json::from_value::<AccessClaims>(blank).is_err(),
            "ids parse on the way in"
        );
    }
}
