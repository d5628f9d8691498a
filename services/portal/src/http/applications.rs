//! A registration platform's applications (auth's `/applications`, seed 003's app_id and
//! app_secret): list, create, show, rotate the secret with an overlap, delete.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use http_kit::Endpoint;
use serde_json::json;

use super::see_other;
use crate::api::{FieldError, Outcome};
use crate::error::PortalError;
use crate::sessions::{Fields, Session, Submitted};
use crate::state::Portal;
use crate::views::applications::{self as pages, Draft};

/// The person's applications: listed, created, shown, their secret rotated, deleted.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/portal/applications").get(list).post(create).build())
        .service(Endpoint::new("/portal/applications/new").get(new).build())
        .service(Endpoint::new("/portal/applications/{id}").get(show).build())
        .service(
            Endpoint::new("/portal/applications/{id}/secret")
                .post(rotate_secret)
                .build(),
        )
        .service(
            Endpoint::new("/portal/applications/{id}/delete")
                .get(confirm_delete)
                .post(delete)
                .build(),
        );
}

const REGISTRATION_PLATFORM: &str = "registration_platform";

pub async fn list(portal: web::Data<Portal>, session: Session) -> Result<HttpResponse, PortalError> {
    let (me, apps) = tokio::try_join!(portal.api.me(&session.token), portal.api.applications(&session.token))?;
    Ok(pages::list(&session, is_platform(&me.roles), &apps))
}

/// Roles are read at each page, not from the session: an administrator may have just approved.
fn is_platform(roles: &[String]) -> bool {
    roles.iter().any(|r| r == REGISTRATION_PLATFORM || r == "admin")
}

async fn may_create(portal: &Portal, session: &Session) -> Result<(), PortalError> {
    if is_platform(&portal.api.me(&session.token).await?.roles) {
        Ok(())
    } else {
        Err(PortalError::Forbidden(
            "Only registration platforms create applications. Ask for the role on your Account page.".to_owned(),
        ))
    }
}

pub async fn new(portal: web::Data<Portal>, session: Session) -> Result<HttpResponse, PortalError> {
    may_create(&portal, &session).await?;
    let draft = Draft {
        grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
        scopes: vec!["profile".to_owned()],
        ..Draft::default()
    };
    Ok(pages::new(&session, &draft, &[]))
}

fn draft(fields: &Fields) -> Draft {
    Draft {
        name: fields.get("name").to_owned(),
        redirect_uris: fields.all("redirect_uris"),
        grant_types: fields.all("grant_types"),
        scopes: fields.all("scopes"),
        public: fields.get("public") == "true",
    }
}

pub async fn create(portal: web::Data<Portal>, posted: Submitted) -> Result<HttpResponse, PortalError> {
    let session = posted.session;
    may_create(&portal, &session).await?;
    let draft = draft(&posted.fields);
    if draft.grant_types.is_empty() {
        let missing = FieldError {
            field: "grant_types".to_owned(),
            reason: "Choose at least one grant.".to_owned(),
        };
        return Ok(pages::new(&session, &draft, &[missing]));
    }
    let body = json!({
        "name": draft.name,
        "redirect_uris": draft.redirect_uris,
        "grant_types": draft.grant_types,
        "scopes": draft.scopes,
        "public": draft.public,
    });
    match portal.api.create_application(&session.token, body).await? {
        Outcome::Done(app) => {
            tracing::info!(client.id = %app.client_id, user.id = %session.user_id, "application created in the portal");
            let secret = app.client_secret.clone();
            Ok(pages::detail(&session, &app, secret.as_deref()))
        }
        Outcome::Invalid(errors) => Ok(pages::new(&session, &draft, &errors)),
    }
}

pub async fn show(
    portal: web::Data<Portal>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let app = portal.api.application(&session.token, &id).await?;
    Ok(pages::detail(&session, &app, None))
}

pub async fn rotate_secret(
    portal: web::Data<Portal>,
    posted: Submitted,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let overlap = posted
        .fields
        .get("overlap_seconds")
        .parse::<i64>()
        .ok()
        .filter(|s| (0..=604_800).contains(s))
        .ok_or_else(|| PortalError::Refused {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: "Choose how long the current secret keeps working.".to_owned(),
        })?;
    let session = posted.session;
    let app = portal.api.rotate_secret(&session.token, &id, overlap).await?;
    tracing::info!(client.id = %app.client_id, overlap_seconds = overlap, "secret rotated in the portal");
    Ok(pages::detail(&session, &app, app.client_secret.as_deref()))
}

pub async fn confirm_delete(
    portal: web::Data<Portal>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let app = portal.api.application(&session.token, &id).await?;
    Ok(pages::confirm_delete(&session, &app))
}

pub async fn delete(
    portal: web::Data<Portal>,
    posted: Submitted,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    portal.api.delete_application(&posted.session.token, &id).await?;
    tracing::info!(client.id = %id, "application deleted in the portal");
    Ok(see_other("/portal/applications"))
}
