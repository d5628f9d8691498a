//! A user's notification preferences: one document, replaced whole, conditional on its ETag
//! when `If-Match` is sent.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use http_kit::{ApiError, etag};

use super::Recipient;
use crate::domain::preferences::{Preferences, PreferencesDocument};
use crate::state::Dispatch;
use ids::UserId;

fn tag(version: i64) -> String {
    etag::tag(version, &[])
}

async fn stored(state: &Dispatch, user: &UserId) -> Result<(Preferences, i64), ApiError> {
    let found = state.store.preferences(user.clone()).await?;
    let Some((doc, version)) = found else {
        return Ok((Preferences::default(), 0));
    };
    Ok((Preferences::stored(&doc), version))
}

/// The caller's preferences (defaults until they set any).
#[utoipa::path(get, path = "/notifications/preferences", operation_id = "getNotificationPreferences", tag = "notifications", security(("bearer" = ["notifications"])),
    responses((status = 200, body = http_kit::Envelope<PreferencesDocument>, headers(("ETag" = String))), (status = 304), (status = 401, body = http_kit::ErrorBody), (status = 403, body = http_kit::ErrorBody)))]
pub async fn show(state: web::Data<Dispatch>, user: Recipient, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (prefs, version) = stored(&state, &user.user).await?;
    if let Some(unchanged) = etag::unchanged(&req, &tag(version)) {
        return Ok(unchanged);
    }
    Ok(etag::tagged(StatusCode::OK, prefs.document(), tag(version)))
}

/// Replaces the caller's preferences; every bad field is listed.
#[utoipa::path(put, path = "/notifications/preferences", operation_id = "replaceNotificationPreferences", tag = "notifications", request_body = PreferencesDocument, security(("bearer" = ["notifications"])),
    params(("If-Match" = Option<String>, Header)),
    responses((status = 200, body = http_kit::Envelope<PreferencesDocument>, headers(("ETag" = String))), (status = 401, body = http_kit::ErrorBody), (status = 403, body = http_kit::ErrorBody),
              (status = 412, body = http_kit::ErrorBody), (status = 422, description = "every bad field", body = http_kit::ErrorBody)))]
pub async fn replace(
    state: web::Data<Dispatch>,
    user: Recipient,
    req: HttpRequest,
    body: http_kit::Json<PreferencesDocument>,
) -> Result<HttpResponse, ApiError> {
    let prefs = body.into_inner().parse()?;
    let (_, version) = stored(&state, &user.user).await?;
    etag::if_match(&req, &tag(version))?;
    let document = serde_json::to_string(&prefs.document()).map_err(ApiError::internal)?;
    let written = state
        .store
        .put_preferences(user.user.clone(), document, version, storage::now_millis())
        .await?;
    if !written {
        return Err(etag::lost_race(&req));
    }
    Ok(etag::tagged(StatusCode::OK, prefs.document(), tag(version + 1)))
}
