//! An application's webhook endpoints: the list with the form to add one, one endpoint (its
//! settings, signing secret, test event, delivery log, resend, recover), and the catalogue of
//! event types with their schemas and examples.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use maud::{Markup, html};

use super::{Section, csrf, error_for, field_error, form_status, page, secret_shown, when};
use crate::api::{Application, Attempt, Endpoint, EventType, FieldError};
use crate::sessions::Session;

fn base(app: &Application) -> String {
    format!("/portal/applications/{}/webhooks", app.client_id)
}

/// The endpoint form's fields, for adding (no endpoint) or editing.
fn endpoint_fields(
    types: &[EventType],
    url: &str,
    description: &str,
    chosen: &[String],
    errors: &[FieldError],
) -> Markup {
    let url_error = error_for(errors, "url");
    let types_error = error_for(errors, "event_types");
    html! {
        label for="url" { "URL" }
        input type="url" id="url" name="url" value=(url) required aria-invalid=[url_error.map(|_| "true")]
            aria-describedby=(if url_error.is_some() { "url-hint url-error" } else { "url-hint" });
        p.hint id="url-hint" { "https, at a public address. Deliveries are signed to the Standard Webhooks spec." }
        (field_error("url", url_error))
        label for="description" { "Description" }
        input type="text" id="description" name="description" value=(description) maxlength="200";
        fieldset aria-describedby=[types_error.map(|_| "event_types-error")] {
            legend { "Event types (none checked: every type this application may receive)" }
            @for t in types {
                @let id = format!("type-{}", t.name.replace('.', "-"));
                label for=(id) {
                    input type="checkbox" id=(id) name="event_types" value=(t.name) checked[chosen.contains(&t.name)];
                    span { code { (t.name) } " — " (t.description) }
                }
            }
            (field_error("event_types", types_error))
        }
    }
}

fn other_errors(errors: &[FieldError]) -> Markup {
    let other: Vec<&FieldError> = errors
        .iter()
        .filter(|e| !["url", "event_types"].contains(&e.field.as_str()))
        .collect();
    html! {
        @if !errors.is_empty() {
            div.notice.error role="alert" {
                "Nothing was saved: correct the fields marked below."
                @for e in other { br; (e.field) ": " (e.reason) }
            }
        }
    }
}

pub struct Draft {
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
}

pub fn list(
    session: &Session,
    app: &Application,
    endpoints: &[Endpoint],
    types: &[EventType],
    draft: &Draft,
    errors: &[FieldError],
) -> HttpResponse {
    let status = form_status(errors);
    let body = html! {
        p { a href=(format!("/portal/applications/{}", app.client_id)) { "← " (app.name) } }
        h1 { "Webhooks of " (app.name) }
        p { "Platform events reach these endpoints, signed, only about people who authorized " (app.name) ". "
            a href="/portal/webhooks/event-types" { "Event types, schemas and examples" } }
        @if endpoints.is_empty() {
            p.empty { "No endpoint yet." }
        } @else {
            ul.cards {
                @for e in endpoints {
                    li {
                        div {
                            a href=(format!("{}/{}", base(app), e.id)) { code { (e.url) } }
                            p.meta {
                                @if e.enabled { "enabled" } @else { "disabled" @if let Some(r) = &e.disabled_reason { " (" (r) ")" } }
                                " · " @if e.event_types.is_empty() { "every event type" } @else { (e.event_types.join(", ")) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Add an endpoint" }
        (other_errors(errors))
        form.card method="post" action=(base(app)) novalidate {
            (csrf(session))
            (endpoint_fields(types, &draft.url, &draft.description, &draft.event_types, errors))
            div.actions { button type="submit" { "Add endpoint" } }
        }
    };
    page(status, session, Section::Applications, "Webhooks", body)
}

/// What one endpoint's page shows besides the endpoint: a secret revealed, a notice, errors.
#[derive(Default)]
pub struct Shown<'a> {
    pub secret: Option<&'a str>,
    pub notice: Option<&'a str>,
    pub errors: &'a [FieldError],
}

impl<'a> Shown<'a> {
    pub fn notice(notice: &'a str) -> Self {
        Self {
            notice: Some(notice),
            ..Self::default()
        }
    }

    pub fn errors(errors: &'a [FieldError]) -> Self {
        Self {
            errors,
            ..Self::default()
        }
    }

    pub fn secret(secret: &'a str, notice: Option<&'a str>) -> Self {
        Self {
            secret: Some(secret),
            notice,
            ..Self::default()
        }
    }
}

fn attempt_row(base: &str, session: &Session, a: &Attempt) -> Markup {
    html! {
        li {
            div {
                strong { @if a.succeeded { "Delivered" } @else { "Failed" } }
                " · " code { (a.event_type) } " · "
                @match a.status_code { Some(code) => { "HTTP " (code) }, None => { (a.error_kind.clone().unwrap_or_default()) } }
                " · " (a.duration_ms) " ms"
                p.meta { (when(a.attempted_at)) " · message " code { (a.message_id) } }
                @if !a.response_body.is_empty() {
                    details { summary { "Response body" } pre.mono { (a.response_body) } }
                }
            }
            form.actions method="post" action=(format!("{base}/messages/{}/resend", a.message_id)) {
                (csrf(session))
                button.secondary type="submit" aria-label=(format!("Resend message {}", a.message_id)) { "Resend" }
            }
        }
    }
}

pub fn endpoint(
    session: &Session,
    app: &Application,
    endpoint: &Endpoint,
    etag: &str,
    types: &[EventType],
    attempts: &[Attempt],
    shown: &Shown<'_>,
) -> HttpResponse {
    let here = format!("{}/{}", base(app), endpoint.id);
    let status = form_status(shown.errors);
    let body = html! {
        p { a href=(base(app)) { "← Webhooks of " (app.name) } }
        h1 { "Endpoint" }
        p { code { (endpoint.url) } }
        @if let Some(notice) = shown.notice { p.notice role="status" { (notice) } }
        @if let Some(secret) = shown.secret { (secret_shown("Signing secret", "signing-secret", secret, "Keep it secret: anyone with it can sign deliveries as the platform. Reveal it again here whenever you need it.")) }
        section.card aria-labelledby="state" {
            h2 #state { @if endpoint.enabled { "Enabled" } @else { "Disabled" } }
            @if let Some(reason) = &endpoint.disabled_reason { p { "Disabled because: " (reason) } }
            @if let Some(since) = endpoint.failing_since { p { "Every attempt has failed since " (when(since)) "." } }
            div.actions {
                form method="post" action=(format!("{here}/enabled")) {
                    (csrf(session))
                    input type="hidden" name="etag" value=(etag);
                    @if endpoint.enabled {
                        input type="hidden" name="enabled" value="false";
                        button.secondary type="submit" { "Disable" }
                    } @else {
                        input type="hidden" name="enabled" value="true";
                        button type="submit" { "Enable" }
                    }
                }
                form method="post" action=(format!("{here}/test")) {
                    (csrf(session))
                    button.secondary type="submit" { "Send a test event" }
                }
            }
        }
        section.card aria-labelledby="signing" {
            h2 #signing { "Signing secret" }
            p { "Verify each delivery's " code { "webhook-signature" } " with it (any Standard Webhooks library)." }
            div.actions {
                form method="post" action=(format!("{here}/secret")) {
                    (csrf(session))
                    button.secondary type="submit" { "Reveal the secret" }
                }
                form method="post" action=(format!("{here}/secret/rotate")) {
                    (csrf(session))
                    button.secondary type="submit" { "Rotate the secret" }
                }
            }
        }
        section.card aria-labelledby="log" {
            h2 #log { "Delivery log" }
            @if attempts.is_empty() {
                p.empty { "No attempt yet." }
            } @else {
                ul.cards { @for a in attempts { (attempt_row(&here, session, a)) } }
            }
            form method="post" action=(format!("{here}/recover")) {
                (csrf(session))
                label for="since" { "Send again every message that failed since (UTC)" }
                input type="datetime-local" id="since" name="since" required
                    aria-invalid=[error_for(shown.errors, "since").map(|_| "true")]
                    aria-describedby=[error_for(shown.errors, "since").map(|_| "since-error")];
                (field_error("since", error_for(shown.errors, "since")))
                div.actions { button.secondary type="submit" { "Recover failed messages" } }
            }
        }
        section.card aria-labelledby="edit" {
            h2 #edit { "Settings" }
            (other_errors(shown.errors))
            form method="post" action=(here.clone()) novalidate {
                (csrf(session))
                input type="hidden" name="etag" value=(etag);
                (endpoint_fields(types, &endpoint.url, &endpoint.description, &endpoint.event_types, shown.errors))
                div.actions { button type="submit" { "Save" } }
            }
        }
        section.card aria-labelledby="remove" {
            h2 #remove { "Delete" }
            form method="post" action=(format!("{here}/delete")) {
                (csrf(session))
                p { "Its pending messages are dropped." }
                button.danger type="submit" { "Delete this endpoint" }
            }
        }
    };
    page(status, session, Section::Applications, "Endpoint", body)
}

pub fn event_types(session: &Session, types: &[EventType]) -> HttpResponse {
    let body = html! {
        h1 { "Event types" }
        p { "What an endpoint can receive. An event about a person reaches an application only if that person authorized it for the scope shown." }
        @for t in types {
            section.card aria-labelledby=(format!("t-{}", t.name.replace('.', "-"))) {
                h2 id=(format!("t-{}", t.name.replace('.', "-"))) { code { (t.name) } }
                p { (t.description) }
                p.meta {
                    @match &t.scope { Some(s) => { "Needs scope " code { (s) } }, None => { "The application's own operational event" } }
                    @if t.requires_consent { " · only about people who authorized the application" }
                }
                details { summary { "Example" } pre.mono { (serde_json::to_string_pretty(&t.example).unwrap_or_default()) } }
                details { summary { "Schema of data" } pre.mono { (serde_json::to_string_pretty(&t.schema).unwrap_or_default()) } }
            }
        }
    };
    page(StatusCode::OK, session, Section::Applications, "Event types", body)
}
