//! The person's notifications: the in-app inbox and their preferences (channels, quiet hours
//! in their time zone, and per provider: muted, advertisements, channels).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use maud::{Markup, html};

use super::services::CHANNELS;
use super::{Section, csrf, field_error, form_status, page, when};
use crate::api::{FieldError, InboxItem, Preferences};
use crate::sessions::Session;

pub fn inbox(session: &Session, items: &[InboxItem]) -> HttpResponse {
    let body = html! {
        h1 { "Notifications" }
        p { a href="/portal/notifications/preferences" { "Choose how and when you are notified" } }
        @if items.is_empty() {
            p.empty { "Your inbox is empty." }
        } @else {
            ul.cards {
                @for item in items {
                    li {
                        div {
                            strong { (item.title) } @if item.read_at.is_none() { " " span.tag { "new" } }
                            p { (item.message) }
                            @if let Some(link) = &item.link { p { a href=(link) rel="noopener noreferrer" { (link) } } }
                            p.meta {
                                @if item.provider_id == 0 { "from the platform" } @else { "provider " (item.provider_id) }
                                " · " (item.kind) " · " (when(item.created_at))
                                @if item.sandbox { " · sandbox stand-in for " (item.channel) } }
                        }
                        @if item.read_at.is_none() {
                            form.actions method="post" action=(format!("/portal/notifications/{}/read", item.id)) {
                                (csrf(session))
                                button.secondary type="submit" aria-label=(format!("Mark read: {}", item.title)) { "Mark read" }
                            }
                        }
                    }
                }
            }
        }
    };
    page(StatusCode::OK, session, Section::Notifications, "Notifications", body)
}

fn error_for<'a>(errors: &'a [FieldError], prefix: &str) -> Option<&'a str> {
    errors
        .iter()
        .find(|e| e.field.starts_with(prefix))
        .map(|e| e.reason.as_str())
}

fn channel_on(prefs: &Preferences, channel: &str) -> bool {
    prefs.channels.get(channel).copied().unwrap_or(true)
}

fn provider_block(id: &str, prefs: &Preferences) -> Markup {
    let choice = prefs.providers.get(id).cloned().unwrap_or_default();
    html! {
        fieldset {
            legend { "Provider " (id) }
            input type="hidden" name="provider" value=(id);
            label for=(format!("p-{id}-muted")) {
                input type="checkbox" id=(format!("p-{id}-muted")) name=(format!("p_{id}_muted")) value="on" checked[choice.muted];
                span { "Mute this provider" }
            }
            label for=(format!("p-{id}-ads")) {
                input type="checkbox" id=(format!("p-{id}-ads")) name=(format!("p_{id}_ads")) value="on" checked[choice.advertisements];
                span { "Accept its advertisements" }
            }
            @for (channel, label) in CHANNELS {
                @let off = choice.channels.get(channel) == Some(&false);
                label for=(format!("p-{id}-off-{channel}")) {
                    input type="checkbox" id=(format!("p-{id}-off-{channel}")) name=(format!("p_{id}_off_{channel}")) value="on" checked[off];
                    span { "No " (label) " from it" }
                }
            }
        }
    }
}

pub fn preferences(
    session: &Session,
    prefs: &Preferences,
    etag: &str,
    providers: &[String],
    errors: &[FieldError],
    notice: Option<&str>,
) -> HttpResponse {
    let status = form_status(errors);
    let zone_error = error_for(errors, "time_zone");
    let quiet_error = error_for(errors, "quiet_hours");
    let (start, end) = prefs
        .quiet_hours
        .as_ref()
        .map_or(("22:00", "07:00"), |q| (q.start.as_str(), q.end.as_str()));
    let body = html! {
        p { a href="/portal/notifications" { "← Notifications" } }
        h1 { "Notification preferences" }
        @if let Some(notice) = notice { p.notice role="status" { (notice) } }
        @if !errors.is_empty() {
            div.notice.error role="alert" { "Nothing was saved: correct the fields marked below."
                @for e in errors { br; (e.field) ": " (e.reason) } }
        }
        form.card method="post" action="/portal/notifications/preferences" novalidate {
            (csrf(session))
            input type="hidden" name="etag" value=(etag);
            fieldset {
                legend { "Channels" }
                @for (channel, label) in CHANNELS {
                    label for=(format!("channel-{channel}")) {
                        input type="checkbox" id=(format!("channel-{channel}")) name=(format!("channel_{channel}")) value="on" checked[channel_on(prefs, channel)];
                        span { (label) }
                    }
                }
            }
            label for="time_zone" { "Time zone" }
            input type="text" id="time_zone" name="time_zone" value=(prefs.time_zone) aria-invalid=[zone_error.map(|_| "true")]
                aria-describedby=(if zone_error.is_some() { "time_zone-hint time_zone-error" } else { "time_zone-hint" });
            p.hint id="time_zone-hint" { "An IANA name such as Europe/Paris or America/Bogota; quiet hours are in it." }
            (field_error("time_zone", zone_error))
            fieldset aria-describedby=[quiet_error.map(|_| "quiet_hours-error")] {
                legend { "Quiet hours (urgent notifications still pass)" }
                label for="quiet" {
                    input type="checkbox" id="quiet" name="quiet" value="on" checked[prefs.quiet_hours.is_some()];
                    span { "Hold notifications during quiet hours" }
                }
                label for="quiet_start" { "From" }
                input type="time" id="quiet_start" name="quiet_start" value=(start);
                label for="quiet_end" { "Until" }
                input type="time" id="quiet_end" name="quiet_end" value=(end);
                (field_error("quiet_hours", quiet_error))
            }
            @if !providers.is_empty() {
                h2 { "Providers that notified you" }
                @for id in providers { (provider_block(id, prefs)) }
            }
            div.actions { button type="submit" { "Save preferences" } }
        }
    };
    page(
        status,
        session,
        Section::Notifications,
        "Notification preferences",
        body,
    )
}
