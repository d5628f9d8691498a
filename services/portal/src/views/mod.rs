//! The pages, rendered on the server with maud (every value escaped by construction). They
//! work without JavaScript; `portal.js` only adds copy buttons.

pub mod account;
pub mod applications;
pub mod connected;
pub mod notifications;
pub mod services;
pub mod usage;
pub mod webhooks;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use maud::{DOCTYPE, Markup, html};

use crate::api::FieldError;
use crate::sessions::Session;

pub const STYLE: &str = include_str!("portal.css");
pub const SCRIPT: &str = include_str!("portal.js");

/// Which section of the navigation is current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Applications,
    Connected,
    Notifications,
    Account,
    Admin,
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width,initial-scale=1";
            title { (title) " · Developer portal" }
            link rel="stylesheet" href="/portal/assets/portal.css";
            script src="/portal/assets/portal.js" defer {}
        }
    }
}

fn nav_link(href: &str, label: &str, current: bool) -> Markup {
    html! {
        @if current { a href=(href) aria-current="page" { (label) } }
        @else { a href=(href) { (label) } }
    }
}

/// A page for a signed-in person: navigation, their name, sign out.
pub fn page(status: StatusCode, session: &Session, section: Section, title: &str, body: Markup) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/portal" { "Developer portal" }
                    nav aria-label="Main" {
                        (nav_link("/portal/applications", "Applications", section == Section::Applications))
                        (nav_link("/portal/connected", "Connected applications", section == Section::Connected))
                        (nav_link("/portal/notifications", "Notifications", section == Section::Notifications))
                        (nav_link("/portal/account", "Account", section == Section::Account))
                        @if session.is_admin() {
                            (nav_link("/portal/admin/role-requests", "Role requests", section == Section::Admin))
                        }
                    }
                    form.signout method="post" action="/portal/sign-out" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        span.who { (session.username) }
                        button.link type="submit" { "Sign out" }
                    }
                }
                main #main { (body) }
                footer { "Partner API platform" }
            }
        }
    };
    respond(status, markup)
}

/// A page without a session: errors, signed out.
pub fn bare(status: StatusCode, title: &str, body: Markup) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { a.brand href="/portal" { "Developer portal" } }
                main #main { (body) }
                footer { "Partner API platform" }
            }
        }
    };
    respond(status, markup)
}

fn respond(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        // Pages can show a secret once: never keep them.
        .insert_header(("cache-control", "no-store"))
        .insert_header(("x-frame-options", "DENY"))
        .insert_header(("referrer-policy", "same-origin"))
        .insert_header((
            "content-security-policy",
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .body(markup.into_string())
}

pub fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    bare(
        status,
        "Something went wrong",
        html! {
            h1 { "This did not work" }
            p.notice.error role="alert" { (message) }
            p { a href="/portal" { "Back to the portal" } }
        },
    )
}

pub fn signed_out() -> HttpResponse {
    bare(
        StatusCode::OK,
        "Signed out",
        html! {
            h1 { "You are signed out" }
            p { "Your session ended and its tokens were revoked." }
            p { a.button href="/portal/sign-in" { "Sign in again" } }
        },
    )
}

/// A moment in the person's reading: UTC, to the minute.
pub fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// A form's page: 200, or 422 when it comes back with errors.
pub fn form_status(errors: &[FieldError]) -> StatusCode {
    if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

/// The reason the platform gave for `field`, if it refused it.
pub fn error_for<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a str> {
    errors.iter().find(|e| e.field == field).map(|e| e.reason.as_str())
}

/// The hidden CSRF field every form carries.
pub fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A field's error, shown beside it and announced to screen readers.
pub fn field_error(id: &str, error: Option<&str>) -> Markup {
    html! {
        @if let Some(reason) = error {
            p.field-error id=(format!("{id}-error")) { (reason) }
        }
    }
}

/// A secret shown this once (the platform keeps only its hash), with a copy button.
pub fn secret_once(label: &str, id: &str, secret: &str) -> Markup {
    secret_shown(
        label,
        id,
        secret,
        "Store it now: it is shown only this once. The platform keeps only its hash.",
    )
}

/// A secret on the page, with a copy button and what to do with it.
pub fn secret_shown(label: &str, id: &str, secret: &str, hint: &str) -> Markup {
    html! {
        div.secret role="status" {
            label for=(id) { (label) }
            div.copyrow {
                input type="text" id=(id) value=(secret) readonly spellcheck="false" autocomplete="off";
                button.secondary type="button" data-copy=(id) { "Copy" }
            }
            p.hint { (hint) }
        }
    }
}
