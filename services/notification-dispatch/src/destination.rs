//! A user as a provider's application may reach them, read in one visit to the database: whether
//! the platform knows them, what they authorized the application for, their preferences and
//! their contact points. Read when a request is accepted and again before each try.

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

/// A destination from its lines (a line per device, at least one).
pub fn from_lines(lines: Vec<store::DestinationLine>) -> Destination {
    let first = lines.first();
    Destination {
        known: first.is_some_and(|l| l.known),
        consent: first.and_then(|l| l.scopes.clone()),
        prefs: first
            .and_then(|l| l.document.as_deref())
            .map_or_else(Preferences::default, Preferences::stored),
        contacts: Contacts {
            email: first.and_then(|l| l.email.clone()),
            phone: first.and_then(|l| l.phone.clone()),
            devices: lines.into_iter().filter_map(|l| l.token).collect(),
        },
    }
}
