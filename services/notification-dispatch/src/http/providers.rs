//! Service providers: an application becomes one, with seed 004's numeric `provider_id`.

use actix_web::web;
use http_kit::{ApiError, Envelope};
use ids::ClientId;
use rand::Rng;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{ProviderManager, numeric};
use crate::state::Dispatch;
use crate::store::ProviderRow;
use crate::views::ProviderView;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProvider {
    /// The application (client id) that becomes a provider; required with the owner's user
    /// token, the caller with the application's own token.
    #[schema(inline)]
    pub application_id: Option<ClientId>,
}

/// Ids stay within JavaScript's exact integers (2^53), so every client reads them whole.
fn new_provider_id() -> i64 {
    rand::thread_rng().gen_range(1..(1_i64 << 53))
}

/// Makes an application a service provider.
#[utoipa::path(post, path = "/providers", operation_id = "createProvider", tag = "services", request_body = NewProvider, security(("bearer" = ["notifications:send"])),
    responses((status = 201, body = Envelope<ProviderView>), (status = 401, body = http_kit::ErrorBody), (status = 403, body = http_kit::ErrorBody),
              (status = 404, description = "no such application", body = http_kit::ErrorBody),
              (status = 409, description = "the application is already a provider", body = http_kit::ErrorBody),
              (status = 422, body = http_kit::ErrorBody)))]
pub async fn create(
    state: web::Data<Dispatch>,
    manager: ProviderManager,
    body: http_kit::Json<NewProvider>,
) -> Result<Envelope<ProviderView>, ApiError> {
    let client = match (&manager, body.into_inner().application_id) {
        (ProviderManager::Application(own), Some(named)) if named != *own => {
            return Err(ApiError::forbidden(
                "an application's token makes only itself a provider",
            ));
        }
        (ProviderManager::Application(own), _) => own.clone(),
        (ProviderManager::Owner(_), Some(named)) => named,
        (ProviderManager::Owner(_), None) => {
            return Err(ApiError::invalid_field("application_id", "required with a user token"));
        }
    };
    if !manager.manages(&state, &client).await? {
        return Err(ApiError::not_found("no such application"));
    }
    let row = ProviderRow {
        provider_id: new_provider_id(),
        client_id: client,
        created_at: storage::now_millis(),
    };
    let existing = state.store.add_provider(row.clone()).await?;
    if let Some(id) = existing {
        return Err(ApiError::conflict(format!("this application is already provider {id}")));
    }
    tracing::info!(provider.id = row.provider_id, client.id = %row.client_id, "service provider registered");
    Ok(Envelope::created(ProviderView::from(&row)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProviderQuery {
    /// The application (client id) whose provider to find; the caller's own with its client token.
    #[param(inline)]
    pub application_id: Option<ClientId>,
}

/// The provider an application is, if any: `[]` or one provider.
#[utoipa::path(get, path = "/providers", operation_id = "findProviders", tag = "services", params(ProviderQuery), security(("bearer" = ["notifications:send"])),
    responses((status = 200, body = Envelope<Vec<ProviderView>>), (status = 401, body = http_kit::ErrorBody), (status = 422, body = http_kit::ErrorBody)))]
pub async fn find(
    state: web::Data<Dispatch>,
    manager: ProviderManager,
    query: web::Query<ProviderQuery>,
) -> Result<Envelope<Vec<ProviderView>>, ApiError> {
    let client = match (&manager, query.into_inner().application_id) {
        (ProviderManager::Application(own), None) => own.clone(),
        (_, Some(named)) => named,
        (ProviderManager::Owner(_), None) => {
            return Err(ApiError::invalid_field("application_id", "required with a user token"));
        }
    };
    if !manager.manages(&state, &client).await? {
        return Ok(Envelope::ok(Vec::new()));
    }
    let row = state.store.provider_of_client(client).await?;
    Ok(Envelope::ok(row.iter().map(ProviderView::from).collect()))
}

/// One provider the caller manages.
#[utoipa::path(get, path = "/providers/{provider_id}", operation_id = "getProvider", tag = "services", params(("provider_id" = i64, Path)), security(("bearer" = ["notifications:send"])),
    responses((status = 200, body = Envelope<ProviderView>), (status = 401, body = http_kit::ErrorBody), (status = 404, body = http_kit::ErrorBody)))]
pub async fn show(
    state: web::Data<Dispatch>,
    manager: ProviderManager,
    path: web::Path<String>,
) -> Result<Envelope<ProviderView>, ApiError> {
    let id = numeric::<i64>(&path, "provider")?;
    let row = manager.provider(&state, id).await?;
    Ok(Envelope::ok(ProviderView::from(&row)))
}
