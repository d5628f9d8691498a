//! The in-app inbox: notifications sent to the in-app channel, and what sandbox providers
//! recorded in place of sending (each entry says which).

use actix_web::{HttpRequest, web};
use http_kit::pagination::{Page, PageQuery, PageRequest};
use http_kit::{ApiError, Envelope};
use serde::Deserialize;

use super::Recipient;
use crate::state::Dispatch;
use crate::views::InboxView;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// Only entries not yet read.
    #[serde(default)]
    pub unread: bool,
    /// 1-based page number (default 1).
    #[param(minimum = 1, maximum = 4294967295.0)]
    pub page: Option<u32>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<u32>,
}

/// The caller's inbox, newest first.
#[utoipa::path(get, path = "/notifications/inbox", operation_id = "listInbox", tag = "notifications", params(InboxQuery), security(("bearer" = ["notifications"])),
    responses((status = 200, body = Envelope<Page<InboxView>>), (status = 400, body = http_kit::ErrorBody), (status = 401, body = http_kit::ErrorBody), (status = 403, body = http_kit::ErrorBody)))]
pub async fn list(
    state: web::Data<Dispatch>,
    user: Recipient,
    req: HttpRequest,
    query: web::Query<InboxQuery>,
) -> Result<Envelope<Page<InboxView>>, ApiError> {
    let query = query.into_inner();
    let page = PageRequest::try_from(PageQuery {
        page: query.page,
        size: query.size,
    })?;
    let (rows, total) = state
        .store
        .inbox_of(user.user.clone(), query.unread, page.offset(), page.limit())
        .await?;
    let items = rows.iter().map(InboxView::from).collect();
    let total = u64::try_from(total).unwrap_or(0);
    Ok(Envelope::ok(Page::new(
        items,
        page,
        total,
        req.path(),
        req.query_string(),
    )))
}

/// Marks one of the caller's inbox entries read.
#[utoipa::path(post, path = "/notifications/inbox/{id}/read", operation_id = "markInboxItemRead", tag = "notifications", params(("id" = String, Path)), security(("bearer" = ["notifications"])),
    responses((status = 200, body = Envelope<InboxView>), (status = 401, body = http_kit::ErrorBody), (status = 404, body = http_kit::ErrorBody)))]
pub async fn mark_read(
    state: web::Data<Dispatch>,
    user: Recipient,
    path: web::Path<String>,
) -> Result<Envelope<InboxView>, ApiError> {
    let row = state
        .store
        .mark_read(user.user.clone(), path.into_inner(), storage::now_millis())
        .await?
        .ok_or_else(|| ApiError::not_found("no such inbox entry"))?;
    Ok(Envelope::ok(InboxView::from(&row)))
}
