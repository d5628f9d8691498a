//! The portal's pages, one file per section (signing in and out, applications, connected
//! applications, …), each registering its own routes; `routes` composes them. Everything is
//! under `/portal`, the gateway's route.

mod account;
mod applications;
mod connected;
mod notifications;
mod services;
mod sign_in;
mod usage;
mod webhooks;

use actix_web::{HttpResponse, web};
use http_kit::Endpoint;

use crate::views;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(front)
        .configure(sign_in::routes)
        .configure(applications::routes)
        .configure(webhooks::routes)
        .configure(services::routes)
        .configure(usage::routes)
        .configure(connected::routes)
        .configure(notifications::routes)
        .configure(account::routes)
        // Last: any other path under /portal is a page that says so, not a JSON envelope.
        .service(web::resource("/portal/{rest:.*}").to(missing));
}

/// The portal's home and its assets.
fn front(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/portal").get(home).build())
        .service(Endpoint::new("/portal/").get(home).build())
        .service(Endpoint::new("/portal/assets/portal.css").get(css).build())
        .service(Endpoint::new("/portal/assets/portal.js").get(js).build());
}

async fn missing() -> HttpResponse {
    views::error_page(
        actix_web::http::StatusCode::NOT_FOUND,
        "There is no such page in the portal.",
    )
}

async fn home() -> HttpResponse {
    see_other("/portal/applications")
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("location", location))
        .insert_header(("cache-control", "no-store"))
        .finish()
}

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("cache-control", "public, max-age=3600"))
        .body(body)
}

async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", views::STYLE)
}

async fn js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", views::SCRIPT)
}
