//! "Connected applications": what the person authorized, and the way to take it back.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use maud::html;

use super::{Section, csrf, page, when};
use crate::api::Consent;
use crate::sessions::Session;

pub fn list(session: &Session, consents: &[Consent], revoked: Option<&str>) -> HttpResponse {
    let body = html! {
        h1 { "Connected applications" }
        p { "Applications you allowed to act for you. Revoking one ends its tokens at once; it learns nothing more about you, by API, webhook or notification." }
        @if let Some(name) = revoked {
            p.notice role="status" { "Access revoked for " strong { (name) } "." }
        }
        @if consents.is_empty() {
            p.empty { "You have not authorized any application." }
        } @else {
            ul.cards {
                @for consent in consents {
                    @let name = consent.name.clone().unwrap_or_else(|| consent.client_id.to_string());
                    li {
                        div {
                            strong { (name) }
                            p.meta { "since " (when(consent.granted_at)) }
                            div { @for s in &consent.scopes { span.tag { (s) } } }
                        }
                        form.actions method="post" action=(format!("/portal/connected/{}/revoke", consent.client_id)) {
                            (csrf(session))
                            button.secondary type="submit" aria-label=(format!("Revoke access of {name}")) { "Revoke access" }
                        }
                    }
                }
            }
        }
    };
    page(
        StatusCode::OK,
        session,
        Section::Connected,
        "Connected applications",
        body,
    )
}
