//! Every event type the platform publishes. `proto-docs/asyncapi.json` is generated from this
//! list (`make proto-docs`) and a test fails when the committed document differs.

pub use ids::Revoked;
use ids::{ArticleId, ClientId, CommentId, Jti, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{PartialSchema, ToSchema};

use crate::EventPayload;

/// An access or refresh token was revoked; gateways purge it from their caches at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RevokedOnTheWire", into = "RevokedOnTheWire")]
pub struct TokenRevoked {
    pub revoked: Revoked,
    /// When the last token it covers would have expired (seconds since the epoch).
    pub exp: i64,
}

impl TokenRevoked {
    /// One token's revocation.
    pub fn token(jti: Jti, client_id: ClientId, user: Option<UserId>, exp: i64) -> Self {
        Self {
            revoked: Revoked::Token { jti, client_id, user },
            exp,
        }
    }

    /// The event's CloudEvents subject: the token, or the application or user it covers.
    pub fn subject(&self) -> String {
        match &self.revoked {
            Revoked::Token { jti, .. } => jti.to_string(),
            Revoked::Client(client) => client.to_string(),
            Revoked::Grant { user, .. } | Revoked::User(user) => user.to_string(),
        }
    }
}

/// "Every", in the wire form's `jti` and `client_id`.
const EVERY: &str = "*";

// `token.revoked` as it has been on the wire since its first version; its documentation is the
// published schema's (proto-docs/asyncapi.json).
/// An access or refresh token was revoked; gateways purge it from their caches at once.
#[derive(Serialize, Deserialize, ToSchema)]
struct RevokedOnTheWire {
    /// The token's `jti`; `*` revokes every token of `client_id` issued until then (the
    /// application was deleted), or with a `sub` only those it holds for that user (the user
    /// withdrew their consent); `*` with `client_id` `*` every token of the user `sub`.
    jti: String,
    client_id: String,
    /// The user the token was issued for; absent for client_credentials tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    /// When the token would have expired (seconds since the epoch).
    exp: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum RevokedError {
    #[error(transparent)]
    Id(#[from] ids::IdError),
    #[error("`jti` and `client_id` `*` revoke a user's tokens: `sub` is missing")]
    NoUser,
}

impl TryFrom<RevokedOnTheWire> for TokenRevoked {
    type Error = RevokedError;

    fn try_from(wire: RevokedOnTheWire) -> Result<Self, RevokedError> {
        let sub = wire.sub.map(UserId::parse).transpose()?;
        let revoked = match (wire.jti == EVERY, wire.client_id == EVERY, sub) {
            (true, true, Some(user)) => Revoked::User(user),
            (true, true, None) => return Err(RevokedError::NoUser),
            (true, false, Some(user)) => Revoked::Grant {
                client_id: ClientId::parse(wire.client_id)?,
                user,
            },
            (true, false, None) => Revoked::Client(ClientId::parse(wire.client_id)?),
            (false, _, user) => Revoked::Token {
                jti: Jti::parse(wire.jti)?,
                client_id: ClientId::parse(wire.client_id)?,
                user,
            },
        };
        Ok(Self { revoked, exp: wire.exp })
    }
}

impl From<TokenRevoked> for RevokedOnTheWire {
    fn from(event: TokenRevoked) -> Self {
        let every = || EVERY.to_owned();
        let (jti, client_id, sub) = match event.revoked {
            Revoked::Token { jti, client_id, user } => (jti.into_string(), client_id.into_string(), user),
            Revoked::Client(client) => (every(), client.into_string(), None),
            Revoked::Grant { client_id, user } => (every(), client_id.into_string(), Some(user)),
            Revoked::User(user) => (every(), every(), Some(user)),
        };
        Self {
            jti,
            client_id,
            sub: sub.map(UserId::into_string),
            exp: event.exp,
        }
    }
}

impl PartialSchema for TokenRevoked {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        RevokedOnTheWire::schema()
    }
}

impl ToSchema for TokenRevoked {}

impl EventPayload for TokenRevoked {
    const TYPE: &'static str = "token.revoked";
    const DESCRIPTION: &'static str = "A token was revoked; it must be refused everywhere at once.";
}

/// A user registered; the profile service creates the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserRegistered {
    #[schema(inline)]
    pub user_id: UserId,
    pub username: String,
    pub email: String,
    /// Registration time (milliseconds since the epoch).
    pub registered_at: i64,
}

impl EventPayload for UserRegistered {
    const TYPE: &'static str = "user.registered";
    const DESCRIPTION: &'static str = "A user registered with the authorization server.";
}

/// Public fields of a user changed; projections (blog authors) update their copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserUpdated {
    #[schema(inline)]
    pub user_id: UserId,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The user's mobile number (E.164), for notifications by SMS. Internal: the webhook
    /// service never passes it on (no scope grants it to an application).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

impl EventPayload for UserUpdated {
    const TYPE: &'static str = "user.updated";
    const DESCRIPTION: &'static str = "A user's public data changed.";
}

/// A user was deleted; their tokens are revoked and projections forget them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserDeleted {
    #[schema(inline)]
    pub user_id: UserId,
}

impl EventPayload for UserDeleted {
    const TYPE: &'static str = "user.deleted";
    const DESCRIPTION: &'static str = "A user and their profile were deleted.";
}

/// An article was published on the blog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArticlePublished {
    #[schema(inline)]
    pub article_id: ArticleId,
    /// The author's user id.
    #[schema(inline)]
    pub author_id: UserId,
    pub title: String,
    /// Locale name (`fr`, `en`).
    pub locale: String,
    pub category: String,
    /// Milliseconds since the epoch.
    pub published_at: i64,
}

impl EventPayload for ArticlePublished {
    const TYPE: &'static str = "article.published";
    const DESCRIPTION: &'static str = "An article was published on the blog.";
}

/// An article's title, content, locale or category changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArticleUpdated {
    #[schema(inline)]
    pub article_id: ArticleId,
    #[schema(inline)]
    pub author_id: UserId,
    pub title: String,
    /// The article's version after the change (its ETag).
    pub version: i64,
    /// Milliseconds since the epoch.
    pub modified_at: i64,
}

impl EventPayload for ArticleUpdated {
    const TYPE: &'static str = "article.updated";
    const DESCRIPTION: &'static str = "An article was changed.";
}

/// An article was deleted, with its comments (by its author, an administrator, or because
/// its author's account was deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArticleDeleted {
    #[schema(inline)]
    pub article_id: ArticleId,
    #[schema(inline)]
    pub author_id: UserId,
}

impl EventPayload for ArticleDeleted {
    const TYPE: &'static str = "article.deleted";
    const DESCRIPTION: &'static str = "An article and its comments were deleted.";
}

/// Someone commented on an article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommentCreated {
    #[schema(inline)]
    pub comment_id: CommentId,
    #[schema(inline)]
    pub article_id: ArticleId,
    /// The commenter's user id.
    #[schema(inline)]
    pub author_id: UserId,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

impl EventPayload for CommentCreated {
    const TYPE: &'static str = "comment.created";
    const DESCRIPTION: &'static str = "A comment was added to an article.";
}

/// An application (OAuth2 client) was registered; services that act for applications keep a
/// copy of who owns it and what it may ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApplicationRegistered {
    #[schema(inline)]
    pub client_id: ClientId,
    /// The registration-platform user who owns it.
    #[schema(inline)]
    pub owner_id: UserId,
    pub name: String,
    /// The scopes its tokens may carry.
    pub scopes: Vec<String>,
}

impl EventPayload for ApplicationRegistered {
    const TYPE: &'static str = "application.registered";
    const DESCRIPTION: &'static str = "An application was registered with the authorization server.";
}

/// An application was deleted; what was kept for it (webhook endpoints, consents) goes too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApplicationDeleted {
    #[schema(inline)]
    pub client_id: ClientId,
}

impl EventPayload for ApplicationDeleted {
    const TYPE: &'static str = "application.deleted";
    const DESCRIPTION: &'static str = "An application was deleted.";
}

/// A user authorized an application for these scopes (the consent page, or the password grant,
/// where the user hands the application their credentials). `scopes` is the whole consent
/// after the change, not the difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsentGranted {
    #[schema(inline)]
    pub user_id: UserId,
    #[schema(inline)]
    pub client_id: ClientId,
    pub scopes: Vec<String>,
    /// Milliseconds since the epoch.
    pub granted_at: i64,
}

impl EventPayload for ConsentGranted {
    const TYPE: &'static str = "consent.granted";
    const DESCRIPTION: &'static str =
        "A user authorized an application; what it may learn about them follows the scopes.";
}

/// A user withdrew an application's authorization: nothing more about them may reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsentRevoked {
    #[schema(inline)]
    pub user_id: UserId,
    #[schema(inline)]
    pub client_id: ClientId,
    /// Milliseconds since the epoch.
    pub revoked_at: i64,
}

impl EventPayload for ConsentRevoked {
    const TYPE: &'static str = "consent.revoked";
    const DESCRIPTION: &'static str = "A user withdrew an application's authorization.";
}

/// The webhook service disabled an endpoint: it answered 410 Gone, or failed for too long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookEndpointDisabled {
    pub endpoint_id: String,
    /// The application the endpoint belongs to.
    #[schema(inline)]
    pub client_id: ClientId,
    pub url: String,
    /// `gone` (the endpoint answered 410) or `failing` (it failed for the configured time).
    pub reason: String,
    /// Milliseconds since the epoch.
    pub disabled_at: i64,
}

impl EventPayload for WebhookEndpointDisabled {
    const TYPE: &'static str = "webhook.endpoint.disabled";
    const DESCRIPTION: &'static str =
        "A webhook endpoint was disabled after answering 410 Gone or failing for too long.";
}

/// A service provider's notification was accepted (`POST /Services`); the dispatcher queues it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationRequested {
    pub notification_id: String,
    pub provider_id: i64,
    pub service_id: i32,
    /// The provider's application.
    #[schema(inline)]
    pub client_id: ClientId,
    #[schema(inline)]
    pub user_id: UserId,
    /// The channel asked for (`SMS`, `FCM`, `SAT`, `EMAIL`, `INAPP`).
    pub channel: String,
    /// Acceptance time (milliseconds since the epoch).
    pub requested_at: i64,
}

impl EventPayload for NotificationRequested {
    const TYPE: &'static str = "notification.requested";
    const DESCRIPTION: &'static str = "A service provider's notification was accepted for dispatch.";
}

/// A notification left the platform through a channel's provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationSent {
    pub notification_id: String,
    pub provider_id: i64,
    pub service_id: i32,
    #[schema(inline)]
    pub client_id: ClientId,
    #[schema(inline)]
    pub user_id: UserId,
    /// The channel it went through (after any fallback).
    pub channel: String,
    /// The channel provider that took it (`smpp-primary`, `sandbox-sms`, …).
    pub sent_by: String,
    pub sent_at: i64,
}

impl EventPayload for NotificationSent {
    const TYPE: &'static str = "notification.sent";
    const DESCRIPTION: &'static str =
        "A notification was handed to a channel provider (SMSC, FCM, SMTP server, inbox).";
}

/// A notification reached the user's device or inbox (a delivery receipt, or the inbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationDelivered {
    pub notification_id: String,
    pub provider_id: i64,
    pub service_id: i32,
    #[schema(inline)]
    pub client_id: ClientId,
    #[schema(inline)]
    pub user_id: UserId,
    pub channel: String,
    pub delivered_at: i64,
}

impl EventPayload for NotificationDelivered {
    const TYPE: &'static str = "notification.delivered";
    const DESCRIPTION: &'static str = "A notification reached the user (delivery receipt or inbox).";
}

/// A notification will not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationFailed {
    pub notification_id: String,
    pub provider_id: i64,
    pub service_id: i32,
    #[schema(inline)]
    pub client_id: ClientId,
    #[schema(inline)]
    pub user_id: UserId,
    /// The last channel tried, if any was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Why (`no_consent`, `opted_out`, `no_contact`, `retries_exhausted: …`).
    pub reason: String,
    pub failed_at: i64,
}

impl EventPayload for NotificationFailed {
    const TYPE: &'static str = "notification.failed";
    const DESCRIPTION: &'static str = "A notification will not be delivered; the reason says why.";
}

/// A person must confirm their e-mail address: notification-dispatch e-mails them the
/// single-use link (auth keeps only its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VerificationRequested {
    #[schema(inline)]
    pub user_id: UserId,
    pub email: String,
    /// The link to open; it works once, until `expires_at`.
    pub verify_url: String,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
}

impl EventPayload for VerificationRequested {
    const TYPE: &'static str = "account.verification_requested";
    const DESCRIPTION: &'static str = "A person must confirm their e-mail address with the single-use link sent to it.";
}

/// A person confirmed their e-mail address (seed 003's `user_verified`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserVerified {
    #[schema(inline)]
    pub user_id: UserId,
    /// The address confirmed.
    pub email: String,
    /// Milliseconds since the epoch.
    pub verified_at: i64,
}

impl EventPayload for UserVerified {
    const TYPE: &'static str = "user.verified";
    const DESCRIPTION: &'static str = "A person confirmed their e-mail address.";
}

/// Upper bounds (milliseconds) of the latency buckets of `gateway.usage`; the last bucket is
/// everything slower.
pub const USAGE_LATENCY_BOUNDS_MS: [u64; 9] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500];

/// What one gateway replica served one application on one API (route prefix) on one day
/// since its last report; the portal adds the reports up into each application's usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageReported {
    #[schema(inline)]
    pub client_id: ClientId,
    /// The route prefix (`/blog`, `/users`).
    pub api: String,
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub requests: i64,
    /// Answers 400 to 499.
    pub client_errors: i64,
    /// Answers 500 and over.
    pub server_errors: i64,
    /// Requests per latency bucket (time to the answer's headers), bounded by
    /// `USAGE_LATENCY_BOUNDS_MS`: 5, 10, 25, 50, 100, 250, 500, 1000, 2500 ms, and slower.
    pub latency_buckets: Vec<i64>,
}

impl EventPayload for UsageReported {
    const TYPE: &'static str = "gateway.usage";
    const DESCRIPTION: &'static str =
        "Requests, errors and latencies one gateway served an application on one API, since its last report.";
}

/// One catalogue entry: what the AsyncAPI document says of an event type.
pub struct EventKind {
    pub event_type: &'static str,
    pub description: &'static str,
    pub payload_name: String,
    pub payload_schema: utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
}

fn kind<P: EventPayload>() -> EventKind {
    EventKind {
        event_type: P::TYPE,
        description: P::DESCRIPTION,
        payload_name: P::name().into_owned(),
        payload_schema: P::schema(),
    }
}

/// The catalogue, in a stable order.
pub fn all() -> Vec<EventKind> {
    vec![
        kind::<TokenRevoked>(),
        kind::<UserRegistered>(),
        kind::<UserUpdated>(),
        kind::<UserDeleted>(),
        kind::<ArticlePublished>(),
        kind::<ArticleUpdated>(),
        kind::<ArticleDeleted>(),
        kind::<CommentCreated>(),
        kind::<ApplicationRegistered>(),
        kind::<ApplicationDeleted>(),
        kind::<ConsentGranted>(),
        kind::<ConsentRevoked>(),
        kind::<WebhookEndpointDisabled>(),
        kind::<NotificationRequested>(),
        kind::<NotificationSent>(),
        kind::<NotificationDelivered>(),
        kind::<NotificationFailed>(),
        kind::<UsageReported>(),
        kind::<VerificationRequested>(),
        kind::<UserVerified>(),
    ]
}

/// The AsyncAPI 3.0 document describing the exchange, its routing keys and payloads.
pub fn asyncapi(exchange: &str) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let (mut channels, mut operations, mut messages, mut schemas) = (Map::new(), Map::new(), Map::new(), Map::new());
    for kind in all() {
        let id = kind.event_type.replace('.', "_");
        channels.insert(
            id.clone(),
            json!({
                "address": kind.event_type,
                "description": kind.description,
                "messages": { &id: { "$ref": format!("#/components/messages/{id}") } },
                "bindings": { "amqp": {
                    "is": "routingKey",
                    "exchange": { "name": exchange, "type": "topic", "durable": true, "autoDelete": false },
                    "bindingVersion": "0.3.0"
                } }
            }),
        );
        operations.insert(
            format!("publish_{id}"),
            json!({ "action": "send", "channel": { "$ref": format!("#/channels/{id}") } }),
        );
        messages.insert(
            id.clone(),
            json!({
                "name": kind.event_type,
                "contentType": "application/cloudevents+json",
                "headers": { "$ref": "#/components/schemas/CloudEventAttributes" },
                "payload": { "$ref": format!("#/components/schemas/{}", kind.payload_name) },
                "bindings": { "amqp": { "deliveryMode": 2, "bindingVersion": "0.3.0" } }
            }),
        );
        schemas.insert(
            kind.payload_name,
            serde_json::to_value(kind.payload_schema).unwrap_or(Value::Null),
        );
    }
    schemas.insert("CloudEventAttributes".to_owned(), envelope_schema());
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Partner API platform events",
            "version": "1.0.0",
            "description": "Every message is a CloudEvents 1.0 JSON envelope (specversion, id as UUIDv7, source, type, time, subject, datacontenttype, traceparent) whose `data` is the payload below. Routing key = `type`."
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages, "schemas": schemas }
    })
}

fn envelope_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(crate::Event::schema()).unwrap_or_default();
    if let Some(props) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) {
        props.remove("data");
    }
    if let Some(required) = schema.get_mut("required").and_then(|r| r.as_array_mut()) {
        required.retain(|r| r != "data");
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_reads_and_writes_the_wire_form_of_every_kind() {
        let cases = [
            (r#"{"jti":"j1","client_id":"app","sub":"ana","exp":9}"#, "j1"),
            (r#"{"jti":"j2","client_id":"app","exp":9}"#, "j2"),
            (r#"{"jti":"*","client_id":"app","exp":9}"#, "app"),
            (r#"{"jti":"*","client_id":"app","sub":"ana","exp":9}"#, "ana"),
            (r#"{"jti":"*","client_id":"*","sub":"ana","exp":9}"#, "ana"),
        ];
        let mut kinds = Vec::new();
        for (wire, subject) in cases {
            let event: TokenRevoked = serde_json::from_str(wire).unwrap();
            assert_eq!(serde_json::to_string(&event).unwrap(), wire, "written as read");
            assert_eq!(event.subject(), subject);
            kinds.push(std::mem::discriminant(&event.revoked));
        }
        kinds.dedup();
        assert_eq!(kinds.len(), 4, "token (twice), client, grant, user");
        let everyone = serde_json::from_str::<TokenRevoked>(r#"{"jti":"*","client_id":"*","exp":9}"#);
        assert!(
            everyone.is_err_and(|e| e.to_string().contains("`sub` is missing")),
            "no event revokes everyone"
        );
        assert!(serde_json::from_str::<TokenRevoked>(r#"{"jti":"a b","client_id":"app","exp":9}"#).is_err());
    }

    #[test]
    fn event_types_are_unique_and_well_formed() {
        let kinds = all();
        let mut types: Vec<_> = kinds.iter().map(|k| k.event_type).collect();
        types.sort_unstable();
        types.dedup();
        assert_eq!(types.len(), kinds.len());
        for t in types {
            let parts: Vec<_> = t.split('.').collect();
            // `webhook.endpoint.disabled`: an aggregate may have a part of its own.
            assert!(
                (2..=3).contains(&parts.len()),
                "{t} is not <aggregate>[.<part>].<event>"
            );
            assert!(
                parts
                    .iter()
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c == '_')),
                "{t}"
            );
        }
    }

    /// The committed AsyncAPI document is exactly what the code generates.
    /// Regenerate with `make proto-docs` after changing the catalogue.
    #[test]
    fn proto_docs_match_the_catalogue() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto-docs/asyncapi.json");
        let generated = serde_json::to_string_pretty(&asyncapi(crate::rabbit::DEFAULT_EXCHANGE)).expect("json") + "\n";
        if std::env::var_os("UPDATE_PROTO_DOCS").is_some() {
            std::fs::write(&path, &generated).expect("write proto-docs");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "proto-docs/asyncapi.json is out of date: run `make proto-docs`"
        );
    }
}
