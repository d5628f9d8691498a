//! Seed 002's endpoints, with their exact documents: `POST /oauth` (Basic username:password →
//! a bearer token whose `expires_in` is an absolute epoch-millisecond time) and `DELETE /revoke`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use http_kit::Endpoint;
use serde::Serialize;
use utoipa::ToSchema;

use crate::bearer;
use crate::client_auth::{self, AuthenticatedClient};
use crate::domain::issue::issue_for_user;
use crate::http::token::authenticate_user;
use crate::state::AppState;

/// Registers this file's endpoints (`http::routes` composes every file's).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/oauth").post(login).build())
        .service(Endpoint::new("/revoke").delete(revoke).build());
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeedTokenDocument {
    pub code: u16,
    pub method: &'static str,
    pub token_type: &'static str,
    /// "OK", or what went wrong.
    pub error: String,
    pub access_token: Option<String>,
    pub path: &'static str,
    pub scope: String,
    /// When the token expires, in milliseconds since the epoch (not a duration).
    pub expires_in: Option<i64>,
    pub group: Option<i32>,
    pub timestamp: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeedRevokeDocument {
    pub path: &'static str,
    pub code: u16,
    pub method: &'static str,
    pub scope: String,
    pub token_type: &'static str,
    pub error: String,
    pub timestamp: i64,
}

fn token_failure(status: StatusCode, error: &str) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    if status == StatusCode::UNAUTHORIZED {
        response.insert_header(("www-authenticate", "Basic realm=\"oauth\""));
    }
    response.json(SeedTokenDocument {
        code: status.as_u16(),
        method: "POST",
        token_type: "bearer",
        error: error.to_owned(),
        access_token: None,
        path: "/oauth",
        scope: String::new(),
        expires_in: None,
        group: None,
        timestamp: storage::now_millis(),
    })
}

/// Seed 002 login: `Authorization: Basic base64(username:password)`.
#[utoipa::path(post, path = "/oauth", operation_id = "seedLogin", tag = "seed", responses((status = 200, body = SeedTokenDocument), (status = 401, body = SeedTokenDocument)))]
pub async fn login(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let credentials = http_kit::credentials::basic(&req).and_then(client_auth::decode_basic);
    let Some((username, password)) = credentials else {
        return token_failure(
            StatusCode::UNAUTHORIZED,
            "Basic authorization with username:password is required",
        );
    };
    match legacy_login(&state, &req, &username, &password).await {
        Ok(response) => response,
        Err(error) => {
            let status = actix_web::ResponseError::status_code(&error);
            let mut response = token_failure(status, error.error_code());
            if let Some(secs) = error.retry_after() {
                response
                    .headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, secs.into());
            }
            response
        }
    }
}

async fn legacy_login(
    state: &AppState,
    req: &HttpRequest,
    username: &str,
    password: &str,
) -> Result<HttpResponse, http_kit::OAuthError> {
    let row = state
        .store
        .client(state.oauth.legacy_client_id.to_string())
        .await?
        .ok_or_else(|| http_kit::OAuthError::server_error("the legacy client is missing"))?;
    let client = AuthenticatedClient {
        confidential: false,
        row,
    };
    let Some(user) = authenticate_user(state, req, username, password).await? else {
        return Ok(token_failure(StatusCode::UNAUTHORIZED, "Bad credentials"));
    };
    let scope = client.row.scopes();
    let issued = issue_for_user(state, &client, &user, &scope, None).await?;
    let now = storage::now_millis();
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(SeedTokenDocument {
            code: 200,
            method: "POST",
            token_type: "bearer",
            error: "OK".to_owned(),
            access_token: Some(issued.access_token),
            path: "/oauth",
            scope: issued.claims.scope,
            expires_in: Some(issued.claims.exp * 1000),
            group: Some(user.group_id),
            timestamp: now,
        }))
}

/// Seed 002: revokes the bearer token of the request itself.
#[utoipa::path(delete, path = "/revoke", operation_id = "seedRevoke", tag = "seed", security(("bearer" = [])), responses((status = 200, body = SeedRevokeDocument), (status = 401, body = SeedRevokeDocument)))]
pub async fn revoke(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let document = |status: StatusCode, scope: String, error: &str| {
        HttpResponse::build(status).json(SeedRevokeDocument {
            path: "/revoke",
            code: status.as_u16(),
            method: "DELETE",
            scope,
            token_type: "bearer",
            error: error.to_owned(),
            timestamp: storage::now_millis(),
        })
    };
    let Some(token) = http_kit::credentials::bearer(&req) else {
        return document(StatusCode::UNAUTHORIZED, String::new(), "a bearer token is required");
    };
    let claims = match bearer::verify(&state, token).await {
        Ok((claims, _)) => claims,
        Err(_) => return document(StatusCode::UNAUTHORIZED, String::new(), "invalid_token"),
    };
    match state.revoke_access(&claims).await {
        Ok(()) => document(StatusCode::OK, claims.scope, "OK"),
        Err(error) => {
            tracing::error!(%error, "revocation failed");
            document(StatusCode::SERVICE_UNAVAILABLE, claims.scope, "try again shortly")
        }
    }
}
