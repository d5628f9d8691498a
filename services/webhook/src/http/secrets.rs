//! An endpoint's signing secret: shown to its manager on request, rotated with an overlap in
//! which the previous secret keeps signing beside the new one (both signatures in the header).
//! Optionally an Ed25519 key pair too, for `v1a` signatures its receiver verifies with the
//! public key alone.

use actix_web::web;
use http_kit::{ApiError, Envelope};

use super::Manager;
use crate::domain::signing;
use crate::state::Webhooks;
use crate::store::{self, EndpointRow};
use crate::views::{PublicKeyView, SecretView};

fn view(state: &Webhooks, row: &EndpointRow, now: i64) -> Result<SecretView, ApiError> {
    Ok(SecretView {
        secret: state.sealer.open(&row.secret, &row.id).map_err(ApiError::internal)?,
        previous_valid_until: store::overlap_lasts(row.previous_until, now),
    })
}

/// The endpoint's signing secret.
#[utoipa::path(get, path = "/webhooks/endpoints/{id}/secret", operation_id = "getEndpointSecret", tag = "webhooks", params(("id" = String, Path)), security(("bearer" = ["webhooks:manage"])),
    responses((status = 200, body = Envelope<SecretView>), (status = 404, body = http_kit::ErrorBody)))]
pub async fn show(
    state: web::Data<Webhooks>,
    manager: Manager,
    id: web::Path<String>,
) -> Result<Envelope<SecretView>, ApiError> {
    let row = manager.endpoint(&state, &id).await?;
    Ok(Envelope::ok(view(&state, &row, storage::now_millis())?))
}

/// A new signing secret; the previous one keeps signing for `webhook.rotation_overlap`.
#[utoipa::path(post, path = "/webhooks/endpoints/{id}/secret/rotate", operation_id = "rotateEndpointSecret", tag = "webhooks", params(("id" = String, Path)), security(("bearer" = ["webhooks:manage"])),
    responses((status = 200, body = Envelope<SecretView>), (status = 404, body = http_kit::ErrorBody), (status = 409, body = http_kit::ErrorBody)))]
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
        secret: state
            .sealer
            .seal(&signing::generate(), &current.id)
            .map_err(ApiError::internal)?,
        version: current.version + 1,
        ..current.clone()
    };
    if !state.store.update_endpoint(next.clone(), current.version).await? {
        return Err(ApiError::conflict(
            "the endpoint changed while its secret was rotated; try again",
        ));
    }
    tracing::info!(endpoint.id = %next.id, "webhook signing secret rotated");
    Ok(Envelope::ok(view(&state, &next, now)?))
}

/// The endpoint's `v1a` public key (`whpk_…`), if it signs with one.
#[utoipa::path(get, path = "/webhooks/endpoints/{id}/public-key", operation_id = "getEndpointPublicKey", tag = "webhooks", params(("id" = String, Path)), security(("bearer" = ["webhooks:manage"])),
    responses((status = 200, body = Envelope<PublicKeyView>), (status = 404, description = "no such endpoint, or it has no key", body = http_kit::ErrorBody)))]
pub async fn public_key(
    state: web::Data<Webhooks>,
    manager: Manager,
    id: web::Path<String>,
) -> Result<Envelope<PublicKeyView>, ApiError> {
    let row = manager.endpoint(&state, &id).await?;
    let found = state.store.signing_key(row.id).await?;
    let found = found.ok_or_else(|| ApiError::not_found("this endpoint signs with no key pair"))?;
    Ok(Envelope::ok(PublicKeyView::of(&found, storage::now_millis())))
}

/// A new Ed25519 key pair: from now on every delivery is signed `v1a` beside `v1`. A pair made
/// before keeps signing beside the new one for `webhook.rotation_overlap`, as a rotated secret
/// does, so receivers can move to the new public key.
#[utoipa::path(post, path = "/webhooks/endpoints/{id}/public-key", operation_id = "createEndpointKeyPair", tag = "webhooks", params(("id" = String, Path)), security(("bearer" = ["webhooks:manage"])),
    responses((status = 201, body = Envelope<PublicKeyView>), (status = 404, body = http_kit::ErrorBody)))]
pub async fn make_key_pair(
    state: web::Data<Webhooks>,
    manager: Manager,
    id: web::Path<String>,
) -> Result<Envelope<PublicKeyView>, ApiError> {
    let row = manager.endpoint(&state, &id).await?;
    let pair = signing::generate_key_pair();
    let sealed = state.sealer.seal(&pair.secret, &row.id).map_err(ApiError::internal)?;
    let now = storage::now_millis();
    let overlap_until = now + state.settings.rotation_overlap.millis();
    let made = state
        .store
        .replace_signing_key(row.id, sealed, pair.public, now, overlap_until)
        .await?
        .ok_or_else(|| ApiError::not_found("this endpoint was deleted meanwhile"))?;
    tracing::info!(endpoint.id = %id, "webhook v1a key pair made");
    Ok(Envelope::created(PublicKeyView::of(&made, now)))
}

/// Stops `v1a` signatures: the key pair is deleted.
#[utoipa::path(delete, path = "/webhooks/endpoints/{id}/public-key", operation_id = "deleteEndpointKeyPair", tag = "webhooks", params(("id" = String, Path)), security(("bearer" = ["webhooks:manage"])),
    responses((status = 204), (status = 404, body = http_kit::ErrorBody)))]
pub async fn delete_key_pair(
    state: web::Data<Webhooks>,
    manager: Manager,
    id: web::Path<String>,
) -> Result<actix_web::HttpResponse, ApiError> {
    let row = manager.endpoint(&state, &id).await?;
    if state.store.delete_signing_key(row.id).await? {
        Ok(actix_web::HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found("this endpoint signs with no key pair"))
    }
}
