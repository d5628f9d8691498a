//! Applications: the list, the creation form, one application with its secret, deletion.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use maud::{Markup, html};

use super::{Section, csrf, error_for, field_error, form_status, page, secret_once, when};
use crate::api::{Application, FieldError};
use crate::sessions::Session;

pub const GRANTS: [(&str, &str); 3] = [
    (
        "authorization_code",
        "Authorization code (people sign in: \"Log in with\")",
    ),
    ("refresh_token", "Refresh tokens"),
    ("client_credentials", "Client credentials (server to server)"),
];

pub const SCOPES: [(&str, &str); 8] = [
    ("profile", "Profile: name, picture, registration date"),
    ("email", "E-mail address"),
    ("phone", "Phone number"),
    ("blog:read", "Read blog articles and comments"),
    ("blog:write", "Write articles and comments"),
    ("notifications", "Manage notification preferences, devices and inbox"),
    ("notifications:send", "Send notifications (provider services)"),
    ("webhooks:manage", "Manage webhook endpoints"),
];

pub fn list(session: &Session, may_create: bool, apps: &[Application]) -> HttpResponse {
    let body = html! {
        h1 { "Applications" }
        @if may_create {
            p { a.button href="/portal/applications/new" { "New application" } }
        } @else {
            p.notice { "Only registration platforms create applications. " a href="/portal/account" { "Ask to become one" } " on your Account page." }
        }
        @if apps.is_empty() {
            p.empty { "You have no applications yet." }
        } @else {
            ul.cards {
                @for app in apps {
                    li {
                        div {
                            a href=(format!("/portal/applications/{}", app.client_id)) { strong { (app.name) } }
                            p.meta { "app_id " code { (app.client_id) } " · created " (when(app.created_at)) }
                        }
                        div { @for grant in &app.grant_types { span.tag { (grant) } } }
                    }
                }
            }
        }
    };
    page(StatusCode::OK, session, Section::Applications, "Applications", body)
}

/// What the person typed, kept when the form comes back with errors.
#[derive(Default)]
pub struct Draft {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub public: bool,
}

fn described_by(id: &str, error: Option<&str>, hint: Option<&str>) -> String {
    let mut ids: Vec<String> = hint.map(str::to_owned).into_iter().collect();
    if error.is_some() {
        ids.push(format!("{id}-error"));
    }
    ids.join(" ")
}

fn checkboxes(name: &str, legend: &str, options: &[(&str, &str)], checked: &[String], error: Option<&str>) -> Markup {
    html! {
        fieldset aria-describedby=[error.map(|_| format!("{name}-error"))] {
            legend { (legend) }
            @for (value, label) in options {
                @let id = format!("{name}-{}", value.replace(':', "-"));
                label for=(id) {
                    input type="checkbox" id=(id) name=(name) value=(value) checked[checked.iter().any(|c| c == value)];
                    span { code { (value) } " — " (label) }
                }
            }
            (field_error(name, error))
        }
    }
}

pub fn new(session: &Session, draft: &Draft, errors: &[FieldError]) -> HttpResponse {
    let status = form_status(errors);
    let name_error = error_for(errors, "name");
    let uris_error = error_for(errors, "redirect_uris");
    let other: Vec<&FieldError> = errors
        .iter()
        .filter(|e| !["name", "redirect_uris", "grant_types", "scopes"].contains(&e.field.as_str()))
        .collect();
    let body = html! {
        h1 { "New application" }
        @if !errors.is_empty() {
            div.notice.error role="alert" {
                "The application was not created: correct the fields marked below."
                @for e in &other { br; (e.field) ": " (e.reason) }
            }
        }
        form.card method="post" action="/portal/applications" novalidate {
            (csrf(session))
            label for="name" { "Name" }
            input type="text" id="name" name="name" value=(draft.name) required maxlength="100"
                aria-invalid=[name_error.map(|_| "true")] aria-describedby=(described_by("name", name_error, Some("name-hint")));
            p.hint id="name-hint" { "Shown to people on the sign-in and consent pages." }
            (field_error("name", name_error))
            label for="redirect_uris" { "Redirect URIs" }
            textarea id="redirect_uris" name="redirect_uris" aria-invalid=[uris_error.map(|_| "true")]
                aria-describedby=(described_by("redirect_uris", uris_error, Some("redirect_uris-hint"))) {
                (draft.redirect_uris.join("\n"))
            }
            p.hint id="redirect_uris-hint" { "One per line; https, or http on loopback. Needed for the authorization code grant." }
            (field_error("redirect_uris", uris_error))
            (checkboxes("grant_types", "Grants", &GRANTS, &draft.grant_types, error_for(errors, "grant_types")))
            (checkboxes("scopes", "Scopes", &SCOPES, &draft.scopes, error_for(errors, "scopes")))
            fieldset {
                legend { "Client type" }
                label for="public" {
                    input type="checkbox" id="public" name="public" value="true" checked[draft.public];
                    span { "Public client (a browser or mobile app: no secret, PKCE required)" }
                }
            }
            div.actions {
                button type="submit" { "Create application" }
                a href="/portal/applications" { "Cancel" }
            }
        }
    };
    page(status, session, Section::Applications, "New application", body)
}

/// One application; `secret` is set on the one page that shows it (creation, rotation).
pub fn detail(session: &Session, app: &Application, secret: Option<&str>) -> HttpResponse {
    let body = html! {
        p { a href="/portal/applications" { "← Applications" } }
        h1 { (app.name) }
        @if let Some(secret) = secret {
            (secret_once("Client secret (app_secret)", "client-secret", secret))
        }
        section.card aria-labelledby="credentials" {
            h2 #credentials { "Credentials" }
            dl.facts {
                dt { "app_id / client_id" }
                dd.copyrow {
                    input type="text" id="client-id" value=(app.client_id) readonly aria-label="client_id";
                    button.secondary type="button" data-copy="client-id" { "Copy" }
                }
                dt { "Client type" }
                dd { @if app.public { "Public (no secret, PKCE)" } @else { "Confidential (has a secret)" } }
                @if let Some(until) = app.previous_secret_expires_at {
                    dt { "Previous secret" }
                    dd { "still accepted until " (when(until)) }
                }
                dt { "Created" }
                dd { (when(app.created_at)) }
            }
        }
        section.card aria-labelledby="settings" {
            h2 #settings { "Settings" }
            dl.facts {
                dt { "Grants" }
                dd { @for g in &app.grant_types { span.tag { (g) } } }
                dt { "Scopes" }
                dd { @if app.scopes.is_empty() { "none" } @for s in &app.scopes { span.tag { (s) } } }
                dt { "Redirect URIs" }
                dd { @if app.redirect_uris.is_empty() { "none" } @for u in &app.redirect_uris { code { (u) } br; } }
            }
        }
        section.card aria-labelledby="usage" {
            h2 #usage { "Usage" }
            p { "Requests, errors and latency per day and per API." }
            a.button.secondary href=(format!("/portal/applications/{}/usage", app.client_id)) { "See usage" }
        }
        section.card aria-labelledby="webhooks" {
            h2 #webhooks { "Webhooks" }
            p { "Receive platform events about the people who authorized this application." }
            a.button.secondary href=(format!("/portal/applications/{}/webhooks", app.client_id)) { "Manage webhooks" }
        }
        section.card aria-labelledby="services" {
            h2 #services { "Provider services" }
            p { "Send notifications (SMS, push, e-mail, in-app) to the people who authorized this application." }
            a.button.secondary href=(format!("/portal/applications/{}/services", app.client_id)) { "Manage provider services" }
        }
        @if !app.public {
            section.card aria-labelledby="rotate" {
                h2 #rotate { "Rotate the secret" }
                p { "A new secret is shown once. Keep the old one working for a while so every instance of your application can switch over." }
                form method="post" action=(format!("/portal/applications/{}/secret", app.client_id)) {
                    (csrf(session))
                    label for="overlap" { "The current secret keeps working" }
                    select id="overlap" name="overlap_seconds" {
                        option value="0" { "Not at all: it stops now" }
                        option value="3600" { "For 1 hour" }
                        option value="86400" selected { "For 24 hours" }
                        option value="604800" { "For 7 days" }
                    }
                    div.actions { button type="submit" { "Rotate the secret" } }
                }
            }
        }
        section.card aria-labelledby="danger" {
            h2 #danger { "Delete" }
            p { "Deleting the application ends every token it holds." }
            a.button.secondary href=(format!("/portal/applications/{}/delete", app.client_id)) { "Delete this application…" }
        }
    };
    page(StatusCode::OK, session, Section::Applications, &app.name, body)
}

pub fn confirm_delete(session: &Session, app: &Application) -> HttpResponse {
    let body = html! {
        h1 { "Delete " (app.name) "?" }
        p.notice.error { "Its tokens stop working at once, and people who authorized it will have to authorize a new application. This cannot be undone." }
        form method="post" action=(format!("/portal/applications/{}/delete", app.client_id)) {
            (csrf(session))
            div.actions {
                button.danger type="submit" { "Delete the application" }
                a href=(format!("/portal/applications/{}", app.client_id)) { "Keep it" }
            }
        }
    };
    page(
        StatusCode::OK,
        session,
        Section::Applications,
        "Delete application",
        body,
    )
}
