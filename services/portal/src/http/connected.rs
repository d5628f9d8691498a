//! The applications the signed-in person authorized (auth's consents); revoking one withdraws
//! the consent, which ends its tokens and every webhook and notification about the person.

use actix_web::{HttpResponse, web};
use http_kit::Endpoint;

use crate::error::PortalError;
use crate::sessions::{Session, Submitted};
use crate::state::Portal;
use crate::views::connected as pages;

/// The applications the person authorized, and withdrawing them.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/portal/connected").get(list).build())
        .service(
            Endpoint::new("/portal/connected/{client_id}/revoke")
                .post(revoke)
                .build(),
        );
}

pub async fn list(portal: web::Data<Portal>, session: Session) -> Result<HttpResponse, PortalError> {
    let consents = portal.api.consents(&session.token).await?;
    Ok(pages::list(&session, &consents, None))
}

pub async fn revoke(
    portal: web::Data<Portal>,
    posted: Submitted,
    client_id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let session = posted.session;
    let consents = portal.api.consents(&session.token).await?;
    let name = consents
        .iter()
        .find(|c| c.client_id == *client_id)
        .map(|c| c.name.clone().unwrap_or_else(|| c.client_id.to_string()))
        .ok_or_else(|| PortalError::NotFound("You have not authorized this application.".to_owned()))?;
    portal.api.withdraw_consent(&session.token, &client_id).await?;
    tracing::info!(client.id = %client_id, user.id = %session.user_id, "consent withdrawn in the portal");
    let left: Vec<_> = consents.into_iter().filter(|c| c.client_id != *client_id).collect();
    Ok(pages::list(&session, &left, Some(&name)))
}
