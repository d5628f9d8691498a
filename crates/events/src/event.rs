use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

/// The payload of one event type; its `TYPE` is also the AMQP routing key.
pub trait EventPayload: Serialize + DeserializeOwned + utoipa::ToSchema {
    const TYPE: &'static str;
    /// One sentence for the event catalogue.
    const DESCRIPTION: &'static str;
}

/// A versioned envelope carrying CloudEvents 1.0 attributes (JSON event format) plus the W3C
/// `traceparent` extension, so a trace continues across the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// Always "1.0".
    pub specversion: String,
    /// UUIDv7: unique, and ordered by creation time.
    pub id: Uuid,
    /// The producing service, as a URI reference (`/auth`).
    pub source: String,
    /// `<aggregate>.<event>`, also the routing key.
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub time: DateTime<Utc>,
    /// The aggregate the event is about (a user id, a token id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub datacontenttype: String,
    pub data: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl Event {
    /// A new event of `payload`'s type, carrying the current span's trace context.
    pub fn new<P: EventPayload>(source: &str, subject: Option<String>, payload: &P) -> Result<Self, serde_json::Error> {
        Ok(Self {
            specversion: "1.0".to_owned(),
            id: Uuid::now_v7(),
            source: source.to_owned(),
            event_type: P::TYPE.to_owned(),
            // Millisecond precision, as serialized, so an event equals its own round trip.
            time: DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_default(),
            subject,
            datacontenttype: "application/json".to_owned(),
            data: serde_json::to_value(payload)?,
            traceparent: telemetry::current_traceparent(),
        })
    }

    /// The payload, if this event is of type `P`.
    pub fn payload<P: EventPayload>(&self) -> Option<Result<P, serde_json::Error>> {
        (self.event_type == P::TYPE).then(|| serde_json::from_value(self.data.clone()))
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of strings and a JSON value cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// ISO 8601 / RFC 3339 with millisecond precision and a `Z`.
mod rfc3339 {
    use super::*;

    pub fn serialize<S: serde::Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&time.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{Revoked, TokenRevoked};

    #[test]
    fn envelope_round_trips_with_cloudevents_names() {
        let payload = TokenRevoked {
            revoked: Revoked::Token {
                jti: "j1".parse().unwrap(),
                client_id: "c1".parse().unwrap(),
                user: Some("u1".parse().unwrap()),
            },
            exp: 1_900_000_000,
        };
        let event = Event::new("/auth", Some("j1".into()), &payload).expect("event");
        let json: serde_json::Value = serde_json::from_slice(&event.to_json()).expect("json");
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "token.revoked");
        assert_eq!(json["id"].as_str().map(|id| &id[14..15]), Some("7"), "UUIDv7");
        assert!(json["time"].as_str().is_some_and(|t| t.ends_with('Z')));
        let back = Event::from_json(&event.to_json()).expect("parse");
        assert_eq!(back, event);
        let decoded = back.payload::<TokenRevoked>().expect("type matches").expect("decodes");
        assert_eq!(decoded, payload);
    }
}
