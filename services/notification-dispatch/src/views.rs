//! Response shapes of the notification API, and the canonical `POST /Services` body for the
//! OpenAPI document (the handler reads the seed's other spellings too).

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{Channel, Kind};
use crate::store::{DeviceRow, InboxRow, NotificationRow, ProviderRow, SendRow, ServiceRow};

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    /// Seed 004's `provider_id`.
    pub provider_id: i64,
    /// The application (client id) that sends as this provider.
    pub application_id: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

impl From<&ProviderRow> for ProviderView {
    fn from(row: &ProviderRow) -> Self {
        Self {
            provider_id: row.provider_id,
            application_id: row.client_id.to_string(),
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceView {
    pub provider_id: i64,
    /// Seed 004's `service_id`.
    pub service_id: i32,
    pub name: String,
    pub kinds: Vec<Kind>,
    /// In the order fallbacks take them.
    pub channels: Vec<Channel>,
    pub rate_limit: Option<i32>,
    pub created_at: i64,
}

impl From<&ServiceRow> for ServiceView {
    fn from(row: &ServiceRow) -> Self {
        Self {
            provider_id: row.provider_id,
            service_id: row.service_id,
            name: row.name.clone(),
            kinds: Kind::list(&row.kinds),
            channels: Channel::list(&row.channels),
            rate_limit: row.rate_limit,
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceWithToken {
    #[serde(flatten)]
    pub service: ServiceView,
    /// Seed 004's `service_token` (a UUID), shown only now.
    pub service_token: String,
}

fn status_url(id: &str) -> String {
    format!("/Services/{id}")
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedPart {
    pub id: String,
    pub kind: Kind,
    pub status: String,
    pub status_url: String,
}

/// `POST /Services` accepted: one notification per member of `parameters`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// The first notification's id (`ntf_…`).
    pub id: String,
    pub status_url: String,
    pub notifications: Vec<AcceptedPart>,
}

impl Accepted {
    pub fn new(rows: &[NotificationRow]) -> Self {
        let parts: Vec<AcceptedPart> = rows
            .iter()
            .map(|r| AcceptedPart {
                id: r.id.clone(),
                kind: Kind::from_name(&r.kind).unwrap_or(Kind::Notification),
                status: r.status.clone(),
                status_url: status_url(&r.id),
            })
            .collect();
        let id = parts.first().map(|p| p.id.clone()).unwrap_or_default();
        Self {
            status_url: status_url(&id),
            id,
            notifications: parts,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SendView {
    pub channel: String,
    /// The channel provider tried (`sandbox-sms`, `smtp-primary`, …).
    pub provider: String,
    pub attempted_at: i64,
    pub duration_ms: i64,
    /// `sent`, `recorded` (sandbox), `failed`, `rejected`, `unreachable`.
    pub outcome: String,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: String,
    pub provider_id: i64,
    pub service_id: i32,
    pub destination: String,
    pub kind: Kind,
    /// The channel asked for.
    pub channel: String,
    /// `accepted`, `queued`, `sent`, `delivered` or `failed`.
    pub status: String,
    /// Why it failed (`no_consent`, `retries_exhausted: …`), or why it waits (`quiet_hours`).
    pub reason: Option<String>,
    /// The channel it went through, after any fallback.
    pub channel_used: Option<String>,
    pub sent_by: Option<String>,
    /// Whether a sandbox recorded it instead of sending it.
    pub sandbox: bool,
    pub attempts: i32,
    /// When it is tried next, while queued.
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub sends: Vec<SendView>,
}

impl NotificationView {
    pub fn new(row: &NotificationRow, sends: &[SendRow]) -> Self {
        Self {
            id: row.id.clone(),
            provider_id: row.provider_id,
            service_id: row.service_id,
            destination: row.user_id.to_string(),
            kind: Kind::from_name(&row.kind).unwrap_or(Kind::Notification),
            channel: row.channel.clone(),
            status: row.status.clone(),
            reason: row.reason.clone(),
            channel_used: row.channel_used.clone(),
            sent_by: row.sent_by.clone(),
            sandbox: sends.iter().any(|s| s.outcome == "recorded"),
            attempts: row.attempts,
            next_attempt_at: (row.status == crate::store::QUEUED).then_some(row.due_at),
            created_at: row.created_at,
            updated_at: row.updated_at,
            sends: sends
                .iter()
                .map(|s| SendView {
                    channel: s.channel.clone(),
                    provider: s.provider.clone(),
                    attempted_at: s.attempted_at,
                    duration_ms: s.duration_ms,
                    outcome: s.outcome.clone(),
                    error: s.error.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    pub id: String,
    pub platform: String,
    /// The app that registered it.
    pub application_id: String,
    pub created_at: i64,
}

impl From<&DeviceRow> for DeviceView {
    fn from(row: &DeviceRow) -> Self {
        Self {
            id: row.id.clone(),
            platform: row.platform.clone(),
            application_id: row.client_id.to_string(),
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InboxView {
    pub id: String,
    pub notification_id: String,
    pub provider_id: i64,
    pub kind: Kind,
    /// `INAPP`, or the channel a sandbox provider stood in for.
    pub channel: String,
    /// Recorded by a sandbox provider: this is what would have been sent on `channel`.
    pub sandbox: bool,
    pub title: String,
    pub message: String,
    pub link: Option<String>,
    /// Base64 PNG or JPEG.
    pub picture: Option<String>,
    /// A ticket's or coupon's text (render it as a QR code).
    pub qr_code: Option<String>,
    pub created_at: i64,
    pub read_at: Option<i64>,
}

impl From<&InboxRow> for InboxView {
    fn from(row: &InboxRow) -> Self {
        Self {
            id: row.id.clone(),
            notification_id: row.notification_id.clone(),
            provider_id: row.provider_id,
            kind: Kind::from_name(&row.kind).unwrap_or(Kind::Notification),
            channel: row.channel.clone(),
            sandbox: row.sandbox,
            title: row.title.clone(),
            message: row.message.clone(),
            link: row.link.clone(),
            picture: row.picture.clone(),
            qr_code: row.qr_code.clone(),
            created_at: row.created_at,
            read_at: row.read_at,
        }
    }
}

/// One thing to send, canonically spelled (the seed's `Tittle`/`titulo`/`Titre`,
/// `mensaje`, `Cannel`/`canal` are read too, without case).
#[derive(Debug, Serialize, ToSchema)]
pub struct ContentDoc {
    #[schema(example = "Clinique Dr. Nano. Turno", max_length = 32)]
    pub title: String,
    #[schema(example = "Ophtalmologiste lundi 29-10 à 9:15", max_length = 166)]
    pub message: String,
    /// `SMS` (1), `FCM` (2), `SAT` (3: a signed HTTP provider; the seed leaves it undefined),
    /// `EMAIL` (4), `INAPP` (5): the name or the code.
    #[schema(value_type = String, example = "SMS")]
    pub channel: serde_json::Value,
    /// An http(s) URL.
    pub link: Option<String>,
    /// Advertisements only: base64 of a PNG or JPEG.
    pub picture: Option<String>,
    /// Notifications only: passes the user's quiet hours.
    pub urgent: Option<bool>,
    /// QR codes only: the ticket's or coupon's text.
    pub data: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[allow(non_snake_case)]
pub struct ParametersDoc {
    /// The user id to notify.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"[^\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub destination: String,
    pub notification: Option<ContentDoc>,
    pub advertisement: Option<ContentDoc>,
    /// A ticket or coupon, sent as a QR image with the message.
    pub qr_code: Option<ContentDoc>,
    /// Not offered: the seed does not define micro-payments (400 `service_not_offered`).
    pub microPayment: Option<serde_json::Value>,
}

/// Seed 004's `POST /Services` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServicesRequestDoc {
    pub provider_id: i64,
    /// The service's token.
    #[schema(format = Uuid)]
    pub service_token: String,
    pub service_id: i32,
    pub parameters: ParametersDoc,
    /// Your own reference: repeated, it is the same request (like `Idempotency-Key`).
    pub reference: Option<String>,
}
