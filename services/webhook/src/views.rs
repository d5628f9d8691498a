//! Response shapes of the webhook API.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::event_types::EventType;
use crate::store::{AttemptRow, EndpointRow};

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    /// `ep_…`
    pub id: String,
    /// The application (client id) it belongs to.
    pub application_id: String,
    pub url: String,
    pub description: String,
    /// The types it receives; empty: every type the application may receive.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Messages one at a time, in event order.
    pub ordered: bool,
    /// Deliveries per second at most.
    pub rate_limit: Option<i32>,
    /// Extra headers every attempt carries.
    pub headers: BTreeMap<String, String>,
    /// Why it was disabled: `gone` (it answered 410), `failing`, or `owner`.
    pub disabled_reason: Option<String>,
    /// Since when every attempt failed (milliseconds since the epoch).
    pub failing_since: Option<i64>,
    /// The signing secret, shown when the endpoint is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub version: i64,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

impl EndpointView {
    pub fn new(row: &EndpointRow, secret: Option<String>) -> Self {
        Self {
            id: row.id.clone(),
            application_id: row.client_id.to_string(),
            url: row.url.clone(),
            description: row.description.clone(),
            event_types: row.event_type_list(),
            enabled: row.enabled,
            ordered: row.ordered,
            rate_limit: row.rate_limit,
            headers: row.extra_headers(),
            disabled_reason: row.disabled_reason.clone(),
            failing_since: row.failing_since,
            secret,
            version: row.version,
            created_at: row.created_at,
        }
    }

    pub fn tag(row: &EndpointRow) -> String {
        http_kit::etag::tag(row.version, &[])
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretView {
    /// `whsec_` and the base64 key: verify with any Standard Webhooks library.
    pub secret: String,
    /// During a rotation: until when the previous secret also signs (milliseconds since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_valid_until: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub id: String,
    /// The `webhook-id` the attempt carried.
    pub message_id: String,
    pub event_type: String,
    /// Milliseconds since the epoch.
    pub attempted_at: i64,
    pub duration_ms: i64,
    /// The endpoint's answer; absent when none came.
    pub status_code: Option<i32>,
    /// `timeout`, `refused`, `blocked` (the SSRF guard), `redirect`, `status`, `network`.
    pub error_kind: Option<String>,
    /// The start of the endpoint's answer (or of the error).
    pub response_body: String,
    pub succeeded: bool,
}

impl From<AttemptRow> for AttemptView {
    fn from(row: AttemptRow) -> Self {
        Self {
            id: row.id,
            message_id: row.message_id,
            event_type: row.event_type,
            attempted_at: row.attempted_at,
            duration_ms: row.duration_ms,
            status_code: row.status_code,
            error_kind: row.error_kind,
            response_body: row.response_body,
            succeeded: row.succeeded,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeView {
    /// The `type` of the body, and what endpoints filter on.
    pub name: String,
    pub description: String,
    /// The scope the application needs; absent for the application's own operational events.
    pub scope: Option<String>,
    /// Whether the event is about a user, who must have authorized the application for `scope`.
    pub requires_consent: bool,
    /// The JSON schema of `data`.
    #[schema(value_type = Object)]
    pub schema: Value,
    /// An example of the whole body.
    #[schema(value_type = Object)]
    pub example: Value,
}

impl From<&EventType> for EventTypeView {
    fn from(t: &EventType) -> Self {
        let (scope, requires_consent) = t.audience.requirement();
        Self {
            name: t.name.to_owned(),
            description: t.description.to_owned(),
            scope: scope.map(str::to_owned),
            requires_consent,
            example: t.example_body(),
            schema: t.schema.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// The message made (test) or made due again (resend).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// How many failed messages were made due again (recover).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered: Option<usize>,
}

/// An endpoint's `v1a` public key: verify `v1a,` signatures with it (Ed25519 over
/// `{webhook-id}.{webhook-timestamp}.{body}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKeyView {
    /// `whpk_` and the 32-byte Ed25519 public key in base64.
    pub public_key: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// After a new pair was made: the pair before it, which signs `v1a` beside the new one until
    /// `previous_valid_until` (`webhook.rotation_overlap`); verify with either meanwhile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_public_key: Option<String>,
    /// Milliseconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_valid_until: Option<i64>,
}

impl PublicKeyView {
    pub fn of(row: &crate::store::SigningKeyRow, now: i64) -> Self {
        let overlap = crate::store::overlap_lasts(row.previous_until, now);
        Self {
            public_key: row.public_key.clone(),
            created_at: row.created_at,
            previous_public_key: overlap.and(row.previous_public_key.clone()),
            previous_valid_until: overlap,
        }
    }
}
