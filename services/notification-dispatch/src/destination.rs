//! A user as a provider's application may reach them, read in one visit to the database: whether
//! the platform knows them, what they authorized the application for, their preferences and
//! their contact points. Read when a request is accepted and again before each try.

use storage::{AnyConnection, StorageError};

use crate::domain::preferences::Preferences;
use crate::domain::routing::Contacts;
use crate::store;

pub struct Destination {
    pub known: bool,
    /// The consent's scopes (`Some("")` once withdrawn, `None` if never given).
    pub consent: Option<String>,
    pub prefs: Preferences,
    pub contacts: Contacts,
}

pub fn read(c: &mut AnyConnection, user: &str, client: &str) -> Result<Destination, StorageError> {
    let recipient = store::recipient(c, user)?;
    Ok(Destination {
        known: recipient.is_some(),
        consent: consents::scopes(c, user, client)?,
        prefs: store::preferences(c, user)?.map_or_else(Preferences::default, |(doc, _)| Preferences::stored(&doc)),
        contacts: Contacts {
            email: recipient.as_ref().and_then(|r| r.email.clone()),
            phone: recipient.and_then(|r| r.phone),
            devices: store::devices_of(c, user)?.into_iter().map(|d| d.token).collect(),
        },
    })
}
