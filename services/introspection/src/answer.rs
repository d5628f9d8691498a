//! The RFC 7662 answer, and who may see it (seed 004: different answers for the same token
//! depending on who asks, so a token found by someone else tells them nothing).

use serde::{Deserialize, Serialize};
use tokens::AccessClaims;

use crate::callers::Caller;

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
}

impl Introspection {
    pub fn inactive() -> Self {
        Self::default()
    }

    pub fn of(claims: &AccessClaims) -> Self {
        Self {
            active: true,
            scope: Some(claims.scope.clone()),
            client_id: Some(claims.client_id.clone()),
            username: claims.username.clone(),
            token_type: Some("Bearer".to_owned()),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            nbf: Some(claims.nbf),
            sub: Some(claims.sub.clone()),
            aud: Some(claims.aud.clone()),
            iss: Some(claims.iss.clone()),
            jti: Some(claims.jti.clone()),
        }
    }

    /// What `caller` may see: everything when it is privileged, the token's own client, or
    /// in the token's audience; otherwise `{"active": false}`.
    pub fn for_caller(self, caller: &Caller, privileged_scope: &str) -> Self {
        let entitled = caller.holds(privileged_scope)
            || self.client_id.as_deref() == Some(caller.client_id.as_str())
            || self.aud.as_deref() == Some(caller.client_id.as_str());
        if self.active && entitled {
            self
        } else {
            Self::inactive()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "http://issuer".into(),
            sub: "user-1".into(),
            aud: "resource-server".into(),
            exp: 2_000_000_000,
            iat: 1_000,
            nbf: 1_000,
            jti: "j".into(),
            client_id: "app".into(),
            scope: "profile".into(),
            username: Some("ana".into()),
        }
    }

    fn caller(client_id: &str, scope: &str) -> Caller {
        Caller {
            client_id: client_id.into(),
            scope: scope.into(),
        }
    }

    #[test]
    fn only_entitled_callers_see_the_token() {
        let full = Introspection::of(&claims());
        for entitled in [
            caller("app", ""),
            caller("resource-server", ""),
            caller("gateway", "introspect"),
        ] {
            assert_eq!(full.clone().for_caller(&entitled, "introspect"), full, "{entitled:?}");
        }
        let stranger = full.clone().for_caller(&caller("other", "profile"), "introspect");
        assert_eq!(
            serde_json::to_value(stranger).unwrap(),
            serde_json::json!({"active": false})
        );
    }
}
