//! An application's webhook endpoints, through the webhook service's API with the owner's
//! token: add, edit, enable or disable, reveal and rotate the signing secret, send a test
//! event, read the delivery log, resend a message, recover failed ones since a time.

use actix_web::{HttpResponse, web};
use http_kit::Endpoint;
use serde_json::json;

use super::see_other;
use crate::api::{Application, FieldError, Outcome};
use crate::error::PortalError;
use crate::sessions::{Session, Submitted};
use crate::state::Portal;
use crate::views::webhooks::{self as pages, Draft, Shown};

/// An application's webhook endpoints, and the event types they may ask for.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        Endpoint::new("/portal/applications/{id}/webhooks")
            .get(list)
            .post(create)
            .build(),
    )
    .service(
        Endpoint::new("/portal/applications/{id}/webhooks/{endpoint}")
            .get(show)
            .post(change)
            .build(),
    )
    .service(
        Endpoint::new("/portal/applications/{id}/webhooks/{endpoint}/enabled")
            .post(set_enabled)
            .build(),
    )
    .service(
        Endpoint::new("/portal/applications/{id}/webhooks/{endpoint}/secret")
            .post(reveal_secret)
            .build(),
    )
    .service(
        Endpoint::new("/portal/applications/{id}/webhooks/{endpoint}/secret/rotate")
            .post(rotate_secret)
            .build(),
    )
    .service(
        Endpoint::new("/portal/applications/{id}/webhooks/{endpoint}/test")
            .post(send_test)
            .build(),
    )
    .service(
        Endpoint::new("/portal/applications/{id}/webhooks/{endpoint}/messages/{message}/resend")
            .post(resend)
            .build(),
    )
    .service(
        Endpoint::new("/portal/applications/{id}/webhooks/{endpoint}/recover")
            .post(recover)
            .build(),
    )
    .service(
        Endpoint::new("/portal/applications/{id}/webhooks/{endpoint}/delete")
            .post(delete)
            .build(),
    )
    .service(Endpoint::new("/portal/webhooks/event-types").get(event_types).build());
}

type AppPath = web::Path<String>;
type EndpointPath = web::Path<(String, String)>;
type MessagePath = web::Path<(String, String, String)>;

pub async fn list(portal: web::Data<Portal>, session: Session, app: AppPath) -> Result<HttpResponse, PortalError> {
    let draft = Draft {
        url: String::new(),
        description: String::new(),
        event_types: Vec::new(),
    };
    render_list(&portal, &session, &app, &draft, &[]).await
}

async fn render_list(
    portal: &Portal,
    session: &Session,
    app: &str,
    draft: &Draft,
    errors: &[FieldError],
) -> Result<HttpResponse, PortalError> {
    let (app, endpoints, types) = tokio::try_join!(
        portal.api.application(&session.token, app),
        portal.api.endpoints(&session.token, app),
        portal.api.event_types()
    )?;
    Ok(pages::list(session, &app, &endpoints, &types, draft, errors))
}

fn draft(posted: &Submitted) -> Draft {
    Draft {
        url: posted.fields.get("url").to_owned(),
        description: posted.fields.get("description").to_owned(),
        event_types: posted.fields.all("event_types"),
    }
}

pub async fn create(portal: web::Data<Portal>, posted: Submitted, app: AppPath) -> Result<HttpResponse, PortalError> {
    let draft = draft(&posted);
    let body = json!({
        "application_id": app.as_str(),
        "url": draft.url,
        "description": draft.description,
        "event_types": draft.event_types,
    });
    match portal.api.create_endpoint(&posted.session.token, body).await? {
        Outcome::Done(endpoint) => Ok(see_other(&format!(
            "/portal/applications/{}/webhooks/{}",
            app.as_str(),
            endpoint.id
        ))),
        Outcome::Invalid(errors) => render_list(&portal, &posted.session, &app, &draft, &errors).await,
    }
}

/// The endpoint's page; 404 unless the endpoint is the named application's.
async fn render(
    portal: &Portal,
    session: &Session,
    (app, endpoint): (&str, &str),
    shown: &Shown<'_>,
) -> Result<HttpResponse, PortalError> {
    let (app, (endpoint, etag), types, attempts) = tokio::try_join!(
        portal.api.application(&session.token, app),
        portal.api.endpoint(&session.token, endpoint),
        portal.api.event_types(),
        portal.api.attempts(&session.token, endpoint)
    )?;
    owned(&app, &endpoint.application_id)?;
    Ok(pages::endpoint(
        session, &app, &endpoint, &etag, &types, &attempts, shown,
    ))
}

fn owned(app: &Application, endpoint_app: &str) -> Result<(), PortalError> {
    if app.client_id == endpoint_app {
        Ok(())
    } else {
        Err(PortalError::NotFound(
            "There is nothing here, or it is not yours.".to_owned(),
        ))
    }
}

/// Checks before a write that the endpoint is the application's, as the page's URL says.
async fn check(portal: &Portal, session: &Session, (app, endpoint): (&str, &str)) -> Result<(), PortalError> {
    let (app, (endpoint, _)) = tokio::try_join!(
        portal.api.application(&session.token, app),
        portal.api.endpoint(&session.token, endpoint)
    )?;
    owned(&app, &endpoint.application_id)
}

/// The endpoint's page again after a form, with what the form did.
async fn after(
    portal: &Portal,
    posted: &Submitted,
    ids: (&str, &str),
    shown: Shown<'_>,
) -> Result<HttpResponse, PortalError> {
    render(portal, &posted.session, ids, &shown).await
}

pub async fn show(
    portal: web::Data<Portal>,
    session: Session,
    path: EndpointPath,
) -> Result<HttpResponse, PortalError> {
    let (app, endpoint) = path.into_inner();
    render(&portal, &session, (&app, &endpoint), &Shown::default()).await
}

pub async fn change(
    portal: web::Data<Portal>,
    posted: Submitted,
    path: EndpointPath,
) -> Result<HttpResponse, PortalError> {
    let (app, endpoint) = path.into_inner();
    let ids = (app.as_str(), endpoint.as_str());
    check(&portal, &posted.session, ids).await?;
    let draft = draft(&posted);
    let body = json!({ "url": draft.url, "description": draft.description, "event_types": draft.event_types });
    let etag = posted.fields.get("etag");
    match portal
        .api
        .change_endpoint(&posted.session.token, &endpoint, body, etag)
        .await?
    {
        Outcome::Done(_) => after(&portal, &posted, ids, Shown::notice("Saved.")).await,
        Outcome::Invalid(errors) => after(&portal, &posted, ids, Shown::errors(&errors)).await,
    }
}

pub async fn set_enabled(
    portal: web::Data<Portal>,
    posted: Submitted,
    path: EndpointPath,
) -> Result<HttpResponse, PortalError> {
    let (app, endpoint) = path.into_inner();
    let ids = (app.as_str(), endpoint.as_str());
    check(&portal, &posted.session, ids).await?;
    let enabled = posted.fields.get("enabled") == "true";
    let change = json!({ "enabled": enabled });
    portal
        .api
        .change_endpoint(&posted.session.token, &endpoint, change, posted.fields.get("etag"))
        .await?;
    let notice = if enabled {
        "Enabled: pending messages resume."
    } else {
        "Disabled: messages wait until it is enabled again."
    };
    after(&portal, &posted, ids, Shown::notice(notice)).await
}

pub async fn reveal_secret(
    portal: web::Data<Portal>,
    posted: Submitted,
    path: EndpointPath,
) -> Result<HttpResponse, PortalError> {
    let (app, endpoint) = path.into_inner();
    let ids = (app.as_str(), endpoint.as_str());
    check(&portal, &posted.session, ids).await?;
    let secret = portal.api.endpoint_secret(&posted.session.token, &endpoint).await?;
    after(&portal, &posted, ids, Shown::secret(&secret, None)).await
}

pub async fn rotate_secret(
    portal: web::Data<Portal>,
    posted: Submitted,
    path: EndpointPath,
) -> Result<HttpResponse, PortalError> {
    let (app, endpoint) = path.into_inner();
    let ids = (app.as_str(), endpoint.as_str());
    check(&portal, &posted.session, ids).await?;
    let secret = portal
        .api
        .rotate_endpoint_secret(&posted.session.token, &endpoint)
        .await?;
    let notice = "A new secret signs from now on; deliveries also carry a signature with the previous one for a while.";
    after(&portal, &posted, ids, Shown::secret(&secret, Some(notice))).await
}

pub async fn send_test(
    portal: web::Data<Portal>,
    posted: Submitted,
    path: EndpointPath,
) -> Result<HttpResponse, PortalError> {
    let (app, endpoint) = path.into_inner();
    let ids = (app.as_str(), endpoint.as_str());
    check(&portal, &posted.session, ids).await?;
    portal.api.send_test(&posted.session.token, &endpoint).await?;
    let notice = "A webhook.test event is on its way; reload to see the attempt in the log.";
    after(&portal, &posted, ids, Shown::notice(notice)).await
}

pub async fn resend(
    portal: web::Data<Portal>,
    posted: Submitted,
    path: MessagePath,
) -> Result<HttpResponse, PortalError> {
    let (app, endpoint, message) = path.into_inner();
    let ids = (app.as_str(), endpoint.as_str());
    check(&portal, &posted.session, ids).await?;
    portal.api.resend(&posted.session.token, &endpoint, &message).await?;
    let notice = "The message is sent again; reload to see the attempt.";
    after(&portal, &posted, ids, Shown::notice(notice)).await
}

/// `datetime-local` ("2026-12-01T10:30") read as UTC, as the page says.
fn since(raw: &str) -> Option<String> {
    let parsed = chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    Some(parsed.and_utc().to_rfc3339())
}

pub async fn recover(
    portal: web::Data<Portal>,
    posted: Submitted,
    path: EndpointPath,
) -> Result<HttpResponse, PortalError> {
    let (app, endpoint) = path.into_inner();
    let ids = (app.as_str(), endpoint.as_str());
    check(&portal, &posted.session, ids).await?;
    let Some(since) = since(posted.fields.get("since")) else {
        let errors = [FieldError {
            field: "since".to_owned(),
            reason: "Give a date and time.".to_owned(),
        }];
        return after(&portal, &posted, ids, Shown::errors(&errors)).await;
    };
    match portal.api.recover(&posted.session.token, &endpoint, &since).await? {
        Outcome::Done(accepted) => {
            let notice = format!("{} failed message(s) sent again.", accepted.recovered.unwrap_or(0));
            after(&portal, &posted, ids, Shown::notice(&notice)).await
        }
        Outcome::Invalid(errors) => after(&portal, &posted, ids, Shown::errors(&errors)).await,
    }
}

pub async fn delete(
    portal: web::Data<Portal>,
    posted: Submitted,
    path: EndpointPath,
) -> Result<HttpResponse, PortalError> {
    let (app, endpoint) = path.into_inner();
    check(&portal, &posted.session, (&app, &endpoint)).await?;
    portal.api.delete_endpoint(&posted.session.token, &endpoint).await?;
    Ok(see_other(&format!("/portal/applications/{app}/webhooks")))
}

pub async fn event_types(portal: web::Data<Portal>, session: Session) -> Result<HttpResponse, PortalError> {
    let types = portal.api.event_types().await?;
    Ok(pages::event_types(&session, &types))
}

#[cfg(test)]
mod tests {
    use super::since;

    #[test]
    fn recover_since_is_read_as_utc() {
        assert_eq!(since("2026-12-01T10:30").as_deref(), Some("2026-12-01T10:30:00+00:00"));
        assert_eq!(since("yesterday"), None);
    }
}
