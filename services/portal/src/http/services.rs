//! An application's provider services, through notification-dispatch's provider API with the
//! owner's token.

use actix_web::{HttpResponse, web};
use http_kit::Endpoint;
use serde_json::{Value, json};

use crate::api::{FieldError, Outcome, Service};
use crate::error::PortalError;
use crate::sessions::{Session, Submitted};
use crate::state::Portal;
use crate::views::services::{self as pages, Draft};

/// An application's provider services.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        Endpoint::new("/portal/applications/{id}/services")
            .get(list)
            .post(create)
            .build(),
    )
    .service(
        Endpoint::new("/portal/applications/{id}/services/provider")
            .post(become_provider)
            .build(),
    )
    .service(
        Endpoint::new("/portal/applications/{id}/services/{service}")
            .get(recent)
            .build(),
    )
    .service(
        Endpoint::new("/portal/applications/{id}/services/{service}/token")
            .post(rotate_token)
            .build(),
    );
}

fn empty_draft() -> Draft {
    Draft {
        name: String::new(),
        kinds: vec!["notification".to_owned()],
        channels: vec!["INAPP".to_owned()],
        rate_limit: String::new(),
    }
}

async fn render(
    portal: &Portal,
    session: &Session,
    app: &str,
    created: Option<&Service>,
    draft: &Draft,
    errors: &[FieldError],
) -> Result<HttpResponse, PortalError> {
    let (app, provider) = tokio::try_join!(
        portal.api.application(&session.token, app),
        portal.api.provider_of(&session.token, app)
    )?;
    let Some(provider) = provider else {
        return Ok(pages::not_a_provider(session, &app));
    };
    let services = portal.api.services(&session.token, provider.provider_id).await?;
    Ok(pages::list(session, &app, &provider, &services, created, draft, errors))
}

pub async fn list(
    portal: web::Data<Portal>,
    session: Session,
    app: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    render(&portal, &session, &app, None, &empty_draft(), &[]).await
}

pub async fn become_provider(
    portal: web::Data<Portal>,
    posted: Submitted,
    app: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    portal.api.make_provider(&posted.session.token, &app).await?;
    render(&portal, &posted.session, &app, None, &empty_draft(), &[]).await
}

async fn provider_id(portal: &Portal, session: &Session, app: &str) -> Result<i64, PortalError> {
    portal
        .api
        .provider_of(&session.token, app)
        .await?
        .map(|p| p.provider_id)
        .ok_or_else(|| PortalError::NotFound("This application is not a service provider.".to_owned()))
}

/// The rate limit as typed: empty is none; anything else must be a number (the service says
/// which numbers).
fn rate_limit(raw: &str) -> Result<Value, FieldError> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    raw.parse::<i64>().map(Value::from).map_err(|_| FieldError {
        field: "rate_limit".to_owned(),
        reason: "a whole number of notifications per second".to_owned(),
    })
}

pub async fn create(
    portal: web::Data<Portal>,
    posted: Submitted,
    app: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let session = &posted.session;
    let draft = Draft {
        name: posted.fields.get("name").to_owned(),
        kinds: posted.fields.all("kinds"),
        channels: posted.fields.all("channels"),
        rate_limit: posted.fields.get("rate_limit").to_owned(),
    };
    let rate = match rate_limit(&draft.rate_limit) {
        Ok(rate) => rate,
        Err(error) => return render(&portal, session, &app, None, &draft, &[error]).await,
    };
    let provider = provider_id(&portal, session, &app).await?;
    let body = json!({ "name": draft.name, "kinds": draft.kinds, "channels": draft.channels, "rate_limit": rate });
    match portal.api.create_service(&session.token, provider, body).await? {
        Outcome::Done(service) => {
            tracing::info!(
                provider.id = provider,
                service.id = service.service_id,
                "service registered in the portal"
            );
            render(&portal, session, &app, Some(&service), &empty_draft(), &[]).await
        }
        Outcome::Invalid(errors) => render(&portal, session, &app, None, &draft, &errors).await,
    }
}

pub async fn rotate_token(
    portal: web::Data<Portal>,
    posted: Submitted,
    path: web::Path<(String, i32)>,
) -> Result<HttpResponse, PortalError> {
    let (app, service) = path.into_inner();
    let session = &posted.session;
    let provider = provider_id(&portal, session, &app).await?;
    let rotated = portal
        .api
        .rotate_service_token(&session.token, provider, service)
        .await?;
    render(&portal, session, &app, Some(&rotated), &empty_draft(), &[]).await
}

pub async fn recent(
    portal: web::Data<Portal>,
    session: Session,
    path: web::Path<(String, i32)>,
) -> Result<HttpResponse, PortalError> {
    let (app, service_id) = path.into_inner();
    let provider = provider_id(&portal, &session, &app).await?;
    let (application, services, notifications) = tokio::try_join!(
        portal.api.application(&session.token, &app),
        portal.api.services(&session.token, provider),
        portal.api.recent_notifications(&session.token, provider, service_id)
    )?;
    let service = services
        .iter()
        .find(|s| s.service_id == service_id)
        .ok_or_else(|| PortalError::NotFound("No such service.".to_owned()))?;
    Ok(pages::recent(&session, &application, service, &notifications))
}
