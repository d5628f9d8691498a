//! The webhook API, one file per resource: the event-type catalogue (public), endpoints, their
//! signing secrets, and their messages (delivery log, test, resend, recover). Who may manage
//! an endpoint is declared by the [`Manager`] extractor.

pub mod endpoints;
pub mod event_types;
pub mod messages;
pub mod secrets;

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, web};
use http_kit::{ApiError, Endpoint};
use identity::{Requirement, Scoped};

use crate::state::Webhooks;
use crate::store::EndpointRow;

pub struct ManageWebhooks;

impl Requirement for ManageWebhooks {
    const SCOPES: &'static [&'static str] = &["webhooks:manage"];
}

/// Who manages webhooks, from a token with `webhooks:manage`: an application itself (its own
/// client token), or a user for the applications they own.
pub enum Manager {
    Application(ids::ClientId),
    Owner(ids::UserId),
}

impl FromRequest for Manager {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let scoped = Scoped::<ManageWebhooks>::from_request(req, payload);
        Box::pin(async move {
            let caller = scoped.await?;
            let identity = &caller.caller.0;
            Ok(match caller.user() {
                Ok(user) => Self::Owner(user.clone()),
                Err(_) => Self::Application(identity.client_id.clone()),
            })
        })
    }
}

impl Manager {
    /// The applications this caller manages.
    pub async fn applications(&self, state: &Webhooks) -> Result<Vec<String>, ApiError> {
        match self {
            Self::Application(client) => Ok(vec![client.to_string()]),
            Self::Owner(user) => Ok(state.store.applications_of(user.clone()).await?),
        }
    }

    /// Whether this caller manages `client`, which the service must know.
    pub async fn manages(&self, state: &Webhooks, client: &str) -> Result<bool, ApiError> {
        let Some((owner, _)) = state.store.application(client.to_owned()).await? else {
            return Ok(false);
        };
        Ok(match self {
            Self::Application(own) => own == client,
            Self::Owner(user) => *user == owner,
        })
    }

    /// The endpoint `id` if this caller manages it; another's is reported missing, so ids
    /// cannot be probed.
    pub async fn endpoint(&self, state: &Webhooks, id: &str) -> Result<EndpointRow, ApiError> {
        match state.store.endpoint(id.to_owned()).await? {
            Some(row) if self.manages(state, &row.client_id).await? => Ok(row),
            _ => Err(ApiError::not_found("no such endpoint")),
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/webhooks/event-types").get(event_types::list).build())
        .service(
            Endpoint::new("/webhooks/endpoints")
                .post(endpoints::create)
                .get(endpoints::list)
                .build(),
        )
        .service(
            Endpoint::new("/webhooks/endpoints/{id}")
                .get(endpoints::show)
                .patch(endpoints::update)
                .delete(endpoints::delete)
                .build(),
        )
        .service(
            Endpoint::new("/webhooks/endpoints/{id}/secret")
                .get(secrets::show)
                .build(),
        )
        .service(
            Endpoint::new("/webhooks/endpoints/{id}/public-key")
                .get(secrets::public_key)
                .post(secrets::make_key_pair)
                .delete(secrets::delete_key_pair)
                .build(),
        )
        .service(
            Endpoint::new("/webhooks/endpoints/{id}/secret/rotate")
                .post(secrets::rotate)
                .build(),
        )
        .service(
            Endpoint::new("/webhooks/endpoints/{id}/attempts")
                .get(messages::attempts)
                .build(),
        )
        .service(
            Endpoint::new("/webhooks/endpoints/{id}/test")
                .post(messages::test)
                .build(),
        )
        .service(
            Endpoint::new("/webhooks/endpoints/{id}/recover")
                .post(messages::recover)
                .build(),
        )
        .service(
            Endpoint::new("/webhooks/endpoints/{id}/messages/{message_id}/resend")
                .post(messages::resend)
                .build(),
        );
}
