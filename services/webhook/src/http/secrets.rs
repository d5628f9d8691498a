//! An endpoint's signing secret: shown to its manager on request, rotated with an overlap in
//! which the previous secret keeps signing beside the new one (both signatures in the header).

use actix_web::web;
use http_kit::{ApiError, Envelope};

use super::Manager;
use crate::domain::signing;
use crate::state::Webhooks;
use crate::store::{self, EndpointRow};
use crate::views::SecretView;

fn view(row: &EndpointRow, now: i64) -> SecretView {
    SecretView {
        secret: row.secret.clone(),
        previous_valid_until: row.previous_until.filter(|until| *until > now),
    }
}

/// The endpoint's signing secret.
#[utoipa::path(get, path = "/webhooks/endpoints/{id}/secret", tag = "webhooks", params(("id" = String, Path)), security(("bearer" = ["webhooks:manage"])),
    responses((status = 200, body = SecretView), (status = 404, body = http_kit::ErrorBody)))]
pub async fn show(
    state: web::Data<Webhooks>,
    manager: Manager,
    id: web::Path<String>,
) -> Result<Envelope<SecretView>, ApiError> {
    let row = manager.endpoint(&state, &id).await?;
    Ok(Envelope::ok(view(&row, storage::now_millis())))
}

/// A new signing secret; the previous one keeps signing for `webhook.rotation_overlap`.
#[utoipa::path(post, path = "/webhooks/endpoints/{id}/secret/rotate", tag = "webhooks", params(("id" = String, Path)), security(("bearer" = ["webhooks:manage"])),
    responses((status = 200, body = SecretView), (status = 404, body = http_kit::ErrorBody), (status = 409, body = http_kit::ErrorBody)))]
pub async fn rotate(
    state: web::Data<Webhooks>,
    manager: Manager,
    id: web::Path<String>,
) -> Result<Envelope<SecretView>, ApiError> {
    let current = manager.endpoint(&state, &id).await?;
    let now = storage::now_millis();
    let next = EndpointRow {
        previous_secret: Some(current.secret.clone()),
        previous_until: Some(now + state.settings.rotation_overlap.millis()),
        secret: signing::generate(),
        version: current.version + 1,
        ..current.clone()
    };
    let (stored, version) = (next.clone(), current.version);
    if !state
        .db
        .run(move |c| Ok(store::update_endpoint(c, &stored, version)?))
        .await?
    {
        return Err(ApiError::conflict(
            "the endpoint changed while its secret was rotated; try again",
        ));
    }
    tracing::info!(endpoint.id = %next.id, "webhook signing secret rotated");
    Ok(Envelope::ok(view(&next, now)))
}
