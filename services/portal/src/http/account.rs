//! The person's account: asking for the registration-platform role; administrators answer.

use actix_web::{HttpResponse, web};
use http_kit::Endpoint;

use crate::api::Outcome;
use crate::error::PortalError;
use crate::sessions::{Session, Submitted};
use crate::state::Portal;
use crate::views::account as pages;

/// The person's account and role requests; administrators decide them.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/portal/account").get(show).build())
        .service(Endpoint::new("/portal/account/role-request").post(ask).build())
        .service(Endpoint::new("/portal/admin/role-requests").get(requests).build())
        .service(Endpoint::new("/portal/admin/role-requests/{id}").post(decide).build());
}

pub async fn show(portal: web::Data<Portal>, session: Session) -> Result<HttpResponse, PortalError> {
    let (me, requests) = tokio::try_join!(
        portal.api.me(&session.token),
        portal.api.my_role_requests(&session.token)
    )?;
    Ok(pages::account(&session, &me.roles, &requests, &[], None))
}

pub async fn ask(portal: web::Data<Portal>, posted: Submitted) -> Result<HttpResponse, PortalError> {
    let session = posted.session;
    let outcome = portal.api.ask_role(&session.token, posted.fields.get("reason")).await?;
    let (me, requests) = tokio::try_join!(
        portal.api.me(&session.token),
        portal.api.my_role_requests(&session.token)
    )?;
    Ok(match outcome {
        Outcome::Done(_) => pages::account(
            &session,
            &me.roles,
            &requests,
            &[],
            Some("Your request was sent to the administrators."),
        ),
        Outcome::Invalid(errors) => pages::account(&session, &me.roles, &requests, &errors, None),
    })
}

pub async fn requests(portal: web::Data<Portal>, session: Session) -> Result<HttpResponse, PortalError> {
    let pending = portal.api.pending_role_requests(&session.token).await?;
    Ok(pages::requests(&session, &pending, None))
}

pub async fn decide(
    portal: web::Data<Portal>,
    posted: Submitted,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let session = posted.session;
    let decision = posted.fields.get("decision");
    let decided = portal.api.decide_role_request(&session.token, &id, decision).await?;
    let pending = portal.api.pending_role_requests(&session.token).await?;
    let notice = format!("Request {}.", decided.status);
    Ok(pages::requests(&session, &pending, Some(&notice)))
}
