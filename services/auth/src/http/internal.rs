//! Endpoints for the introspection service, on auth's own address only: the gateway routes no
//! `/internal` path, and in Kubernetes a NetworkPolicy admits only introspection. Both answer
//! what a caller could learn anyway from the token endpoint, under the same failure limits.

use actix_web::{HttpRequest, HttpResponse, web};
use http_kit::{Endpoint, OAuthError};
use serde::{Deserialize, Serialize};
use tokens::Introspection;

use crate::client_auth;
use crate::crypto;
use crate::oauth_form;
use crate::state::AppState;

/// Registers this file's endpoints (`http::routes` composes every file's).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        Endpoint::new("/internal/v1/client-authentication")
            .app_data(oauth_form())
            .post(authenticate_client)
            .build(),
    )
    .service(
        Endpoint::new("/internal/v1/token-lookup")
            .app_data(oauth_form())
            .post(lookup_token)
            .build(),
    );
}

#[derive(Deserialize)]
pub struct CredentialsForm {
    client_id: Option<String>,
    client_secret: Option<String>,
}

#[derive(Serialize)]
struct AuthenticatedView {
    client_id: String,
    /// Every scope the client may be granted.
    scope: String,
}

/// Authenticates a client exactly as the token endpoint does (Basic or form credentials).
pub async fn authenticate_client(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CredentialsForm>,
) -> Result<HttpResponse, OAuthError> {
    let client =
        client_auth::authenticate(&state, &req, form.client_id.as_deref(), form.client_secret.as_deref()).await?;
    if !client.confidential {
        return Err(OAuthError::invalid_client("a public client cannot authenticate"));
    }
    Ok(HttpResponse::Ok().json(AuthenticatedView {
        scope: client.row.scopes().to_string(),
        client_id: client.row.id.into_string(),
    }))
}

#[derive(Deserialize)]
pub struct LookupForm {
    token: String,
}

/// RFC 7662 fields of an opaque (refresh) token; `{"active": false}` for anything else.
pub async fn lookup_token(state: web::Data<AppState>, form: web::Form<LookupForm>) -> Result<HttpResponse, OAuthError> {
    let now = storage::now_millis();
    let found = state.store.refresh_with_user(crypto::sha256_hex(&form.token)).await?;
    let view = match found {
        Some((row, user))
            if row.used_at.is_none()
                && row.revoked_at.is_none()
                && row.expires_at > now
                && state.client(&row.client_id).await?.is_some() =>
        {
            Introspection {
                active: true,
                sub: Some(ids::subject(row.user_id.as_ref(), &row.client_id).to_owned()),
                username: user.map(|u| u.username),
                scope: Some(row.scope),
                token_type: Some("refresh_token".to_owned()),
                exp: Some(row.expires_at / 1000),
                iat: Some(row.created_at / 1000),
                client_id: Some(row.client_id.into_string()),
                ..Introspection::default()
            }
        }
        _ => Introspection::inactive(),
    };
    Ok(HttpResponse::Ok().json(view))
}
