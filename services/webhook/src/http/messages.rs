//! An endpoint's messages: the delivery log (every attempt), a test message, resending one
//! message, and recovering every failed one since a time.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use chrono::{DateTime, Utc};
use http_kit::pagination::{Page, PageQuery, PageRequest};
use http_kit::{ApiError, Envelope};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::Manager;
use crate::domain::event_types::TEST;
use crate::domain::fanout::{self, Intake};
use crate::state::Webhooks;
use crate::store::{AttemptFilter, Route};
use crate::views::{Accepted, AttemptView};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttemptQuery {
    /// `succeeded` or `failed`.
    pub status: Option<String>,
    pub event_type: Option<String>,
    pub message_id: Option<String>,
    /// RFC 3339: attempts at or after.
    pub since: Option<DateTime<Utc>>,
    /// RFC 3339: attempts before.
    pub until: Option<DateTime<Utc>>,
    pub page: Option<u32>,
    pub size: Option<u32>,
}

fn filter(query: &AttemptQuery) -> Result<AttemptFilter, ApiError> {
    let succeeded = match query.status.as_deref() {
        None => None,
        Some("succeeded") => Some(true),
        Some("failed") => Some(false),
        Some(_) => return Err(ApiError::invalid_field("status", "`succeeded` or `failed`")),
    };
    Ok(AttemptFilter {
        succeeded,
        event_type: query.event_type.clone(),
        since: query.since.map(|t| t.timestamp_millis()),
        until: query.until.map(|t| t.timestamp_millis()),
        message_id: query.message_id.clone(),
    })
}

/// Every attempt to the endpoint, newest first.
#[utoipa::path(get, path = "/webhooks/endpoints/{id}/attempts", operation_id = "listDeliveryAttempts", tag = "webhooks", params(("id" = String, Path), AttemptQuery), security(("bearer" = ["webhooks:manage"])),
    responses((status = 200, body = Envelope<Page<AttemptView>>), (status = 400, body = http_kit::ErrorBody), (status = 404, body = http_kit::ErrorBody), (status = 422, body = http_kit::ErrorBody)))]
pub async fn attempts(
    state: web::Data<Webhooks>,
    manager: Manager,
    req: HttpRequest,
    id: web::Path<String>,
    query: web::Query<AttemptQuery>,
) -> Result<Envelope<Page<AttemptView>>, ApiError> {
    let endpoint = manager.endpoint(&state, &id).await?;
    let query = query.into_inner();
    let filter = filter(&query)?;
    let page = PageRequest::try_from(PageQuery {
        page: query.page,
        size: query.size,
    })?;
    let (rows, total) = state
        .store
        .attempts_of(endpoint.id, filter, page.offset(), page.limit())
        .await?;
    let items = rows.into_iter().map(AttemptView::from).collect();
    let total = u64::try_from(total).unwrap_or(0);
    Ok(Envelope::ok(Page::new(
        items,
        page,
        total,
        req.path(),
        req.query_string(),
    )))
}

fn accepted(data: Accepted) -> Envelope<Accepted> {
    Envelope::with_status(StatusCode::ACCEPTED, "accepted", "Accepted", data)
}

/// Sends a `webhook.test` message to the endpoint (whatever its filter).
#[utoipa::path(post, path = "/webhooks/endpoints/{id}/test", operation_id = "sendTestEvent", tag = "webhooks", params(("id" = String, Path)), security(("bearer" = ["webhooks:manage"])),
    responses((status = 202, body = Envelope<Accepted>), (status = 404, body = http_kit::ErrorBody)))]
pub async fn test(
    state: web::Data<Webhooks>,
    manager: Manager,
    id: web::Path<String>,
) -> Result<Envelope<Accepted>, ApiError> {
    let endpoint = manager.endpoint(&state, &id).await?;
    let (event_id, data) = (
        uuid::Uuid::now_v7().simple().to_string(),
        json!({"endpoint_id": endpoint.id, "message": "This is a test message."}),
    );
    let intake = Intake {
        event_id: &event_id,
        event_type: TEST,
        time: Utc::now(),
        data: &data,
    };
    let routes = [Route::from(&endpoint)];
    let message_id = fanout::deliver(
        &state.store,
        &intake,
        endpoint.client_id,
        &routes,
        storage::now_millis(),
    )
    .await?;
    state.wake.both();
    Ok(accepted(Accepted {
        message_id,
        recovered: None,
    }))
}

/// Makes one message due again at the endpoint, with a fresh schedule.
#[utoipa::path(post, path = "/webhooks/endpoints/{id}/messages/{message_id}/resend", operation_id = "resendMessage", tag = "webhooks",
    params(("id" = String, Path), ("message_id" = String, Path)), security(("bearer" = ["webhooks:manage"])),
    responses((status = 202, body = Envelope<Accepted>), (status = 404, body = http_kit::ErrorBody)))]
pub async fn resend(
    state: web::Data<Webhooks>,
    manager: Manager,
    path: web::Path<(String, String)>,
) -> Result<Envelope<Accepted>, ApiError> {
    let (id, message) = path.into_inner();
    let endpoint = manager.endpoint(&state, &id).await?;
    if !state
        .store
        .retry_now(message.clone(), endpoint.id, storage::now_millis())
        .await?
    {
        return Err(ApiError::not_found("no such message for this endpoint"));
    }
    state.wake.both();
    Ok(accepted(Accepted {
        message_id: Some(message),
        recovered: None,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recover {
    /// RFC 3339: every message that failed since then is sent again (within `webhook.recover_window`).
    pub since: DateTime<Utc>,
}

/// Sends again every message to the endpoint that failed since a time.
#[utoipa::path(post, path = "/webhooks/endpoints/{id}/recover", operation_id = "recoverMessages", tag = "webhooks", request_body = Recover, params(("id" = String, Path)), security(("bearer" = ["webhooks:manage"])),
    responses((status = 202, body = Envelope<Accepted>), (status = 404, body = http_kit::ErrorBody), (status = 422, body = http_kit::ErrorBody)))]
pub async fn recover(
    state: web::Data<Webhooks>,
    manager: Manager,
    id: web::Path<String>,
    body: http_kit::Json<Recover>,
) -> Result<Envelope<Accepted>, ApiError> {
    let endpoint = manager.endpoint(&state, &id).await?;
    let now = storage::now_millis();
    let since = body.since.timestamp_millis();
    if since < now - state.settings.recover_window.millis() || since > now {
        return Err(ApiError::invalid_field(
            "since",
            format!("within the last {}", state.settings.recover_window),
        ));
    }
    let recovered = state.store.recover(endpoint.id, since, now).await?;
    state.wake.both();
    Ok(accepted(Accepted {
        message_id: None,
        recovered: Some(recovered),
    }))
}
