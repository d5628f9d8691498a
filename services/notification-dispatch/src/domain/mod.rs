//! What a notification is, parsed once: its channel, its kind, the service token that lets a
//! provider use a service, the request (`request`), the user's choices (`preferences`), the
//! route a notification takes to the user (`routing`) and the queue accepted notifications
//! join (`queue`).

pub mod picture;
pub mod preferences;
pub mod qr;
pub mod queue;
pub mod request;
pub mod routing;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

/// How a notification travels. Seed 004 names SAT, SMS and FCM ("Notification Shipping
/// Code"); e-mail and the in-app inbox complete them. Each has a numeric code for clients
/// that send the seed's `int`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Channel {
    Sms,
    Fcm,
    Sat,
    Email,
    Inapp,
}

impl Channel {
    pub const ALL: [Self; 5] = [Self::Sms, Self::Fcm, Self::Sat, Self::Email, Self::Inapp];

    pub fn name(self) -> &'static str {
        match self {
            Self::Sms => "SMS",
            Self::Fcm => "FCM",
            Self::Sat => "SAT",
            Self::Email => "EMAIL",
            Self::Inapp => "INAPP",
        }
    }

    pub fn code(self) -> i64 {
        match self {
            Self::Sms => 1,
            Self::Fcm => 2,
            Self::Sat => 3,
            Self::Email => 4,
            Self::Inapp => 5,
        }
    }

    /// A name (any case; the seed's own `FCB` and the common `PUSH`, `MAIL` too).
    /// The names `from_name` takes (any case, surrounding spaces allowed).
    pub const NAME_PATTERN: &str = concat!(
        r"^[\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([sS][mM][sS]|[fF][cC][mMbB]|[pP][uU][sS][hH]|[sS][aA][tT]|[eE]-?[mM][aA][iI][lL]|[mM][aA][iI][lL]",
        r"|[iI][nN]-?[aA][pP][pP]|[iI][nN][bB][oO][xX])[\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    );

    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "SMS" => Some(Self::Sms),
            "FCM" | "FCB" | "PUSH" => Some(Self::Fcm),
            "SAT" => Some(Self::Sat),
            "EMAIL" | "E-MAIL" | "MAIL" => Some(Self::Email),
            "INAPP" | "IN-APP" | "INBOX" => Some(Self::Inapp),
            _ => None,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// A channel as JSON carries it: its name or its numeric code.
    pub fn from_json(value: &serde_json::Value) -> Option<Self> {
        match value {
            serde_json::Value::String(name) => Self::from_name(name),
            serde_json::Value::Number(n) => n.as_i64().and_then(Self::from_code),
            _ => None,
        }
    }

    /// A stored list (`SMS FCM`).
    pub fn list(stored: &str) -> Vec<Self> {
        stored.split_whitespace().filter_map(Self::from_name).collect()
    }

    pub fn join(channels: &[Self]) -> String {
        channels.iter().map(|c| c.name()).collect::<Vec<_>>().join(" ")
    }
}

/// What a service sends (seed 004's `parameters` members).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Notification,
    Advertisement,
    QrCode,
}

impl Kind {
    pub const ALL: [Self; 3] = [Self::Notification, Self::Advertisement, Self::QrCode];

    pub fn name(self) -> &'static str {
        match self {
            Self::Notification => "notification",
            Self::Advertisement => "advertisement",
            Self::QrCode => "qr_code",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn list(stored: &str) -> Vec<Self> {
        stored.split_whitespace().filter_map(Self::from_name).collect()
    }
}

/// A service token: a UUID shown once to the provider. Only its SHA-256 is stored; a UUID has
/// 122 random bits, so a fast hash is enough (nothing to brute-force).
pub struct ServiceToken(uuid::Uuid);

impl ServiceToken {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    pub fn parse(text: &str) -> Option<Self> {
        uuid::Uuid::parse_str(text.trim()).ok().map(Self)
    }

    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.hyphenated().to_string().as_bytes()))
    }

    /// Whether this is the token whose hash is `stored`, in constant time.
    pub fn matches(&self, stored: &str) -> bool {
        self.hash().as_bytes().ct_eq(stored.as_bytes()).into()
    }

    pub fn reveal(&self) -> String {
        self.0.hyphenated().to_string()
    }
}

/// A new notification id: time-ordered, so the queue and the log sort by acceptance.
pub fn new_notification_id() -> String {
    format!("ntf_{}", uuid::Uuid::now_v7().simple())
}

/// The platform's own messages to a person about their account (confirming an e-mail
/// address): provider 0, by e-mail only, needing no consent and passing quiet hours and
/// channel choices, as transactional mail does.
pub const PLATFORM_PROVIDER: i64 = 0;
pub fn platform_client() -> ids::ClientId {
    ids::literal!(ClientId, "platform")
}

/// The scope a user's consent must hold for a provider's application to notify them.
pub const CONSENT_SCOPE: &str = "notifications:send";

/// Whether a consent's scopes (space-separated) let the application notify the user.
pub fn consent_allows(scopes: &str) -> bool {
    scopes.split_whitespace().any(|s| s == CONSENT_SCOPE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_parse_from_names_and_codes() {
        assert_eq!(Channel::from_json(&serde_json::json!("sms")), Some(Channel::Sms));
        assert_eq!(Channel::from_json(&serde_json::json!("FCB")), Some(Channel::Fcm));
        assert_eq!(Channel::from_json(&serde_json::json!(3)), Some(Channel::Sat));
        assert_eq!(Channel::from_json(&serde_json::json!(9)), None);
        assert_eq!(Channel::from_json(&serde_json::json!("PIGEON")), None);
        for c in Channel::ALL {
            assert_eq!(Channel::from_code(c.code()), Some(c));
            assert_eq!(Channel::from_name(c.name()), Some(c));
        }
    }

    #[test]
    fn service_tokens_match_only_themselves() {
        let token = ServiceToken::generate();
        let stored = token.hash();
        assert!(ServiceToken::parse(&token.reveal()).unwrap().matches(&stored));
        assert!(!ServiceToken::generate().matches(&stored));
        assert!(ServiceToken::parse("not-a-uuid").is_none());
    }
}
