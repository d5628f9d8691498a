//! The person's account (asking to become a registration platform) and, for administrators,
//! the requests waiting for an answer.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use maud::html;

use super::{Section, csrf, field_error, page, when};
use crate::api::{FieldError, RoleRequest};
use crate::sessions::Session;

fn status_words(status: &str) -> &'static str {
    match status {
        "pending" => "waiting for an administrator",
        "approved" => "approved",
        "refused" => "refused",
        _ => "unknown",
    }
}

pub fn account(
    session: &Session,
    roles: &[String],
    requests: &[RoleRequest],
    errors: &[FieldError],
    notice: Option<&str>,
) -> HttpResponse {
    let is_platform = roles.iter().any(|r| r == "registration_platform" || r == "admin");
    let waiting = requests.iter().any(|r| r.status == "pending");
    let reason_error = errors.iter().find(|e| e.field == "reason").map(|e| e.reason.as_str());
    let body = html! {
        h1 { "Account" }
        @if let Some(notice) = notice { p.notice role="status" { (notice) } }
        section.card aria-labelledby="who" {
            h2 #who { "Signed in as " (session.username) }
            dl.facts {
                dt { "Roles" }
                dd { @if roles.is_empty() { "none: you use applications" } @for r in roles { span.tag { (r) } } }
            }
        }
        section.card aria-labelledby="become" {
            h2 #become { "Become a registration platform" }
            @if is_platform {
                p { "Your account creates applications. " a href="/portal/applications" { "Go to your applications" } }
            } @else if waiting {
                p { "You asked to become a registration platform. An administrator will answer." }
            } @else {
                p { "Registration platforms create applications that people sign in to. Tell the administrators what you will build." }
                form method="post" action="/portal/account/role-request" {
                    (csrf(session))
                    label for="reason" { "What will you build?" }
                    textarea id="reason" name="reason" maxlength="500" aria-invalid=[reason_error.map(|_| "true")]
                        aria-describedby=(if reason_error.is_some() { "reason-hint reason-error" } else { "reason-hint" }) {}
                    p.hint id="reason-hint" { "At most 500 characters." }
                    (field_error("reason", reason_error))
                    div.actions { button type="submit" { "Ask to become a registration platform" } }
                }
            }
            @if !requests.is_empty() {
                h3 { "Your requests" }
                ul {
                    @for r in requests {
                        li { (when(r.created_at)) ": " strong { (status_words(&r.status)) }
                            @if let Some(at) = r.decided_at { " (" (when(at)) ")" } }
                    }
                }
            }
        }
    };
    page(StatusCode::OK, session, Section::Account, "Account", body)
}

pub fn requests(session: &Session, pending: &[RoleRequest], notice: Option<&str>) -> HttpResponse {
    let body = html! {
        h1 { "Role requests" }
        @if let Some(notice) = notice { p.notice role="status" { (notice) } }
        @if pending.is_empty() {
            p.empty { "No request is waiting." }
        } @else {
            ul.cards {
                @for r in pending {
                    @let who = r.username.clone().unwrap_or_default();
                    li {
                        div {
                            strong { (who) }
                            " asks to become a " (r.role.replace('_', " "))
                            p.meta { (when(r.created_at)) }
                            @if !r.reason.is_empty() { p { "“" (r.reason) "”" } }
                        }
                        form.actions method="post" action=(format!("/portal/admin/role-requests/{}", r.id)) {
                            (csrf(session))
                            button type="submit" name="decision" value="approve" aria-label=(format!("Approve {who}")) { "Approve" }
                            button.secondary type="submit" name="decision" value="refuse" aria-label=(format!("Refuse {who}")) { "Refuse" }
                        }
                    }
                }
            }
        }
    };
    page(StatusCode::OK, session, Section::Admin, "Role requests", body)
}
