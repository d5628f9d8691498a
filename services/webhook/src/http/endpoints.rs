//! Endpoints: where an application receives its messages. Creating one shows its signing
//! secret; changes are conditional on the ETag when `If-Match` is sent.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use http_kit::pagination::{Page, PageQuery, PageRequest};
use http_kit::{ApiError, Envelope, etag};
use ids::ClientId;
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use super::Manager;
use crate::domain::{EndpointFields, RawFields, new_endpoint_id, signing};
use crate::state::Webhooks;
use crate::store::EndpointRow;
use crate::views::EndpointView;

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// Where messages are POSTed: https, at a publicly routable address.
    pub url: String,
    /// The types it receives (`GET /webhooks/event-types`); empty: all the application may receive.
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Messages one at a time, in event order.
    #[serde(default)]
    pub ordered: bool,
    /// Deliveries per second at most.
    pub rate_limit: Option<i64>,
    /// Extra headers every attempt carries.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The application (client id) it is for; required with a user token, the caller with
    /// the application's own token.
    pub application_id: Option<String>,
}

/// Some(value) for a field that was sent, even `null`, so `null` clears.
fn sent<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A change: the fields sent replace the stored ones.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    /// Enabling a disabled endpoint resumes its pending messages.
    pub enabled: Option<bool>,
    pub ordered: Option<bool>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "sent")]
    #[schema(value_type = Option<i64>)]
    pub rate_limit: Option<Option<i64>>,
    pub headers: Option<BTreeMap<String, String>>,
}

async fn application_for(state: &Webhooks, manager: &Manager, named: Option<&str>) -> Result<ClientId, ApiError> {
    let named = named
        .map(ClientId::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_field("application_id", e.to_string()))?;
    let client = match (manager, named) {
        (Manager::Application(own), Some(named)) if named != *own => {
            return Err(ApiError::forbidden(
                "an application's token manages only its own endpoints",
            ));
        }
        (Manager::Application(own), _) => own.clone(),
        (Manager::Owner(_), Some(named)) => named,
        (Manager::Owner(_), None) => {
            return Err(ApiError::invalid_field("application_id", "required with a user token"));
        }
    };
    if !manager.manages(state, &client).await? {
        return Err(ApiError::not_found("no such application"));
    }
    Ok(client)
}

/// Registers an endpoint; the answer shows its signing secret.
#[utoipa::path(post, path = "/webhooks/endpoints", operation_id = "createWebhookEndpoint", tag = "webhooks", request_body = NewEndpoint, security(("bearer" = ["webhooks:manage"])),
    responses((status = 201, body = Envelope<EndpointView>, headers(("ETag" = String))), (status = 401, body = http_kit::ErrorBody), (status = 403, body = http_kit::ErrorBody),
              (status = 404, description = "no such application", body = http_kit::ErrorBody), (status = 409, description = "too many endpoints", body = http_kit::ErrorBody),
              (status = 422, description = "every bad field, including a URL the SSRF guard refuses", body = http_kit::ErrorBody)))]
pub async fn create(
    state: web::Data<Webhooks>,
    manager: Manager,
    body: http_kit::Json<NewEndpoint>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let client = application_for(&state, &manager, body.application_id.as_deref()).await?;
    let raw = RawFields {
        url: &body.url,
        description: &body.description,
        event_types: &body.event_types,
        rate_limit: body.rate_limit,
        headers: &body.headers,
    };
    let fields = EndpointFields::parse(raw, &state.guard).await?;
    let now = storage::now_millis();
    let (id, secret) = (new_endpoint_id(), signing::generate());
    let row = EndpointRow {
        secret: state.sealer.seal(&secret, &id).map_err(ApiError::internal)?,
        id,
        client_id: client,
        url: fields.url,
        description: fields.description,
        event_types: fields.event_types,
        enabled: body.enabled,
        ordered: body.ordered,
        rate_limit: fields.rate_limit,
        headers: fields.headers,
        previous_secret: None,
        previous_until: None,
        failing_since: None,
        disabled_reason: (!body.enabled).then(|| "owner".to_owned()),
        version: 1,
        created_at: now,
    };
    let limit = state.settings.max_endpoints_per_application;
    let created = state.store.add_endpoint(row.clone(), limit).await?;
    if !created {
        return Err(ApiError::conflict(format!(
            "an application has at most {limit} endpoints"
        )));
    }
    tracing::info!(endpoint.id = %row.id, client.id = %row.client_id, "webhook endpoint created");
    Ok(etag::tagged(
        StatusCode::CREATED,
        EndpointView::new(&row, Some(secret)),
        EndpointView::tag(&row),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this application's endpoints.
    pub application_id: Option<String>,
    /// 1-based page number (default 1).
    #[param(minimum = 1, maximum = 4294967295.0)]
    pub page: Option<u32>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<u32>,
}

/// The endpoints of the applications the caller manages, oldest first.
#[utoipa::path(get, path = "/webhooks/endpoints", operation_id = "listWebhookEndpoints", tag = "webhooks", params(ListQuery), security(("bearer" = ["webhooks:manage"])),
    responses((status = 200, body = Envelope<Page<EndpointView>>), (status = 400, body = http_kit::ErrorBody), (status = 401, body = http_kit::ErrorBody), (status = 403, body = http_kit::ErrorBody)))]
pub async fn list(
    state: web::Data<Webhooks>,
    manager: Manager,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> Result<Envelope<Page<EndpointView>>, ApiError> {
    let query = query.into_inner();
    let page = PageRequest::try_from(PageQuery {
        page: query.page,
        size: query.size,
    })?;
    let mut clients = manager.applications(&state).await?;
    if let Some(only) = &query.application_id {
        clients.retain(|c| c == only);
    }
    let (rows, total) = state.store.endpoints_of(clients, page.offset(), page.limit()).await?;
    let items = rows.iter().map(|r| EndpointView::new(r, None)).collect();
    let total = u64::try_from(total).unwrap_or(0);
    Ok(Envelope::ok(Page::new(
        items,
        page,
        total,
        req.path(),
        req.query_string(),
    )))
}

/// One endpoint, with its ETag; `If-None-Match` answers 304 when it has not changed.
#[utoipa::path(get, path = "/webhooks/endpoints/{id}", operation_id = "getWebhookEndpoint", tag = "webhooks", params(("id" = String, Path)), security(("bearer" = ["webhooks:manage"])),
    responses((status = 200, body = Envelope<EndpointView>, headers(("ETag" = String))), (status = 304), (status = 404, body = http_kit::ErrorBody)))]
pub async fn show(
    state: web::Data<Webhooks>,
    manager: Manager,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = manager.endpoint(&state, &id).await?;
    let tag = EndpointView::tag(&row);
    Ok(etag::unchanged(&req, &tag).unwrap_or_else(|| etag::tagged(StatusCode::OK, EndpointView::new(&row, None), tag)))
}

/// Changes an endpoint: the fields sent replace the stored ones.
#[utoipa::path(patch, path = "/webhooks/endpoints/{id}", operation_id = "updateWebhookEndpoint", tag = "webhooks", request_body = EndpointChange,
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read")), security(("bearer" = ["webhooks:manage"])),
    responses((status = 200, body = Envelope<EndpointView>, headers(("ETag" = String))), (status = 404, body = http_kit::ErrorBody), (status = 409, body = http_kit::ErrorBody),
              (status = 412, body = http_kit::ErrorBody), (status = 422, body = http_kit::ErrorBody)))]
pub async fn update(
    state: web::Data<Webhooks>,
    manager: Manager,
    req: HttpRequest,
    id: web::Path<String>,
    body: http_kit::Json<EndpointChange>,
) -> Result<HttpResponse, ApiError> {
    let current = manager.endpoint(&state, &id).await?;
    etag::if_match(&req, &EndpointView::tag(&current))?;
    let change = body.into_inner();
    let (current_types, current_headers) = (current.event_type_list(), current.extra_headers());
    let raw = RawFields {
        url: change.url.as_deref().unwrap_or(&current.url),
        description: change.description.as_deref().unwrap_or(&current.description),
        event_types: change.event_types.as_deref().unwrap_or(&current_types),
        rate_limit: change.rate_limit.unwrap_or(current.rate_limit.map(i64::from)),
        headers: change.headers.as_ref().unwrap_or(&current_headers),
    };
    let fields = EndpointFields::parse(raw, &state.guard).await?;
    let enabled = change.enabled.unwrap_or(current.enabled);
    let next = EndpointRow {
        url: fields.url,
        description: fields.description,
        event_types: fields.event_types,
        rate_limit: fields.rate_limit,
        headers: fields.headers,
        enabled,
        ordered: change.ordered.unwrap_or(current.ordered),
        disabled_reason: match (enabled, current.enabled) {
            (true, _) => None,
            (false, true) => Some("owner".to_owned()),
            (false, false) => current.disabled_reason.clone(),
        },
        failing_since: if enabled && !current.enabled {
            None
        } else {
            current.failing_since
        },
        version: current.version + 1,
        ..current.clone()
    };
    if !state.store.update_endpoint(next.clone(), current.version).await? {
        return Err(etag::lost_race(&req));
    }
    if next.enabled && !current.enabled {
        state.wake.both();
    }
    Ok(etag::tagged(
        StatusCode::OK,
        EndpointView::new(&next, None),
        EndpointView::tag(&next),
    ))
}

/// Deletes an endpoint and what was still to be delivered to it.
#[utoipa::path(delete, path = "/webhooks/endpoints/{id}", operation_id = "deleteWebhookEndpoint", tag = "webhooks", params(("id" = String, Path)), security(("bearer" = ["webhooks:manage"])),
    responses((status = 204), (status = 404, body = http_kit::ErrorBody)))]
pub async fn delete(
    state: web::Data<Webhooks>,
    manager: Manager,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = manager.endpoint(&state, &id).await?;
    state.store.delete_endpoint(row.id.clone()).await?;
    tracing::info!(endpoint.id = %row.id, "webhook endpoint deleted");
    Ok(HttpResponse::NoContent().finish())
}
