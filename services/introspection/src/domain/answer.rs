//! Who may see the RFC 7662 answer (seed 004: different answers for the same token depending
//! on who asks, so a token found by someone else tells them nothing).

pub use tokens::Introspection;

use crate::callers::Caller;

/// What `caller` may see of `answer`: everything when it is privileged, the token's own client,
/// or in the token's audience; otherwise `{"active": false}`.
pub fn for_caller(answer: Introspection, caller: &Caller, privileged_scope: &str) -> Introspection {
    let entitled = caller.holds(privileged_scope)
        || answer.client_id.as_deref() == Some(caller.client_id.as_str())
        || answer.aud.as_deref() == Some(caller.client_id.as_str());
    if answer.active && entitled {
        answer
    } else {
        Introspection::inactive()
    }
}

#[cfg(test)]
mod tests {
    use tokens::AccessClaims;

    use super::*;

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "http://issuer".into(),
            user: Some("user-1".parse().unwrap()),
            aud: "resource-server".into(),
            exp: 2_000_000_000,
            iat: 1_000,
            nbf: 1_000,
            jti: "j".parse().unwrap(),
            client_id: "app".parse().unwrap(),
            scope: "profile".into(),
            username: Some("ana".into()),
            allowed_networks: Vec::new(),
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
            assert_eq!(for_caller(full.clone(), &entitled, "introspect"), full, "{entitled:?}");
        }
        let stranger = for_caller(full.clone(), &caller("other", "profile"), "introspect");
        assert_eq!(
            serde_json::to_value(stranger).unwrap(),
            serde_json::json!({"active": false})
        );
    }
}
