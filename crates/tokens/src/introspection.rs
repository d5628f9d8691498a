//! The RFC 7662 answer: what the introspection service says of a token, and what auth says of
//! an opaque (refresh) token when introspection asks it.

use serde::{Deserialize, Serialize};

use crate::AccessClaims;

/// RFC 7662 §2.2. An inactive token is `{"active": false}` and nothing else, whatever the
/// reason, so the answer never says whether a token expired, was revoked or never existed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `Bearer` for access tokens, `refresh_token` for refresh tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Extension (RFC 7662 §2.2): the networks the token is accepted from; absent: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub allowed_networks: Vec<ipnet::IpNet>,
}

impl Introspection {
    pub fn inactive() -> Self {
        Self::default()
    }

    pub fn of(claims: &AccessClaims) -> Self {
        Self {
            active: true,
            scope: Some(claims.scope.clone()),
            client_id: Some(claims.client_id.to_string()),
            username: claims.username.clone(),
            token_type: Some("Bearer".to_owned()),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            nbf: Some(claims.nbf),
            sub: Some(claims.subject().to_owned()),
            aud: Some(claims.aud.clone()),
            iss: Some(claims.iss.clone()),
            jti: Some(claims.jti.to_string()),
            allowed_networks: claims.allowed_networks.clone(),
        }
    }
}
