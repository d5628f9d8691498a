//! The caller of the JSON APIs, from an RFC 6750 bearer access token issued by this server.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, web};
use http_kit::ApiError;

use crate::domain::{Role, parse_roles};
use crate::keys::AccessClaims;
use crate::state::AppState;
use crate::store::UserRow;

pub struct Caller {
    pub user: UserRow,
    pub roles: BTreeSet<Role>,
}

impl Caller {
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.roles.contains(&role) || self.roles.contains(&Role::Admin) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("requires the {} role", role.as_str())))
        }
    }
}

fn invalid_token(reason: &str) -> ApiError {
    ApiError::unauthorized(reason.to_owned()).header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    )
}

/// Verifies the token, that it is not revoked and that its application still exists (deleting
/// an application ends its tokens); the caller decides whether the user must exist.
pub async fn verify(state: &AppState, token: &str) -> Result<(AccessClaims, Option<UserRow>), ApiError> {
    let claims = state.keys.verify(token).map_err(|e| invalid_token(&e.to_string()))?;
    let (revoked, user) = state
        .store
        .revoked_and_user(claims.jti.clone(), claims.user.clone())
        .await?;
    if revoked {
        return Err(invalid_token("token revoked"));
    }
    if state.client(&claims.client_id).await?.is_none() {
        return Err(invalid_token("the token's application was deleted"));
    }
    Ok((claims, user))
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let token = http_kit::credentials::bearer(req).map(str::to_owned);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token.ok_or_else(|| {
                ApiError::unauthorized("a bearer access token is required")
                    .header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
            })?;
            let state = state.ok_or_else(|| ApiError::internal(std::io::Error::other("auth state missing")))?;
            let (_, user) = verify(&state, &token).await?;
            let user = user.ok_or_else(|| ApiError::forbidden("this token does not act for a user"))?;
            Ok(Caller {
                roles: parse_roles(&user.roles),
                user,
            })
        })
    }
}
