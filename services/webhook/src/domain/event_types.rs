//! The event types offered to partners: each public type of the platform's catalogue, the
//! scope an application needs to receive it, and whether it is about a user (then that user
//! must have authorized the application for the scope). Internal events (tokens, consents,
//! registrations) are never offered.

use events::EventPayload;
use events::catalogue::{
    ArticleDeleted, ArticlePublished, ArticleUpdated, CommentCreated, NotificationDelivered, NotificationFailed,
    NotificationSent, UserDeleted, UserUpdated, WebhookEndpointDisabled,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{PartialSchema, ToSchema};

/// Whom an event may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Applications a user authorized for `scope`; the event is about that user.
    AuthorizedBy(&'static str),
    /// Applications whose registration allows `scope`.
    Holding(&'static str),
    /// Only the application the event is about (its own endpoints).
    Own,
}

impl Audience {
    /// The scope an application needs, and whether the user the event is about must consent.
    pub fn requirement(self) -> (Option<&'static str>, bool) {
        match self {
            Self::AuthorizedBy(scope) => (Some(scope), true),
            Self::Holding(scope) => (Some(scope), false),
            Self::Own => (None, false),
        }
    }
}

pub struct EventType {
    pub name: &'static str,
    pub description: &'static str,
    pub audience: Audience,
    /// The JSON schema of `data`, without the withheld fields.
    pub schema: Value,
    pub example: Value,
    /// Fields of the internal event no application receives (a user's phone number: no
    /// scope grants it).
    pub withheld: &'static [&'static str],
}

/// The `data` of a `webhook.test` message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookTest {
    pub endpoint_id: String,
    pub message: String,
}

pub const TEST: &str = "webhook.test";

impl EventType {
    /// An example of a whole delivery body of this type.
    pub fn example_body(&self) -> Value {
        json!({"type": self.name, "timestamp": "2026-12-01T10:00:00.000Z", "data": self.example})
    }

    /// What an application receives of an event's `data`.
    pub fn public_data(&self, data: &Value) -> Value {
        let mut data = data.clone();
        if let Some(object) = data.as_object_mut() {
            for field in self.withheld {
                object.remove(*field);
            }
        }
        data
    }
}

fn offered<P: EventPayload>(audience: Audience, example: Value) -> EventType {
    withholding::<P>(audience, example, &[])
}

fn withholding<P: EventPayload>(audience: Audience, example: Value, withheld: &'static [&'static str]) -> EventType {
    let mut schema = serde_json::to_value(P::schema()).unwrap_or(Value::Null);
    for field in withheld {
        if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            properties.remove(*field);
        }
        if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
            required.retain(|r| r != field);
        }
    }
    EventType {
        name: P::TYPE,
        description: P::DESCRIPTION,
        audience,
        schema,
        example,
        withheld,
    }
}

/// Every type a partner may subscribe to, in a stable order; made once (their schemas cost
/// more to make than an event costs to take in).
pub fn all() -> &'static [EventType] {
    static ALL: std::sync::LazyLock<Vec<EventType>> = std::sync::LazyLock::new(make_all);
    &ALL
}

fn make_all() -> Vec<EventType> {
    let user = "usr_0192f3a4b5c67d8e9f0a1b2c3d4e5f60";
    let client = "0192f3a4b5c67d8e9f0a1b2c3d4e5f62";
    let notification = "ntf_0192f3a4b5c67d8e9f0a1b2c3d4e5f63";
    vec![
        withholding::<UserUpdated>(
            Audience::AuthorizedBy("profile"),
            json!({"user_id": user, "username": "ana", "picture": "https://cdn.example.com/ana.png"}),
            &["phone"],
        ),
        offered::<UserDeleted>(Audience::AuthorizedBy("profile"), json!({"user_id": user})),
        offered::<ArticlePublished>(
            Audience::Holding("blog:read"),
            json!({"article_id": 42, "author_id": user, "title": "Spring trails", "locale": "en", "category": "running", "published_at": 1_764_582_000_000_i64}),
        ),
        offered::<ArticleUpdated>(
            Audience::Holding("blog:read"),
            json!({"article_id": 42, "author_id": user, "title": "Spring trails, updated", "version": 2, "modified_at": 1_764_585_600_000_i64}),
        ),
        offered::<ArticleDeleted>(
            Audience::Holding("blog:read"),
            json!({"article_id": 42, "author_id": user}),
        ),
        offered::<CommentCreated>(
            Audience::Holding("blog:read"),
            json!({"comment_id": 7, "article_id": 42, "author_id": user, "created_at": 1_764_589_200_000_i64}),
        ),
        offered::<WebhookEndpointDisabled>(
            Audience::Own,
            json!({"endpoint_id": "ep_0192f3a4b5c67d8e9f0a1b2c3d4e5f61", "client_id": "0192f3a4b5c67d8e9f0a1b2c3d4e5f62", "url": "https://partner.example.com/hooks", "reason": "gone", "disabled_at": 1_764_589_200_000_i64}),
        ),
        offered::<NotificationSent>(
            Audience::Own,
            json!({"notification_id": notification, "provider_id": 5_337_264_261_631_899_i64, "service_id": 1, "client_id": client, "user_id": user, "channel": "SMS", "sent_by": "smpp-primary", "sent_at": 1_764_589_200_000_i64}),
        ),
        offered::<NotificationDelivered>(
            Audience::Own,
            json!({"notification_id": notification, "provider_id": 5_337_264_261_631_899_i64, "service_id": 1, "client_id": client, "user_id": user, "channel": "SMS", "delivered_at": 1_764_589_203_000_i64}),
        ),
        offered::<NotificationFailed>(
            Audience::Own,
            json!({"notification_id": notification, "provider_id": 5_337_264_261_631_899_i64, "service_id": 1, "client_id": client, "user_id": user, "channel": "SMS", "reason": "retries_exhausted: smpp-primary: connection refused", "failed_at": 1_764_589_200_000_i64}),
        ),
        EventType {
            name: TEST,
            description: "A test message sent on request (`POST /webhooks/endpoints/{id}/test`).",
            audience: Audience::Own,
            schema: serde_json::to_value(WebhookTest::schema()).unwrap_or(Value::Null),
            example: json!({"endpoint_id": "ep_0192f3a4b5c67d8e9f0a1b2c3d4e5f61", "message": "This is a test message."}),
            withheld: &[],
        },
    ]
}

pub fn find(name: &str) -> Option<&'static EventType> {
    all().iter().find(|t| t.name == name)
}

/// The scope a message of `event_type` needs its user's consent to still cover, if it needs one.
pub fn consent_scope(event_type: &str) -> Option<&'static str> {
    match find(event_type)?.audience {
        Audience::AuthorizedBy(scope) => Some(scope),
        _ => None,
    }
}

/// The user an event is about, for types whose audience is the users' authorized applications.
pub fn subject_user(event_type: &str, data: &Value) -> Option<ids::UserId> {
    match find(event_type)?.audience {
        Audience::AuthorizedBy(_) => data.get("user_id")?.as_str()?.parse().ok(),
        _ => None,
    }
}

/// `proto-docs/webhooks.json`: what partners receive, type by type, beside the AsyncAPI
/// document of the internal bus. Generated from [`all`].
pub fn document() -> Value {
    let types: Vec<Value> = all()
        .iter()
        .map(|t| {
            let (scope, consent) = t.audience.requirement();
            json!({
                "type": t.name,
                "description": t.description,
                "scope": scope,
                "requires_consent": consent,
                "data_schema": t.schema,
                "example": t.example_body(),
            })
        })
        .collect();
    json!({
        "title": "Partner API platform webhooks",
        "description": "Every delivery is an HTTP POST with a JSON body {type, timestamp, data}, signed to the Standard Webhooks specification: headers webhook-id (stable across retries: deduplicate on it), webhook-timestamp (seconds) and webhook-signature (`v1,<base64 HMAC-SHA256 of id.timestamp.body>` per signing secret, space-separated during a rotation; with a key pair made at /webhooks/endpoints/{id}/public-key also `v1a,<base64 Ed25519 signature>` of the same bytes, verified with the `whpk_` public key). Answer 2xx to acknowledge; 410 disables the endpoint; 429 or 503 with Retry-After delays the next attempt. An event about a user reaches an application only while that user authorizes it for `scope`.",
        "types": types,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed document is exactly what the code generates; `make proto-docs` rewrites it.
    #[test]
    fn proto_docs_match_the_offered_types() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto-docs/webhooks.json");
        let generated = serde_json::to_string_pretty(&document()).unwrap_or_default() + "\n";
        if std::env::var_os("UPDATE_PROTO_DOCS").is_some() {
            std::fs::write(&path, &generated).unwrap_or_default();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "proto-docs/webhooks.json is out of date: run `make proto-docs`"
        );
    }

    #[test]
    fn examples_match_their_payload_types() {
        fn decodes<P: EventPayload>(t: &EventType) {
            if t.name == P::TYPE {
                serde_json::from_value::<P>(t.example.clone()).unwrap_or_else(|e| panic!("{}: {e}", t.name));
            }
        }
        for t in all() {
            decodes::<UserUpdated>(t);
            decodes::<UserDeleted>(t);
            decodes::<ArticlePublished>(t);
            decodes::<ArticleUpdated>(t);
            decodes::<ArticleDeleted>(t);
            decodes::<CommentCreated>(t);
            decodes::<WebhookEndpointDisabled>(t);
            decodes::<NotificationSent>(t);
            decodes::<NotificationDelivered>(t);
            decodes::<NotificationFailed>(t);
        }
        let updated = find("user.updated").unwrap();
        assert_eq!(
            updated.public_data(&json!({"user_id": "u1", "username": "ana", "phone": "+33600000000"})),
            json!({"user_id": "u1", "username": "ana"}),
            "no application learns a phone number"
        );
        assert!(updated.schema["properties"].get("phone").is_none());
        assert!(find("notification.requested").is_none(), "internal");
        let internal = [
            "token.revoked",
            "user.registered",
            "consent.granted",
            "consent.revoked",
            "application.registered",
        ];
        assert!(
            internal.iter().all(|name| find(name).is_none()),
            "internal events are never offered"
        );
        assert_eq!(
            subject_user("user.updated", &json!({"user_id": "u1"})).as_deref(),
            Some("u1")
        );
        assert_eq!(subject_user("article.published", &json!({"author_id": "u1"})), None);
    }
}
