//! Push device tokens, registered by the user's apps (FCM registration tokens).

use actix_web::{HttpResponse, web};
use http_kit::{ApiError, Envelope};
use serde::Deserialize;
use utoipa::ToSchema;
use values::{FieldErrors, Invalid};

use super::Recipient;
use crate::state::Dispatch;
use crate::store::DeviceRow;
use crate::views::DeviceView;

const PLATFORMS: [&str; 3] = ["android", "ios", "web"];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    /// The FCM registration token.
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+[\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub token: String,
    /// `android`, `ios` or `web`, any case.
    #[schema(
        pattern = r"^[\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([aA][nN][dD][rR][oO][iI][dD]|[iI][oO][sS]|[wW][eE][bB])[\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub platform: String,
}

impl NewDevice {
    fn parse(&self) -> Result<(String, String), FieldErrors> {
        let mut errors = FieldErrors::default();
        let token = self.token.trim();
        // The length counts what was sent, as the schema's `maxLength` does; the spaces around go.
        if token.is_empty() || self.token.chars().count() > 4096 || token.chars().any(char::is_whitespace) {
            errors.push(Invalid::new(
                "token",
                "a registration token: 1 to 4096 characters, no spaces",
            ));
        }
        let platform = self.platform.trim().to_lowercase();
        if !PLATFORMS.contains(&platform.as_str()) {
            errors.push(Invalid::new("platform", "one of android, ios, web"));
        }
        errors.check()?;
        Ok((token.to_owned(), platform))
    }
}

/// Registers a device of the caller; a token registered before moves to them.
#[utoipa::path(post, path = "/notifications/devices", operation_id = "registerDevice", tag = "notifications", request_body = NewDevice, security(("bearer" = ["notifications"])),
    responses((status = 201, body = Envelope<DeviceView>), (status = 401, body = http_kit::ErrorBody), (status = 403, body = http_kit::ErrorBody), (status = 422, body = http_kit::ErrorBody)))]
pub async fn register(
    state: web::Data<Dispatch>,
    user: Recipient,
    body: http_kit::Json<NewDevice>,
) -> Result<Envelope<DeviceView>, ApiError> {
    let (token, platform) = body.parse()?;
    let row = DeviceRow {
        id: format!("dev_{}", uuid::Uuid::now_v7().simple()),
        user_id: user.user.clone(),
        client_id: user.caller.0.client_id.clone(),
        token,
        platform,
        created_at: storage::now_millis(),
    };
    let stored = state.store.register_device(row).await?;
    Ok(Envelope::created(DeviceView::from(&stored)))
}

/// The caller's devices.
#[utoipa::path(get, path = "/notifications/devices", operation_id = "listDevices", tag = "notifications", security(("bearer" = ["notifications"])),
    responses((status = 200, body = Envelope<Vec<DeviceView>>), (status = 401, body = http_kit::ErrorBody), (status = 403, body = http_kit::ErrorBody)))]
pub async fn list(state: web::Data<Dispatch>, user: Recipient) -> Result<Envelope<Vec<DeviceView>>, ApiError> {
    let rows = state.store.devices_of(user.user.clone()).await?;
    Ok(Envelope::ok(rows.iter().map(DeviceView::from).collect()))
}

/// Forgets one of the caller's devices.
#[utoipa::path(delete, path = "/notifications/devices/{id}", operation_id = "removeDevice", tag = "notifications", params(("id" = String, Path)), security(("bearer" = ["notifications"])),
    responses((status = 204), (status = 401, body = http_kit::ErrorBody), (status = 404, body = http_kit::ErrorBody)))]
pub async fn remove(
    state: web::Data<Dispatch>,
    user: Recipient,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if state.store.delete_device(user.user.clone(), path.into_inner()).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found("no such device"))
    }
}
