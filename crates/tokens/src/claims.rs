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
