//! Profiles: the caller's own (`/users/me`), another user's public one, and seed 003's
//! `get_user_info`. Every handler declares who may call it (`ForUser<ReadProfile>`, …):
//! requests reach it only through the gateway, which signed who is calling.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use http_kit::{ApiError, Envelope, etag};
use identity::{AnyScope, Caller, ForUser, Requirement, Scoped};
use ids::UserId;

use crate::domain::{ProfilePatch, profiles};
use crate::state::Profiles;
use crate::store::ProfileRow;
use crate::views::{Profile, PublicProfile, UserInfo, UserInfoDocument};

pub const PROFILE_SCOPE: &str = "profile";
pub const EMAIL_SCOPE: &str = "email";
/// OpenID Connect's scope for the phone number.
pub const PHONE_SCOPE: &str = "phone";
/// Deleting an account is not something every application reading profiles may do.
pub const DELETE_SCOPE: &str = "account:delete";

/// Reading and changing profiles.
pub struct ReadProfile;

impl Requirement for ReadProfile {
    const SCOPES: &'static [&'static str] = &[PROFILE_SCOPE];
}

/// Ending the caller's own account.
pub struct DeleteAccount;

impl Requirement for DeleteAccount {
    const SCOPES: &'static [&'static str] = &[DELETE_SCOPE];
}

async fn load(state: &Profiles, user_id: UserId) -> Result<ProfileRow, ApiError> {
    state.store.profile(user_id).await?.ok_or_else(no_profile)
}

fn no_profile() -> ApiError {
    ApiError::not_found("no profile for this user")
}

/// The caller's view of `row` and its entity tag: the e-mail shows only with `email`, the
/// phone number only with `phone`.
fn own_view(row: &ProfileRow, caller: &Caller) -> (Profile, String) {
    let (email, phone) = (caller.0.has_scope(EMAIL_SCOPE), caller.0.has_scope(PHONE_SCOPE));
    let shown: Vec<&str> = [(email, "email"), (phone, "phone")]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
    (Profile::of(row, email, phone), etag::tag(row.version, &shown))
}

fn answer(row: &ProfileRow, caller: &Caller) -> HttpResponse {
    let (view, tag) = own_view(row, caller);
    HttpResponse::Ok()
        .insert_header((header::ETAG, tag))
        .json(Envelope::ok(view))
}

/// Seed 003's user information. The gateway also accepts the token as `?access_token=`.
#[utoipa::path(get, path = "/api/get_user_info", operation_id = "getUserInfo", tag = "seed",
    security(("bearer" = []), ("accessTokenQuery" = [])),
    responses((status = 200, body = UserInfoDocument), (status = 401, body = http_kit::ErrorBody),
              (status = 403, body = http_kit::ErrorBody), (status = 404, body = http_kit::ErrorBody)))]
pub async fn user_info(state: web::Data<Profiles>, caller: ForUser<AnyScope>) -> Result<HttpResponse, ApiError> {
    let row = load(&state, caller.user.clone()).await?;
    let info = UserInfo::of(&row, caller.0.has_scope(PROFILE_SCOPE), caller.0.has_scope(EMAIL_SCOPE));
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(UserInfoDocument { user_info: info }))
}

/// The caller's profile (scope `profile`), with its ETag.
#[utoipa::path(get, path = "/users/me", operation_id = "getMyProfile", tag = "profiles", security(("bearer" = ["profile"])),
    responses((status = 200, body = Envelope<Profile>), (status = 304, description = "If-None-Match matched"),
              (status = 403, body = http_kit::ErrorBody), (status = 404, body = http_kit::ErrorBody)))]
pub async fn me(
    state: web::Data<Profiles>,
    caller: ForUser<ReadProfile>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let row = load(&state, caller.user.clone()).await?;
    let (_, tag) = own_view(&row, &caller);
    if etag::not_modified(&req, &tag) {
        return Ok(HttpResponse::NotModified().insert_header((header::ETAG, tag)).finish());
    }
    Ok(answer(&row, &caller))
}

/// Changes the caller's profile (scope `profile`): a JSON merge patch (RFC 7396) where `null`
/// clears a field. `If-Match` makes it conditional (412 when the profile changed).
#[utoipa::path(patch, path = "/users/me", operation_id = "updateMyProfile", tag = "profiles", security(("bearer" = ["profile"])),
    request_body(content = Object, content_type = "application/merge-patch+json", description = "The fields to change (ProfilePatch)"),
    params(("If-Match" = Option<String>, Header, description = "The ETag last read")),
    responses((status = 200, body = Envelope<Profile>), (status = 412, body = http_kit::ErrorBody),
              (status = 422, description = "A field is not valid; the message names it", body = http_kit::ErrorBody)))]
pub async fn update_me(
    state: web::Data<Profiles>,
    caller: ForUser<ReadProfile>,
    req: HttpRequest,
    body: http_kit::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let fields = body
        .as_object()
        .ok_or_else(|| ApiError::invalid_field("body", "must be a JSON object"))?;
    let today = chrono::Utc::now().date_naive();
    let patch = ProfilePatch::parse(fields, today)?;
    // Without If-Match a change made meanwhile is read again and the patch applied on top;
    // with it, the next round answers 412.
    for _ in 0..3 {
        let current = load(&state, caller.user.clone()).await?;
        etag::if_match(&req, &own_view(&current, &caller).1)?;
        if patch.is_empty() {
            return Ok(answer(&current, &caller));
        }
        let next = current.patched(patch.clone(), storage::now_millis());
        if let Some(saved) = profiles::update(&state.outbox, next).await? {
            tracing::info!(user.id = %saved.user_id, "profile updated");
            return Ok(answer(&saved, &caller));
        }
    }
    Err(ApiError::conflict(
        "the profile is being changed concurrently; try again",
    ))
}

/// Deletes the caller's profile (scope `account:delete`) and publishes `user.deleted`: auth
/// then deletes the account and revokes its tokens, the blog forgets the author.
#[utoipa::path(delete, path = "/users/me", operation_id = "deleteMyProfile", tag = "profiles", security(("bearer" = ["account:delete"])),
    responses((status = 204, description = "Deleted"), (status = 403, body = http_kit::ErrorBody), (status = 404, body = http_kit::ErrorBody)))]
pub async fn delete_me(state: web::Data<Profiles>, caller: ForUser<DeleteAccount>) -> Result<HttpResponse, ApiError> {
    profiles::delete(&state.outbox, caller.user.clone()).await?;
    tracing::info!(user.id = %caller.user, "profile deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// What any application with `profile` may see of a user.
#[utoipa::path(get, path = "/users/{id}", operation_id = "getPublicProfile", tag = "profiles", security(("bearer" = ["profile"])),
    params(("id" = String, Path, description = "The user's id")),
    responses((status = 200, body = Envelope<PublicProfile>), (status = 404, body = http_kit::ErrorBody)))]
pub async fn public_profile(
    state: web::Data<Profiles>,
    _reader: Scoped<ReadProfile>,
    id: web::Path<String>,
) -> Result<Envelope<PublicProfile>, ApiError> {
    // Not an id any user could have: no such profile, as for an unknown one.
    let id = UserId::parse(id.into_inner()).map_err(|_| no_profile())?;
    let row = load(&state, id).await?;
    Ok(Envelope::ok(PublicProfile::from(&row)))
}
