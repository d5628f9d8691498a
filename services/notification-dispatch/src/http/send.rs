//! Seed 004's `POST /Services`: a provider's application asks for a notification to a user.
//! Checked in the seed's order of refusals: a body that does not parse (400, every field), a
//! provider or service token not the caller's (403), a service that does not offer what is
//! asked (400), a user who does not take it (403); then accepted (202): queued, with its
//! `notification.requested` event, in one transaction. A repeated `Idempotency-Key` (or `reference`) answers the first acceptance.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use cache::GcraPolicy;
use http_kit::{ApiError, Envelope};
use identity::Scoped;
use ids::ClientId;
use serde_json::Value;
use sha2::{Digest, Sha256};
use values::{FieldErrors, Invalid};

use super::SendNotifications;
use crate::destination::Destination;
use crate::domain::request::{self, Body, Content, Head, Limits};
use crate::domain::routing;
use crate::domain::{Channel, Kind, new_notification_id};
use crate::state::Dispatch;
use crate::store::{self, NotificationRow, ServiceRow};
use crate::views::{Accepted, NotificationView};

/// What the request's checks need, read in one visit to the database.
struct Facts {
    /// The client id of the application owning the provider, if there is one.
    provider_owner: Option<String>,
    service: Option<ServiceRow>,
    destination: Option<Destination>,
}

async fn facts(state: &Dispatch, head: &Head, user: Option<&str>, client: &ClientId) -> Result<Facts, ApiError> {
    let (provider_owner, service, destination) = state
        .store
        .request_facts(
            head.provider_id,
            head.service_id,
            user.map(str::to_owned),
            client.clone(),
        )
        .await?;
    Ok(Facts {
        provider_owner,
        service,
        destination,
    })
}

/// The service a request names, if the caller may use it.
fn authorize(facts: &mut Facts, client: &str, head: &Head) -> Result<ServiceRow, ApiError> {
    if facts.provider_owner.as_deref() != Some(client) {
        return Err(ApiError::forbidden("provider_id is not this application's").code("provider_not_yours"));
    }
    let service = facts
        .service
        .take()
        .ok_or_else(|| ApiError::not_found("this provider has no such service_id"))?;
    if !head.service_token.matches(&service.token_hash) {
        return Err(ApiError::forbidden("service_token is not this service's").code("invalid_service_token"));
    }
    Ok(service)
}

async fn within_rate(state: &Dispatch, service: &ServiceRow) -> Result<(), ApiError> {
    let Some(rate) = service.rate_limit else { return Ok(()) };
    let policy = GcraPolicy::per_second(f64::from(rate));
    let key = format!("service:{}:{}", service.provider_id, service.service_id);
    match state.rates.check(&key, &policy).await {
        Ok(decision) if !decision.allowed => Err(ApiError::too_many_requests(decision.retry_after)),
        _ => Ok(()),
    }
}

/// What the service does not offer, added to the parse errors.
fn offered(service: &ServiceRow, contents: &[Content], errors: &mut FieldErrors) {
    let (kinds, channels) = (Kind::list(&service.kinds), Channel::list(&service.channels));
    for content in contents {
        let path = format!("parameters.{}", content.kind.name());
        if !kinds.contains(&content.kind) {
            errors.push(Invalid::new(
                &path,
                format!(
                    "service_not_offered: this service sends {}",
                    service.kinds.replace(' ', ", ")
                ),
            ));
        } else if !channels.contains(&content.channel) {
            errors.push(Invalid::new(
                format!("{path}.channel"),
                format!("this service may use {}", service.channels.replace(' ', ", ")),
            ));
        }
    }
}

/// 403 when the user does not take this from this provider, naming why.
fn admitted(destination: &Destination, service: &ServiceRow, contents: &[Content]) -> Result<(), ApiError> {
    let allowed = Channel::list(&service.channels);
    for content in contents {
        routing::admits(
            content.kind,
            destination.consent.as_deref(),
            &destination.prefs,
            service.provider_id,
        )
        .and_then(|()| {
            routing::channels(
                content.channel,
                &allowed,
                &destination.prefs,
                service.provider_id,
                &destination.contacts,
            )
            .map(drop)
        })
        .map_err(|refusal| {
            ApiError::forbidden(format!("parameters.{}: {}", content.kind.name(), refusal.explain()))
                .code(refusal.code())
        })?;
    }
    Ok(())
}

fn idempotency_key(req: &HttpRequest, body: &Body) -> Result<Option<String>, ApiError> {
    let header = match req.headers().get("idempotency-key") {
        None => None,
        Some(value) => {
            let key = value
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= 128);
            Some(
                key.ok_or_else(|| ApiError::bad_request("Idempotency-Key must be 1 to 128 visible characters"))?
                    .to_owned(),
            )
        }
    };
    Ok(header.or_else(|| body.reference.clone()))
}

fn references(key: &str) -> Vec<String> {
    Kind::ALL.iter().map(|k| format!("{key}#{}", k.name())).collect()
}

fn rows(
    service: &ServiceRow,
    client: &ClientId,
    body: &Body,
    key: Option<&str>,
    fingerprint: &str,
) -> Vec<NotificationRow> {
    let now = storage::now_millis();
    body.contents
        .iter()
        .map(|content| NotificationRow {
            id: new_notification_id(),
            client_id: client.clone(),
            provider_id: service.provider_id,
            service_id: service.service_id,
            user_id: body.destination.clone(),
            kind: content.kind.name().to_owned(),
            title: content.title.clone(),
            message: content.message.clone(),
            link: content.link.clone(),
            picture: content.picture.as_ref().map(|p| p.base64.clone()),
            qr_code: content.qr_code.clone(),
            channel: content.channel.name().to_owned(),
            urgent: content.urgent,
            reference: key.map(|k| format!("{k}#{}", content.kind.name())),
            fingerprint: fingerprint.to_owned(),
            // The row is the queue: the dispatcher takes it from here.
            status: store::QUEUED.to_owned(),
            reason: None,
            channel_used: None,
            sent_by: None,
            external_id: None,
            attempts: 0,
            due_at: now,
            lease_until: 0,
            created_at: now,
            updated_at: now,
        })
        .collect()
}

fn accepted(rows: &[NotificationRow], replayed: bool) -> HttpResponse {
    let answer = Accepted::new(rows);
    let mut response = HttpResponse::build(StatusCode::ACCEPTED);
    if let Ok(location) = HeaderValue::from_str(&answer.status_url) {
        response.insert_header((header::LOCATION, location));
    }
    if replayed {
        response.insert_header(("idempotent-replayed", "true"));
    }
    response.json(Envelope::with_status(
        StatusCode::ACCEPTED,
        "accepted",
        "Accepted",
        answer,
    ))
}

/// A request seen before under the same key: its answer again, or 409 if it differs.
async fn replay(
    state: &Dispatch,
    client: &ClientId,
    key: &str,
    fingerprint: &str,
) -> Result<Option<HttpResponse>, ApiError> {
    let earlier = state.store.by_references(client.clone(), references(key)).await?;
    match earlier.first() {
        None => Ok(None),
        Some(first) if first.fingerprint == fingerprint => Ok(Some(accepted(&earlier, true))),
        Some(_) => Err(
            ApiError::conflict("this Idempotency-Key (or reference) was used for another request")
                .code("idempotency_key_reused"),
        ),
    }
}

/// Seed 004's services endpoint: notifies a user on behalf of a provider's service.
#[utoipa::path(post, path = "/Services", operation_id = "sendNotification", tag = "services", request_body = crate::views::ServicesRequestDoc,
    params(("Idempotency-Key" = Option<String>, Header, description = "A repeated key answers the first acceptance and sends nothing again")),
    security(("bearer" = ["notifications:send"])),
    responses((status = 202, body = Envelope<Accepted>, headers(("Location" = String))),
              (status = 400, description = "every bad field (limits of 32 and 166 characters, channels, picture, destination, `service_not_offered`)", body = http_kit::ErrorBody),
              (status = 401, body = http_kit::ErrorBody),
              (status = 403, description = "`provider_not_yours`, `invalid_service_token`, or the user does not take it: `no_consent`, `no_opt_in`, `muted`, `opted_out`, `no_contact`", body = http_kit::ErrorBody),
              (status = 404, description = "no such service", body = http_kit::ErrorBody),
              (status = 405, body = http_kit::ErrorBody),
              (status = 409, description = "an Idempotency-Key reused for another request", body = http_kit::ErrorBody),
              (status = 429, body = http_kit::ErrorBody)))]
pub async fn send(
    state: web::Data<Dispatch>,
    caller: Scoped<SendNotifications>,
    req: HttpRequest,
    json: http_kit::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let json = json.into_inner();
    let limits = Limits {
        picture_max_bytes: state.notifications.picture_max_bytes,
    };
    let request::Parsed { head, body, mut errors } = request::parse(&json, &limits);
    let Some(head) = head else {
        return Err(ApiError::bad_fields(errors));
    };
    let client = caller.0.client_id.clone();
    let user = body.as_ref().map(|b| b.destination.as_str());
    let mut facts = facts(&state, &head, user, &client).await?;
    let service = authorize(&mut facts, &client, &head)?;
    within_rate(&state, &service).await?;
    let (Some(body), Some(destination)) = (body, facts.destination) else {
        return Err(ApiError::bad_fields(errors));
    };
    offered(&service, &body.contents, &mut errors);
    if !destination.known {
        errors.push(Invalid::new("parameters.destination", "no such user"));
    }
    errors.check().map_err(ApiError::bad_fields)?;
    admitted(&destination, &service, &body.contents)?;
    let key = idempotency_key(&req, &body)?;
    let fingerprint = hex::encode(Sha256::digest(json.to_string().as_bytes()));
    if let Some(key) = &key
        && let Some(answer) = replay(&state, &client, key, &fingerprint).await?
    {
        return Ok(answer);
    }
    let rows = rows(&service, &client, &body, key.as_deref(), &fingerprint);
    match state.intake.accept(rows.clone()).await {
        // The dispatcher looks once they are committed.
        Ok(()) => state.wake.notify_one(),
        // The same key in a concurrent request: its answer (or 409).
        Err(storage::StorageError::Conflict(_)) if key.is_some() => {
            let key = key.unwrap_or_default();
            return replay(&state, &client, &key, &fingerprint)
                .await?
                .ok_or_else(|| ApiError::conflict("a request with this Idempotency-Key is being accepted"));
        }
        Err(e) => return Err(e.into()),
    }
    for row in &rows {
        state.metrics.accepted.with_label_values(&[row.kind.as_str()]).inc();
    }
    tracing::info!(
        provider.id = service.provider_id,
        service.id = service.service_id,
        notifications = rows.len(),
        "notification accepted"
    );
    Ok(accepted(&rows, false))
}

/// A notification's status and every try, for the provider's application that sent it.
#[utoipa::path(get, path = "/Services/{id}", operation_id = "getNotificationStatus", tag = "services", params(("id" = String, Path, description = "`ntf_…`")), security(("bearer" = ["notifications:send"])),
    responses((status = 200, body = Envelope<NotificationView>), (status = 401, body = http_kit::ErrorBody), (status = 404, body = http_kit::ErrorBody)))]
pub async fn status(
    state: web::Data<Dispatch>,
    caller: Scoped<SendNotifications>,
    path: web::Path<String>,
) -> Result<Envelope<NotificationView>, ApiError> {
    let found = state.store.notification_with_sends(path.into_inner()).await?;
    match found {
        Some((row, sends)) if row.client_id == caller.0.client_id => {
            Ok(Envelope::ok(NotificationView::new(&row, &sends)))
        }
        _ => Err(ApiError::not_found("no such notification")),
    }
}
