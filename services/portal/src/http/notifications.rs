//! The person's inbox and notification preferences.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::{HttpResponse, web};
use http_kit::Endpoint;

use super::see_other;
use crate::api::{Outcome, Preferences, ProviderChoice, QuietHours};
use crate::error::PortalError;
use crate::sessions::{Fields, Session, Submitted};
use crate::state::Portal;
use crate::views::notifications as pages;
use crate::views::services::CHANNELS;

/// The person's notifications and their preferences.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/portal/notifications").get(inbox).build())
        .service(
            Endpoint::new("/portal/notifications/preferences")
                .get(preferences)
                .post(save)
                .build(),
        )
        .service(Endpoint::new("/portal/notifications/{id}/read").post(mark_read).build());
}

pub async fn inbox(portal: web::Data<Portal>, session: Session) -> Result<HttpResponse, PortalError> {
    let items = portal.api.inbox(&session.token).await?;
    Ok(pages::inbox(&session, &items))
}

pub async fn mark_read(
    portal: web::Data<Portal>,
    posted: Submitted,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    portal.api.mark_read(&posted.session.token, &id).await?;
    Ok(see_other("/portal/notifications"))
}

/// The providers the form offers: those in the preferences and those that notified the person.
async fn providers(portal: &Portal, session: &Session, prefs: &Preferences) -> Result<Vec<String>, PortalError> {
    let inbox = portal.api.inbox(&session.token).await?;
    let mut ids: BTreeSet<String> = prefs.providers.keys().cloned().collect();
    // Provider 0 is the platform's own account mail, which no preference holds back.
    ids.extend(
        inbox
            .iter()
            .filter(|i| i.provider_id != 0)
            .map(|i| i.provider_id.to_string()),
    );
    Ok(ids.into_iter().collect())
}

pub async fn preferences(portal: web::Data<Portal>, session: Session) -> Result<HttpResponse, PortalError> {
    let (prefs, etag) = portal.api.preferences(&session.token).await?;
    let providers = providers(&portal, &session, &prefs).await?;
    Ok(pages::preferences(&session, &prefs, &etag, &providers, &[], None))
}

fn checked(fields: &Fields, name: &str) -> bool {
    fields.get(name) == "on"
}

/// The document the form describes: every channel named (on or off), each provider's choices.
fn document(fields: &Fields) -> Preferences {
    let channels = CHANNELS
        .iter()
        .map(|(c, _)| ((*c).to_owned(), checked(fields, &format!("channel_{c}"))))
        .collect();
    let providers = fields
        .all("provider")
        .into_iter()
        .map(|id| {
            let off: BTreeMap<String, bool> = CHANNELS
                .iter()
                .filter(|(c, _)| checked(fields, &format!("p_{id}_off_{c}")))
                .map(|(c, _)| ((*c).to_owned(), false))
                .collect();
            let choice = ProviderChoice {
                muted: checked(fields, &format!("p_{id}_muted")),
                advertisements: checked(fields, &format!("p_{id}_ads")),
                channels: off,
            };
            (id, choice)
        })
        .collect();
    Preferences {
        time_zone: fields.get("time_zone").to_owned(),
        quiet_hours: checked(fields, "quiet").then(|| QuietHours {
            start: fields.get("quiet_start").to_owned(),
            end: fields.get("quiet_end").to_owned(),
        }),
        channels,
        providers,
    }
}

pub async fn save(portal: web::Data<Portal>, posted: Submitted) -> Result<HttpResponse, PortalError> {
    let session = &posted.session;
    let wanted = document(&posted.fields);
    let etag = posted.fields.get("etag");
    match portal.api.replace_preferences(&session.token, &wanted, etag).await? {
        Outcome::Done(_) => {
            let (prefs, etag) = portal.api.preferences(&session.token).await?;
            let providers = providers(&portal, session, &prefs).await?;
            Ok(pages::preferences(
                session,
                &prefs,
                &etag,
                &providers,
                &[],
                Some("Saved."),
            ))
        }
        Outcome::Invalid(errors) => {
            let providers = providers(&portal, session, &wanted).await?;
            Ok(pages::preferences(session, &wanted, etag, &providers, &errors, None))
        }
    }
}
