//! An application's usage, from the gateways' reports the portal adds up; the application is
//! read through auth first, so only its owner (or an administrator) sees it.

use actix_web::{HttpResponse, web};
use http_kit::Endpoint;
use serde::Deserialize;

use crate::error::PortalError;
use crate::sessions::Session;
use crate::state::Portal;
use crate::views::usage::{self as pages, day_string};

/// An application's usage.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/portal/applications/{id}/usage").get(show).build());
}

#[derive(Deserialize)]
pub struct Window {
    days: Option<String>,
}

pub async fn show(
    portal: web::Data<Portal>,
    session: Session,
    app: web::Path<String>,
    query: web::Query<Window>,
) -> Result<HttpResponse, PortalError> {
    let window = match query.days.as_deref() {
        None | Some("7") => 7,
        Some("30") => 30,
        Some(_) => return Err(PortalError::NotFound("Usage is shown for 7 or 30 days.".to_owned())),
    };
    let app = portal.api.application(&session.token, &app).await?;
    let today = storage::now_millis() / 86_400_000;
    let rows = portal
        .store
        .usage_of(app.client_id.clone(), day_string(today - window + 1))
        .await?;
    Ok(pages::usage(
        &session,
        &app,
        window,
        &pages::summarize(&rows, today, window),
    ))
}
