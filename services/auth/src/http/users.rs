//! Users: registration, the caller's own account, roles (administrators only).

use std::collections::BTreeSet;

use actix_web::web;
use http_kit::extract::excerpt;
use http_kit::{ApiError, Endpoint, Envelope};
use ids::UserId;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use values::every_field;

use crate::bearer::Caller;
use crate::domain::users::{self, Verify};
use crate::domain::{Email, NewPassword, Role, Username, format_roles, parse_roles};
use crate::passwords::HashError;
use crate::state::AppState;
use crate::store::UserRow;

/// Registers this file's endpoints (`http::routes` composes every file's).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/users").post(register).build())
        .service(Endpoint::new("/accounts/me").get(me).build())
        .service(Endpoint::new("/accounts/{id}/roles").put(set_roles).build());
}

/// Group of an ordinary member, as in seed 002's `group`.
pub const MEMBER_GROUP: i32 = 1;

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUser {
    /// Letters, digits, `_`, `.` and `-`.
    #[schema(min_length = 3, max_length = 32, pattern = r"^[A-Za-z0-9_.-]*$")]
    pub username: String,
    #[schema(
        max_length = 254,
        pattern = r"^[\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000@]+@[^\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000@.][^\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000@]*\.[^\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000@]*[^\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000@.][\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub email: String,
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub email: String,
    pub roles: Vec<String>,
    pub group: i32,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

impl From<&UserRow> for UserView {
    fn from(row: &UserRow) -> Self {
        Self {
            id: row.id.to_string(),
            username: row.username.clone(),
            email: row.email.clone(),
            roles: parse_roles(&row.roles).iter().map(|r| r.as_str().to_owned()).collect(),
            group: row.group_id,
            created_at: row.created_at,
        }
    }
}

/// Hashes the password and creates the user (see `domain::users::create`); 409 when the
/// username or address is taken.
pub async fn create_user(
    state: &AppState,
    username: Username,
    email: Email,
    password: &SecretString,
    roles: BTreeSet<Role>,
    verify: Verify,
) -> Result<UserRow, ApiError> {
    let hash = state.passwords.hash(password.clone()).await.map_err(|e| match e {
        HashError::Busy(wait) => ApiError::too_many_requests(wait),
        HashError::Failed(cause) => ApiError::internal(std::io::Error::other(cause)),
    })?;
    let row = UserRow {
        id: UserId::mint(),
        username: username.to_string(),
        email: email.to_string(),
        password_hash: hash,
        roles: format_roles(&roles),
        group_id: MEMBER_GROUP,
        created_at: storage::now_millis(),
    };
    users::create(&state.outbox, row, state.keys.issuer().to_owned(), verify)
        .await
        .map_err(|e| match e {
            storage::StorageError::Conflict(_) => ApiError::conflict("username or email already registered"),
            other => other.into(),
        })
}

/// Registers a user (any visitor may).
#[utoipa::path(post, path = "/users", operation_id = "registerUser", tag = "users", request_body = NewUser,
    responses((status = 201, body = Envelope<UserView>), (status = 409, description = "username or e-mail taken", body = http_kit::ErrorBody), (status = 422, body = http_kit::ErrorBody)))]
pub async fn register(
    state: web::Data<AppState>,
    body: http_kit::Json<NewUser>,
) -> Result<Envelope<UserView>, ApiError> {
    let (username, email, password) = every_field!(
        username = Username::parse(&body.username),
        email = Email::parse(&body.email),
        password = NewPassword::parse(&body.password),
    )?;
    let row = create_user(
        &state,
        username,
        email,
        password.secret(),
        BTreeSet::new(),
        Verify::Email,
    )
    .await?;
    tracing::info!(user.id = %row.id, "user registered");
    Ok(Envelope::created(UserView::from(&row)))
}

/// The caller's account (the profile is user-profile's `GET /users/me`).
#[utoipa::path(get, path = "/accounts/me", operation_id = "getMyAccount", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Envelope<UserView>), (status = 401, body = http_kit::ErrorBody)))]
pub async fn me(caller: Caller) -> Envelope<UserView> {
    Envelope::ok(UserView::from(&caller.user))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RolesUpdate {
    /// Replaces the user's roles.
    #[schema(value_type = Vec<crate::domain::Role>)]
    pub roles: Vec<String>,
}

/// Sets a user's roles (administrators only).
#[utoipa::path(put, path = "/accounts/{id}/roles", params(("id" = String, Path, description = "The user's id")), operation_id = "setAccountRoles", tag = "users", security(("bearer" = [])), request_body = RolesUpdate,
    responses((status = 200, body = Envelope<UserView>), (status = 403, body = http_kit::ErrorBody), (status = 404, body = http_kit::ErrorBody)))]
pub async fn set_roles(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: http_kit::Json<RolesUpdate>,
) -> Result<Envelope<UserView>, ApiError> {
    caller.require(Role::Admin)?;
    let roles = body
        .roles
        .iter()
        .map(|r| {
            Role::parse(r).ok_or_else(|| ApiError::invalid_field("roles", format!("`{}` is not a role", excerpt(r))))
        })
        .collect::<Result<BTreeSet<_>, _>>()?;
    let row = state.store.set_roles(id.into_inner(), format_roles(&roles)).await?;
    Ok(Envelope::ok(UserView::from(&row)))
}
