use ipnet::IpNet;
use serde::{Deserialize, Serialize};

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
    /// The networks the client's tokens are accepted from (seed 001's IP filtering), as the
    /// application had them when the token was issued; empty: any. A change revokes the
    /// client's tokens, so no token outlives the list it was issued under.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_networks: Vec<IpNet>,
}

/// Whether `networks` (an `allowed_networks` list) admit a request from `address`: an empty
/// list admits any; IPv4-mapped IPv6 addresses count as IPv4.
pub fn networks_admit(networks: &[IpNet], address: std::net::IpAddr) -> bool {
    let address = address.to_canonical();
    networks.is_empty() || networks.iter().any(|net| net.contains(&address))
}

impl AccessClaims {
    /// Whether the token acts for a user rather than for its client alone.
    pub fn user(&self) -> Option<&str> {
        (self.sub != self.client_id).then_some(self.sub.as_str())
    }

    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_ascii_whitespace()
    }
}
