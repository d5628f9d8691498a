//! Whether a notification may reach its user, and by which channels in turn: the channel asked
//! for first, then the others the service allows, keeping those the user left on and can be
//! reached by (push needs a device, SMS a phone number, e-mail an address). Checked when a
//! request is accepted and again before each try, since the user may change their mind.

use super::preferences::Preferences;
use super::{Channel, Kind, consent_allows};

/// How the user can be reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contacts {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub devices: Vec<String>,
}

impl Contacts {
    pub fn reaches(&self, channel: Channel) -> bool {
        match channel {
            Channel::Sms => self.phone.is_some(),
            Channel::Fcm => !self.devices.is_empty(),
            Channel::Email => self.email.is_some(),
            // SAT's provider is addressed by user id (the seed defines no SAT address); the
            // inbox is always there.
            Channel::Sat | Channel::Inapp => true,
        }
    }
}

/// Why a notification cannot reach its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoConsent,
    NoOptIn,
    Muted,
    OptedOut,
    NoContact,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Self::NoConsent => "no_consent",
            Self::NoOptIn => "no_opt_in",
            Self::Muted => "muted",
            Self::OptedOut => "opted_out",
            Self::NoContact => "no_contact",
        }
    }

    pub fn explain(self) -> &'static str {
        match self {
            Self::NoConsent => {
                "the user has not authorized this provider's application to notify them (scope notifications:send)"
            }
            Self::NoOptIn => "the user has not opted in to this provider's advertisements",
            Self::Muted => "the user muted this provider",
            Self::OptedOut => "the user turned off every channel this service may use",
            Self::NoContact => "the user cannot be reached on any channel this service may use",
        }
    }
}

/// Consent, mute and opt-in: whether this provider may send this kind to the user at all.
pub fn admits(kind: Kind, consent: Option<&str>, prefs: &Preferences, provider: i64) -> Result<(), Refusal> {
    if !consent.is_some_and(consent_allows) {
        return Err(Refusal::NoConsent);
    }
    if prefs.muted(provider) {
        return Err(Refusal::Muted);
    }
    if kind == Kind::Advertisement && !prefs.advertisements(provider) {
        return Err(Refusal::NoOptIn);
    }
    Ok(())
}

/// The channels to try in turn.
pub fn channels(
    requested: Channel,
    allowed: &[Channel],
    prefs: &Preferences,
    provider: i64,
    contacts: &Contacts,
) -> Result<Vec<Channel>, Refusal> {
    let order = std::iter::once(requested).chain(allowed.iter().copied().filter(|c| *c != requested));
    let wanted: Vec<Channel> = order.filter(|c| prefs.allows(provider, *c)).collect();
    if wanted.is_empty() {
        return Err(Refusal::OptedOut);
    }
    let reachable: Vec<Channel> = wanted.into_iter().filter(|c| contacts.reaches(*c)).collect();
    if reachable.is_empty() {
        return Err(Refusal::NoContact);
    }
    Ok(reachable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefs(json: serde_json::Value) -> Preferences {
        serde_json::from_value::<super::super::preferences::PreferencesDocument>(json)
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn push_falls_back_to_sms_without_a_device() {
        let contacts = Contacts {
            phone: Some("+33600000000".into()),
            ..Contacts::default()
        };
        let allowed = [Channel::Fcm, Channel::Sms];
        assert_eq!(
            channels(Channel::Fcm, &allowed, &Preferences::default(), 1, &contacts),
            Ok(vec![Channel::Sms])
        );
        let none = Contacts::default();
        assert_eq!(
            channels(Channel::Fcm, &allowed, &Preferences::default(), 1, &none),
            Err(Refusal::NoContact)
        );
        let off = prefs(serde_json::json!({"channels": {"FCM": false, "SMS": false}}));
        assert_eq!(
            channels(Channel::Fcm, &allowed, &off, 1, &contacts),
            Err(Refusal::OptedOut)
        );
    }

    #[test]
    fn consent_mute_and_opt_in_gate_a_provider() {
        let p = prefs(serde_json::json!({"providers": {"1": {"advertisements": true}, "2": {"muted": true}}}));
        assert_eq!(admits(Kind::Notification, None, &p, 1), Err(Refusal::NoConsent));
        assert_eq!(
            admits(Kind::Notification, Some("profile"), &p, 1),
            Err(Refusal::NoConsent)
        );
        assert_eq!(admits(Kind::Advertisement, Some("notifications:send"), &p, 1), Ok(()));
        assert_eq!(
            admits(Kind::Advertisement, Some("notifications:send"), &p, 3),
            Err(Refusal::NoOptIn)
        );
        assert_eq!(
            admits(Kind::Notification, Some("notifications:send"), &p, 2),
            Err(Refusal::Muted)
        );
    }
}
