//! The applications a user authorized, and withdrawing one: its refresh tokens end and
//! nothing more about the user reaches it by webhook or notification.

use actix_web::{HttpResponse, web};
use http_kit::{ApiError, Endpoint, Envelope};
use serde::Serialize;
use utoipa::ToSchema;

use crate::bearer::Caller;
use crate::domain::{Scopes, consents};
use crate::state::AppState;

/// Registers this file's endpoints (`http::routes` composes every file's).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/accounts/me/consents").get(list).build())
        .service(
            Endpoint::new("/accounts/me/consents/{client_id}")
                .delete(withdraw)
                .build(),
        );
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentView {
    pub client_id: String,
    /// The application's name (absent once it was deleted).
    pub name: Option<String>,
    pub scopes: Vec<String>,
    /// Milliseconds since the epoch.
    pub granted_at: i64,
}

/// The applications the caller authorized, newest first.
#[utoipa::path(get, path = "/accounts/me/consents", operation_id = "listMyConsents", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Envelope<Vec<ConsentView>>), (status = 401, body = http_kit::ErrorBody)))]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<Envelope<Vec<ConsentView>>, ApiError> {
    let rows = state.store.consents_of(caller.user.id.clone()).await?;
    let mut views = Vec::with_capacity(rows.len());
    for (client_id, scope, granted_at) in rows {
        let name = state.client(&client_id).await?.map(|c| c.name);
        let scopes = Scopes::parse(&scope).unwrap_or_default().names();
        views.push(ConsentView {
            client_id,
            name,
            scopes,
            granted_at,
        });
    }
    Ok(Envelope::ok(views))
}

/// Withdraws the caller's authorization of an application.
#[utoipa::path(delete, path = "/accounts/me/consents/{client_id}", params(("client_id" = String, Path, description = "The application's client_id")), operation_id = "withdrawConsent", tag = "users", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = http_kit::ErrorBody), (status = 404, description = "the caller never authorized it", body = http_kit::ErrorBody)))]
pub async fn withdraw(
    state: web::Data<AppState>,
    caller: Caller,
    client_id: web::Path<ids::ClientId>,
) -> Result<HttpResponse, ApiError> {
    let client_id = client_id.into_inner();
    if !consents::withdraw(&state, caller.user.id.clone(), client_id.clone()).await? {
        return Err(ApiError::not_found("you did not authorize this application"));
    }
    tracing::info!(user.id = %caller.user.id, client.id = %client_id, "consent withdrawn");
    Ok(HttpResponse::NoContent().finish())
}
