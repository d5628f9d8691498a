//! The portal's pages, one file per section: signing in and out, applications, connected
//! applications. Everything is under `/portal`, the gateway's route.

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
    cfg.service(Endpoint::new("/portal").get(home).build())
        .service(Endpoint::new("/portal/").get(home).build())
        .service(Endpoint::new("/portal/assets/portal.css").get(css).build())
        .service(Endpoint::new("/portal/assets/portal.js").get(js).build())
        .service(Endpoint::new("/portal/sign-in").get(sign_in::start).build())
        .service(Endpoint::new("/portal/callback").get(sign_in::callback).build())
        .service(Endpoint::new("/portal/sign-out").post(sign_in::sign_out).build())
        .service(
            Endpoint::new("/portal/applications")
                .get(applications::list)
                .post(applications::create)
                .build(),
        )
        .service(Endpoint::new("/portal/applications/new").get(applications::new).build())
        .service(
            Endpoint::new("/portal/applications/{id}")
                .get(applications::show)
                .build(),
        )
        .service(
            Endpoint::new("/portal/applications/{id}/secret")
                .post(applications::rotate_secret)
                .build(),
        )
        .service(
            Endpoint::new("/portal/applications/{id}/delete")
                .get(applications::confirm_delete)
                .post(applications::delete)
                .build(),
        )
        .service(
            Endpoint::new("/portal/applications/{id}/webhooks")
                .get(webhooks::list)
                .post(webhooks::create)
                .build(),
        )
        .service(
            Endpoint::new("/portal/applications/{id}/webhooks/{endpoint}")
                .get(webhooks::show)
                .post(webhooks::change)
                .build(),
        )
        .service(
            Endpoint::new("/portal/applications/{id}/webhooks/{endpoint}/enabled")
                .post(webhooks::set_enabled)
                .build(),
        )
        .service(
            Endpoint::new("/portal/applications/{id}/webhooks/{endpoint}/secret")
                .post(webhooks::reveal_secret)
                .build(),
        )
        .service(
            Endpoint::new("/portal/applications/{id}/webhooks/{endpoint}/secret/rotate")
                .post(webhooks::rotate_secret)
                .build(),
        )
        .service(
            Endpoint::new("/portal/applications/{id}/webhooks/{endpoint}/test")
                .post(webhooks::send_test)
                .build(),
        )
        .service(
            Endpoint::new("/portal/applications/{id}/webhooks/{endpoint}/messages/{message}/resend")
                .post(webhooks::resend)
                .build(),
        )
        .service(
            Endpoint::new("/portal/applications/{id}/webhooks/{endpoint}/recover")
                .post(webhooks::recover)
                .build(),
        )
        .service(
            Endpoint::new("/portal/applications/{id}/webhooks/{endpoint}/delete")
                .post(webhooks::delete)
                .build(),
        )
        .service(
            Endpoint::new("/portal/applications/{id}/services")
                .get(services::list)
                .post(services::create)
                .build(),
        )
        .service(
            Endpoint::new("/portal/applications/{id}/services/provider")
                .post(services::become_provider)
                .build(),
        )
        .service(
            Endpoint::new("/portal/applications/{id}/services/{service}")
                .get(services::recent)
                .build(),
        )
        .service(
            Endpoint::new("/portal/applications/{id}/services/{service}/token")
                .post(services::rotate_token)
                .build(),
        )
        .service(
            Endpoint::new("/portal/webhooks/event-types")
                .get(webhooks::event_types)
                .build(),
        )
        .service(
            Endpoint::new("/portal/applications/{id}/usage")
                .get(usage::show)
                .build(),
        )
        .service(Endpoint::new("/portal/connected").get(connected::list).build())
        .service(Endpoint::new("/portal/notifications").get(notifications::inbox).build())
        .service(
            Endpoint::new("/portal/notifications/preferences")
                .get(notifications::preferences)
                .post(notifications::save)
                .build(),
        )
        .service(
            Endpoint::new("/portal/notifications/{id}/read")
                .post(notifications::mark_read)
                .build(),
        )
        .service(Endpoint::new("/portal/account").get(account::show).build())
        .service(Endpoint::new("/portal/account/role-request").post(account::ask).build())
        .service(
            Endpoint::new("/portal/admin/role-requests")
                .get(account::requests)
                .build(),
        )
        .service(
            Endpoint::new("/portal/admin/role-requests/{id}")
                .post(account::decide)
                .build(),
        )
        .service(
            Endpoint::new("/portal/connected/{client_id}/revoke")
                .post(connected::revoke)
                .build(),
        )
        // Last: any other path under /portal is a page that says so, not a JSON envelope.
        .service(web::resource("/portal/{rest:.*}").to(missing));
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
