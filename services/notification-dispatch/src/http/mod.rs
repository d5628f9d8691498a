//! The notification API, one file per resource: providers and their services (for the
//! providers' developers), seed 004's `POST /Services` and its statuses, and each user's
//! preferences, devices and inbox. Who may call is declared by extractors: a [`ProviderManager`]
//! (the provider's application, or its owner), a [`Recipient`] (a user, for their own data).

pub mod devices;
pub mod inbox;
pub mod preferences;
pub mod provider_services;
pub mod providers;
pub mod send;

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, web};
use http_kit::{ApiError, Endpoint};
use identity::{ForUser, Requirement, Scoped};

use crate::state::Dispatch;
use crate::store::ProviderRow;

/// Service providers' scope: registering services and sending through them.
pub struct SendNotifications;

impl Requirement for SendNotifications {
    const SCOPES: &'static [&'static str] = &["notifications:send"];
}

/// A user's own notification settings, devices and inbox.
pub struct OwnNotifications;

impl Requirement for OwnNotifications {
    const SCOPES: &'static [&'static str] = &["notifications"];
}

/// Who manages a provider, from a token with `notifications:send`: the application itself (its
/// own client token), or the user who owns it.
pub enum ProviderManager {
    Application(ids::ClientId),
    Owner(ids::UserId),
}

impl FromRequest for ProviderManager {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let scoped = Scoped::<SendNotifications>::from_request(req, payload).into_inner();
        ready(scoped.map(|caller| match caller.user() {
            Ok(user) => Self::Owner(user.clone()),
            Err(_) => Self::Application(caller.0.client_id.clone()),
        }))
    }
}

impl ProviderManager {
    /// Whether this caller manages `client`, which the service must know.
    pub async fn manages(&self, state: &Dispatch, client: &str) -> Result<bool, ApiError> {
        let Some(owner) = state.store.owner_of(client.to_owned()).await? else {
            return Ok(false);
        };
        Ok(match self {
            Self::Application(own) => own == client,
            Self::Owner(user) => *user == owner,
        })
    }

    /// The provider `id` if this caller manages it; another's is reported missing.
    pub async fn provider(&self, state: &Dispatch, id: i64) -> Result<ProviderRow, ApiError> {
        match state.store.provider(id).await? {
            Some(row) if self.manages(state, &row.client_id).await? => Ok(row),
            _ => Err(ApiError::not_found("no such provider")),
        }
    }
}

/// A user, for their own preferences, devices and inbox (a token acting for a user, with the
/// `notifications` scope).
pub type Recipient = ForUser<OwnNotifications>;

/// `{id}` of a path that must be a positive integer (a provider or service id); anything else
/// names nothing.
pub fn numeric<T: std::str::FromStr + PartialOrd + Default>(text: &str, what: &str) -> Result<T, ApiError> {
    text.parse::<T>()
        .ok()
        .filter(|n| *n > T::default())
        .ok_or_else(|| ApiError::not_found(format!("no such {what}")))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        Endpoint::new("/providers")
            .post(providers::create)
            .get(providers::find)
            .build(),
    )
    .service(Endpoint::new("/providers/{provider_id}").get(providers::show).build())
    .service(
        Endpoint::new("/providers/{provider_id}/services")
            .post(provider_services::create)
            .get(provider_services::list)
            .build(),
    )
    .service(
        Endpoint::new("/providers/{provider_id}/services/{service_id}/notifications")
            .get(provider_services::recent)
            .build(),
    )
    .service(
        Endpoint::new("/providers/{provider_id}/services/{service_id}/token")
            .post(provider_services::rotate)
            .build(),
    )
    .service(Endpoint::new("/Services").post(send::send).build())
    .service(Endpoint::new("/Services/{id}").get(send::status).build())
    .service(
        Endpoint::new("/notifications/preferences")
            .get(preferences::show)
            .put(preferences::replace)
            .build(),
    )
    .service(
        Endpoint::new("/notifications/devices")
            .post(devices::register)
            .get(devices::list)
            .build(),
    )
    .service(
        Endpoint::new("/notifications/devices/{id}")
            .delete(devices::remove)
            .build(),
    )
    .service(Endpoint::new("/notifications/inbox").get(inbox::list).build())
    .service(
        Endpoint::new("/notifications/inbox/{id}/read")
            .post(inbox::mark_read)
            .build(),
    );
}
