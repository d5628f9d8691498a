//! An application's provider services (seed 004): becoming a provider, registering services,
//! their `service_token` shown once and rotated, and each service's recent notifications.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use maud::{Markup, html};

use super::{Section, csrf, field_error, form_status, page, secret_once, when};
use crate::api::{Application, FieldError, Notification, Provider, Service};
use crate::sessions::Session;

pub const KINDS: [(&str, &str); 3] = [
    ("notification", "Notifications"),
    ("advertisement", "Advertisements (only to people who opted in)"),
    ("qr_code", "QR codes (tickets, coupons)"),
];

pub const CHANNELS: [(&str, &str); 5] = [
    ("INAPP", "In-app inbox"),
    ("SMS", "SMS"),
    ("FCM", "Push (FCM)"),
    ("EMAIL", "E-mail"),
    ("SAT", "SAT"),
];

fn base(app: &Application) -> String {
    format!("/portal/applications/{}/services", app.client_id)
}

pub struct Draft {
    pub name: String,
    pub kinds: Vec<String>,
    pub channels: Vec<String>,
    pub rate_limit: String,
}

fn errors_for(errors: &[FieldError], field: &str) -> Option<String> {
    let reasons: Vec<&str> = errors
        .iter()
        .filter(|e| e.field == field || e.field.starts_with(&format!("{field}[")))
        .map(|e| e.reason.as_str())
        .collect();
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

fn choices(name: &str, legend: &str, options: &[(&str, &str)], chosen: &[String], error: Option<&str>) -> Markup {
    html! {
        fieldset aria-describedby=[error.map(|_| format!("{name}-error"))] {
            legend { (legend) }
            @for (value, label) in options {
                @let id = format!("{name}-{value}");
                label for=(id) {
                    input type="checkbox" id=(id) name=(name) value=(value) checked[chosen.iter().any(|c| c == value)];
                    span { (label) }
                }
            }
            (field_error(name, error))
        }
    }
}

fn service_form(session: &Session, app: &Application, draft: &Draft, errors: &[FieldError]) -> Markup {
    let name_error = errors_for(errors, "name");
    let rate_error = errors_for(errors, "rate_limit");
    html! {
        form.card method="post" action=(base(app)) novalidate {
            (csrf(session))
            label for="name" { "Name" }
            input type="text" id="name" name="name" value=(draft.name) maxlength="100" required
                aria-invalid=[name_error.as_ref().map(|_| "true")] aria-describedby=[name_error.as_ref().map(|_| "name-error")];
            (field_error("name", name_error.as_deref()))
            (choices("kinds", "What it sends", &KINDS, &draft.kinds, errors_for(errors, "kinds").as_deref()))
            (choices("channels", "Channels, in the order fallbacks take them", &CHANNELS, &draft.channels, errors_for(errors, "channels").as_deref()))
            label for="rate_limit" { "Rate limit (notifications per second, empty: none)" }
            input type="text" inputmode="numeric" id="rate_limit" name="rate_limit" value=(draft.rate_limit)
                aria-invalid=[rate_error.as_ref().map(|_| "true")] aria-describedby=[rate_error.as_ref().map(|_| "rate_limit-error")];
            (field_error("rate_limit", rate_error.as_deref()))
            div.actions { button type="submit" { "Register the service" } }
        }
    }
}

pub fn not_a_provider(session: &Session, app: &Application) -> HttpResponse {
    let body = html! {
        p { a href=(format!("/portal/applications/{}", app.client_id)) { "← " (app.name) } }
        h1 { "Provider services of " (app.name) }
        p { "A service provider sends notifications (SMS, push, e-mail, in-app) through " code { "POST /Services" }
            " to people who authorized it for " code { "notifications:send" } "." }
        form method="post" action=(format!("{}/provider", base(app))) {
            (csrf(session))
            button type="submit" { "Make " (app.name) " a service provider" }
        }
    };
    page(
        StatusCode::OK,
        session,
        Section::Applications,
        "Provider services",
        body,
    )
}

/// The provider's services; `created` is a service just registered or rotated, with its token.
pub fn list(
    session: &Session,
    app: &Application,
    provider: &Provider,
    services: &[Service],
    created: Option<&Service>,
    draft: &Draft,
    errors: &[FieldError],
) -> HttpResponse {
    let status = form_status(errors);
    let body = html! {
        p { a href=(format!("/portal/applications/{}", app.client_id)) { "← " (app.name) } }
        h1 { "Provider services of " (app.name) }
        p { "provider_id " code id="provider-id" { (provider.provider_id) } }
        @if let Some(service) = created {
            p.notice role="status" { "Service " strong { (service.name) } " has service_id " code { (service.service_id) } "." }
            @if let Some(token) = &service.service_token { (secret_once("service_token", "service-token", token)) }
        }
        @if services.is_empty() {
            p.empty { "No service yet." }
        } @else {
            ul.cards {
                @for s in services {
                    li {
                        div {
                            a href=(format!("{}/{}", base(app), s.service_id)) { strong { (s.name) } }
                            p.meta { "service_id " code { (s.service_id) } " · " (s.kinds.join(", ")) " · " (s.channels.join(" → "))
                                @if let Some(rate) = s.rate_limit { " · " (rate) "/s" } }
                        }
                        form.actions method="post" action=(format!("{}/{}/token", base(app), s.service_id)) {
                            (csrf(session))
                            button.secondary type="submit" aria-label=(format!("Rotate token of {}", s.name)) { "Rotate token" }
                        }
                    }
                }
            }
        }
        h2 { "Register a service" }
        @if !errors.is_empty() { div.notice.error role="alert" { "The service was not registered: correct the fields marked below." } }
        (service_form(session, app, draft, errors))
    };
    page(status, session, Section::Applications, "Provider services", body)
}

pub fn recent(session: &Session, app: &Application, service: &Service, notifications: &[Notification]) -> HttpResponse {
    let body = html! {
        p { a href=(base(app)) { "← Provider services of " (app.name) } }
        h1 { (service.name) }
        p.meta { "service_id " code { (service.service_id) } " · created " (when(service.created_at)) }
        h2 { "Recent notifications" }
        @if notifications.is_empty() {
            p.empty { "Nothing sent yet." }
        } @else {
            ul.cards {
                @for n in notifications {
                    li {
                        div {
                            strong { (n.status) } " · " (n.kind) " · " (n.channel)
                            @if let Some(used) = &n.channel_used { @if used != &n.channel { " → " (used) } }
                            @if n.sandbox { " · " span.tag { "sandbox" } }
                            p.meta { (when(n.created_at)) " · to " code { (n.destination) } " · " code { (n.id) } }
                            @if let Some(reason) = &n.reason { p.meta { "Reason: " (reason) } }
                        }
                    }
                }
            }
        }
    };
    page(StatusCode::OK, session, Section::Applications, &service.name, body)
}
