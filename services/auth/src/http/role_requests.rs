//! Asking for a role: a person asks to become a registration platform (seed 000: only those
//! create applications), an administrator approves (the role is added in the same transaction)
//! or refuses.

use actix_web::web;
use http_kit::{ApiError, Endpoint, Envelope};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::bearer::Caller;
use crate::domain::Role;
use crate::state::AppState;
use crate::store::RoleRequestRow;

/// Registers this file's endpoints (`http::routes` composes every file's).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/accounts/me/role-requests").post(ask).get(mine).build())
        .service(Endpoint::new("/accounts/role-requests").get(pending).build())
        .service(
            Endpoint::new("/accounts/role-requests/{id}/decision")
                .post(decide)
                .build(),
        );
}

const MAX_REASON: usize = 500;
const PENDING: &str = "pending";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRoleRequest {
    /// The only role that can be asked for: `registration_platform`.
    #[schema(pattern = "^registration_platform$")]
    pub role: String,
    /// What the person will build, for the administrator (at most 500 characters).
    #[serde(default)]
    #[schema(max_length = 500)]
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleRequestView {
    pub id: String,
    pub user_id: String,
    /// Present in the administrators' list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub role: String,
    pub reason: String,
    /// `pending`, `approved` or `refused`.
    pub status: String,
    pub created_at: i64,
    pub decided_at: Option<i64>,
}

impl RoleRequestView {
    fn new(row: RoleRequestRow, username: Option<String>) -> Self {
        Self {
            id: row.id,
            user_id: row.user_id.into_string(),
            username,
            role: row.role,
            reason: row.reason,
            status: row.status,
            created_at: row.created_at,
            decided_at: row.decided_at,
        }
    }
}

/// Asks for a role; 409 when the caller has it already or is waiting for an answer.
#[utoipa::path(post, path = "/accounts/me/role-requests", operation_id = "requestRole", tag = "users", security(("bearer" = [])), request_body = NewRoleRequest,
    responses((status = 201, body = Envelope<RoleRequestView>), (status = 401, body = http_kit::ErrorBody),
              (status = 409, description = "the caller has the role or a pending request", body = http_kit::ErrorBody), (status = 422, body = http_kit::ErrorBody)))]
pub async fn ask(
    state: web::Data<AppState>,
    caller: Caller,
    body: http_kit::Json<NewRoleRequest>,
) -> Result<Envelope<RoleRequestView>, ApiError> {
    let role = Role::parse(&body.role)
        .filter(|r| *r == Role::RegistrationPlatform)
        .ok_or_else(|| ApiError::invalid_field("role", "only registration_platform can be asked for"))?;
    let reason = body.reason.trim().to_owned();
    if reason.chars().count() > MAX_REASON {
        return Err(ApiError::invalid_field("reason", "at most 500 characters"));
    }
    if caller.roles.contains(&role) {
        return Err(ApiError::conflict("you have this role already"));
    }
    let row = RoleRequestRow {
        id: uuid::Uuid::now_v7().simple().to_string(),
        user_id: caller.user.id.clone(),
        role: role.as_str().to_owned(),
        reason,
        status: PENDING.to_owned(),
        created_at: storage::now_millis(),
        decided_at: None,
        decided_by: None,
    };
    state
        .store
        .insert_role_request(row.clone())
        .await
        .map_err(|e| match e {
            storage::StorageError::Conflict(_) => ApiError::conflict("you asked already; an administrator will answer"),
            other => other.into(),
        })?;
    tracing::info!(user.id = %row.user_id, role = %row.role, "role requested");
    Ok(Envelope::created(RoleRequestView::new(row, None)))
}

/// The caller's requests, newest first.
#[utoipa::path(get, path = "/accounts/me/role-requests", operation_id = "listMyRoleRequests", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Envelope<Vec<RoleRequestView>>), (status = 401, body = http_kit::ErrorBody)))]
pub async fn mine(state: web::Data<AppState>, caller: Caller) -> Result<Envelope<Vec<RoleRequestView>>, ApiError> {
    let rows = state.store.role_requests_of(caller.user.id.clone()).await?;
    Ok(Envelope::ok(
        rows.into_iter().map(|r| RoleRequestView::new(r, None)).collect(),
    ))
}

/// Requests waiting for an answer, oldest first (administrators only).
#[utoipa::path(get, path = "/accounts/role-requests", operation_id = "listPendingRoleRequests", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Envelope<Vec<RoleRequestView>>), (status = 403, body = http_kit::ErrorBody)))]
pub async fn pending(state: web::Data<AppState>, caller: Caller) -> Result<Envelope<Vec<RoleRequestView>>, ApiError> {
    caller.require(Role::Admin)?;
    let rows = state.store.pending_role_requests(200).await?;
    Ok(Envelope::ok(
        rows.into_iter()
            .map(|(row, username)| RoleRequestView::new(row, username))
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// `approve` adds the role to the person's account; `refuse` does not.
    #[schema(pattern = "^(approve|refuse)$")]
    pub decision: String,
}

/// Approves or refuses a pending request (administrators only); 409 if it was decided already.
#[utoipa::path(post, path = "/accounts/role-requests/{id}/decision", params(("id" = String, Path, description = "The role request's id")), operation_id = "decideRoleRequest", tag = "users", security(("bearer" = [])), request_body = Decision,
    responses((status = 200, body = Envelope<RoleRequestView>), (status = 403, body = http_kit::ErrorBody), (status = 404, body = http_kit::ErrorBody),
              (status = 409, description = "decided already", body = http_kit::ErrorBody), (status = 422, body = http_kit::ErrorBody)))]
pub async fn decide(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: http_kit::Json<Decision>,
) -> Result<Envelope<RoleRequestView>, ApiError> {
    caller.require(Role::Admin)?;
    let status = match body.decision.as_str() {
        "approve" => "approved",
        "refuse" => "refused",
        _ => return Err(ApiError::invalid_field("decision", "approve or refuse")),
    };
    let row = state
        .store
        .decide_role_request(id.into_inner(), status, caller.user.id.clone(), storage::now_millis())
        .await
        .map_err(|e| match e {
            storage::StorageError::Conflict(_) => ApiError::conflict("this request was decided already"),
            other => other.into(),
        })?;
    tracing::info!(request.id = %row.id, user.id = %row.user_id, status = %row.status, "role request decided");
    Ok(Envelope::ok(RoleRequestView::new(row, None)))
}
