//! A provider's services: what each sends, on which channels, how fast; each has a service
//! token, shown once (on creation and rotation) and stored as a hash.

use actix_web::web;
use http_kit::{ApiError, Envelope};
use serde::Deserialize;
use utoipa::ToSchema;
use values::{FieldErrors, Invalid};

use super::{ProviderManager, numeric};
use crate::domain::{Channel, Kind, ServiceToken};
use crate::state::Dispatch;
use crate::store::ServiceRow;
use crate::views::{NotificationView, ServiceView, ServiceWithToken};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewService {
    pub name: String,
    /// What it sends: `notification`, `advertisement`, `qr_code`.
    pub kinds: Vec<String>,
    /// The channels it may use, in the order fallbacks take them (`["FCM", "SMS"]`).
    pub channels: Vec<String>,
    /// Accepted requests per second at most.
    pub rate_limit: Option<i64>,
}

struct ParsedService {
    name: String,
    kinds: Vec<Kind>,
    channels: Vec<Channel>,
    rate_limit: Option<i32>,
}

fn each<T>(names: &[String], field: &str, parse: impl Fn(&str) -> Option<T>, errors: &mut FieldErrors) -> Vec<T>
where
    T: PartialEq,
{
    let mut parsed = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match parse(name) {
            Some(v) if !parsed.contains(&v) => parsed.push(v),
            Some(_) => errors.push(Invalid::new(format!("{field}[{i}]"), "given twice")),
            None => errors.push(Invalid::new(format!("{field}[{i}]"), "unknown")),
        }
    }
    if names.is_empty() {
        errors.push(Invalid::new(field, "at least one"));
    }
    parsed
}

impl NewService {
    fn parse(&self) -> Result<ParsedService, FieldErrors> {
        let mut errors = FieldErrors::default();
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            errors.push(Invalid::new("name", "1 to 100 characters"));
        }
        let kinds = each(&self.kinds, "kinds", Kind::from_name, &mut errors);
        let channels = each(&self.channels, "channels", Channel::from_name, &mut errors);
        let rate_limit = match self.rate_limit {
            None => None,
            Some(n) => match i32::try_from(n).ok().filter(|n| (1..=100_000).contains(n)) {
                Some(n) => Some(n),
                None => {
                    errors.push(Invalid::new("rate_limit", "1 to 100000 requests per second"));
                    None
                }
            },
        };
        errors.check()?;
        Ok(ParsedService {
            name: name.to_owned(),
            kinds,
            channels,
            rate_limit,
        })
    }
}

/// Registers a service; the answer shows its `service_token`, once.
#[utoipa::path(post, path = "/providers/{provider_id}/services", operation_id = "createProviderService", tag = "services", params(("provider_id" = i64, Path)), request_body = NewService,
    security(("bearer" = ["notifications:send"])),
    responses((status = 201, body = Envelope<ServiceWithToken>), (status = 401, body = http_kit::ErrorBody), (status = 404, body = http_kit::ErrorBody),
              (status = 409, description = "too many services", body = http_kit::ErrorBody), (status = 422, description = "every bad field", body = http_kit::ErrorBody)))]
pub async fn create(
    state: web::Data<Dispatch>,
    manager: ProviderManager,
    path: web::Path<String>,
    body: http_kit::Json<NewService>,
) -> Result<Envelope<ServiceWithToken>, ApiError> {
    let provider = manager.provider(&state, numeric(&path, "provider")?).await?;
    let parsed = body.parse()?;
    let token = ServiceToken::generate();
    let limit = state.notifications.max_services_per_provider;
    let row = ServiceRow {
        provider_id: provider.provider_id,
        // The store numbers it.
        service_id: 0,
        name: parsed.name,
        kinds: parsed.kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(" "),
        channels: Channel::join(&parsed.channels),
        rate_limit: parsed.rate_limit,
        token_hash: token.hash(),
        created_at: storage::now_millis(),
    };
    let created = state.store.add_service(row, limit).await?;
    let row = created.ok_or_else(|| ApiError::conflict(format!("a provider has at most {limit} services")))?;
    tracing::info!(
        provider.id = row.provider_id,
        service.id = row.service_id,
        "service registered"
    );
    Ok(Envelope::created(ServiceWithToken {
        service: ServiceView::from(&row),
        service_token: token.reveal(),
    }))
}

/// A provider's services (without their tokens).
#[utoipa::path(get, path = "/providers/{provider_id}/services", operation_id = "listProviderServices", tag = "services", params(("provider_id" = i64, Path)), security(("bearer" = ["notifications:send"])),
    responses((status = 200, body = Envelope<Vec<ServiceView>>), (status = 401, body = http_kit::ErrorBody), (status = 404, body = http_kit::ErrorBody)))]
pub async fn list(
    state: web::Data<Dispatch>,
    manager: ProviderManager,
    path: web::Path<String>,
) -> Result<Envelope<Vec<ServiceView>>, ApiError> {
    let provider = manager.provider(&state, numeric(&path, "provider")?).await?;
    let rows = state.store.services_of(provider.provider_id).await?;
    Ok(Envelope::ok(rows.iter().map(ServiceView::from).collect()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecentQuery {
    /// How many (1 to 100; default 20).
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<i64>,
}

/// A service's latest notifications with their statuses, newest first.
#[utoipa::path(get, path = "/providers/{provider_id}/services/{service_id}/notifications", operation_id = "listServiceNotifications", tag = "services",
    params(("provider_id" = i64, Path), ("service_id" = i32, Path), RecentQuery), security(("bearer" = ["notifications:send"])),
    responses((status = 200, body = Envelope<Vec<NotificationView>>), (status = 401, body = http_kit::ErrorBody), (status = 404, body = http_kit::ErrorBody), (status = 422, body = http_kit::ErrorBody)))]
pub async fn recent(
    state: web::Data<Dispatch>,
    manager: ProviderManager,
    path: web::Path<(String, String)>,
    query: web::Query<RecentQuery>,
) -> Result<Envelope<Vec<NotificationView>>, ApiError> {
    let size = query.size.unwrap_or(20);
    if !(1..=100).contains(&size) {
        return Err(ApiError::invalid_field("size", "1 to 100"));
    }
    let (provider, service) = path.into_inner();
    let provider = manager.provider(&state, numeric(&provider, "provider")?).await?;
    let service_id = numeric::<i32>(&service, "service")?;
    let rows = state
        .store
        .recent_of_service(provider.provider_id, service_id, size)
        .await?
        .ok_or_else(|| ApiError::not_found("no such service"))?;
    Ok(Envelope::ok(
        rows.iter().map(|r| NotificationView::new(r, &[])).collect(),
    ))
}

/// A new `service_token`; the previous one stops working at once.
#[utoipa::path(post, path = "/providers/{provider_id}/services/{service_id}/token", operation_id = "rotateServiceToken", tag = "services",
    params(("provider_id" = i64, Path), ("service_id" = i32, Path)), security(("bearer" = ["notifications:send"])),
    responses((status = 200, body = Envelope<ServiceWithToken>), (status = 401, body = http_kit::ErrorBody), (status = 404, body = http_kit::ErrorBody)))]
pub async fn rotate(
    state: web::Data<Dispatch>,
    manager: ProviderManager,
    path: web::Path<(String, String)>,
) -> Result<Envelope<ServiceWithToken>, ApiError> {
    let (provider, service) = path.into_inner();
    let provider = manager.provider(&state, numeric(&provider, "provider")?).await?;
    let service_id = numeric::<i32>(&service, "service")?;
    let token = ServiceToken::generate();
    let row = state
        .store
        .rotate_service_token(provider.provider_id, service_id, token.hash())
        .await?
        .ok_or_else(|| ApiError::not_found("no such service"))?;
    tracing::info!(
        provider.id = row.provider_id,
        service.id = row.service_id,
        "service token rotated"
    );
    Ok(Envelope::ok(ServiceWithToken {
        service: ServiceView::from(&row),
        service_token: token.reveal(),
    }))
}
