//! From an event to messages: which applications may learn of it (the consent of the user it
//! is about, or the scope their registration allows), one message for each, one delivery for
//! each of their endpoints that wants the type. Runs inside the consumer's transaction, so an
//! event becomes its deliveries once, or not at all.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use storage::AnyConnection;

use super::event_types::{self, Audience};
use crate::store::{self, DeliveryRow, EndpointRow, MessageRow};

/// An event as it arrives, whatever carried it.
pub struct Intake<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub time: DateTime<Utc>,
    pub data: &'a Value,
}

/// The body every attempt of a message sends: `{type, timestamp, data}`.
pub fn body(event_type: &str, time: DateTime<Utc>, data: &Value) -> String {
    json!({
        "type": event_type,
        "timestamp": time.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": data,
    })
    .to_string()
}

/// What an application receives of an event's data (withheld fields removed).
fn public_data(event_type: &str, data: &Value) -> Value {
    event_types::find(event_type).map_or_else(|| data.clone(), |t| t.public_data(data))
}

fn has_scope(scopes: &str, scope: &str) -> bool {
    scopes.split(' ').any(|s| s == scope)
}

/// The messages and deliveries `intake` makes.
pub fn fan_out(c: &mut AnyConnection, intake: &Intake<'_>, now: i64) -> Result<(), diesel::result::Error> {
    let Some(kind) = event_types::find(intake.event_type) else {
        return Ok(());
    };
    let endpoints = match kind.audience {
        Audience::Own => match intake.data.get("client_id").and_then(Value::as_str) {
            Some(client) => store::subscribed(c, intake.event_type, Some(&[client.to_owned()]))?,
            None => return Ok(()),
        },
        Audience::AuthorizedBy(_) | Audience::Holding(_) => store::subscribed(c, intake.event_type, None)?,
    };
    let mut by_client: BTreeMap<String, Vec<EndpointRow>> = BTreeMap::new();
    for endpoint in endpoints {
        by_client.entry(endpoint.client_id.clone()).or_default().push(endpoint);
    }
    let consents: HashMap<String, String> =
        match (kind.audience, event_types::subject_user(intake.event_type, intake.data)) {
            (Audience::AuthorizedBy(_), Some(user)) => consents::granted_by(c, &user)?.into_iter().collect(),
            _ => HashMap::new(),
        };
    for (client, endpoints) in by_client {
        let may = match kind.audience {
            Audience::AuthorizedBy(scope) => consents.get(&client).is_some_and(|s| has_scope(s, scope)),
            Audience::Holding(scope) => store::application(c, &client)?.is_some_and(|(_, s)| has_scope(&s, scope)),
            Audience::Own => true,
        };
        if may {
            deliver(c, intake, &client, &endpoints, now)?;
        }
    }
    Ok(())
}

/// How long a message waits before an ordered endpoint may get it: events are taken in several
/// at once (and by several replicas), so an earlier event may commit a moment after a later
/// one; by then it has, and order by event id holds.
pub const ORDER_SETTLE_MS: i64 = 250;

/// One message of `intake` for `client`, and a delivery to each of `endpoints`.
pub fn deliver(
    c: &mut AnyConnection,
    intake: &Intake<'_>,
    client: &str,
    endpoints: &[EndpointRow],
    now: i64,
) -> Result<(), diesel::result::Error> {
    let message = MessageRow {
        id: super::new_message_id(),
        client_id: client.to_owned(),
        event_id: intake.event_id.to_owned(),
        event_type: intake.event_type.to_owned(),
        user_id: event_types::subject_user(intake.event_type, intake.data),
        body: body(
            intake.event_type,
            intake.time,
            &public_data(intake.event_type, intake.data),
        ),
        created_at: now,
    };
    if !store::insert_message(c, &message)? {
        return Ok(());
    }
    let rows: Vec<DeliveryRow> = endpoints
        .iter()
        .map(|endpoint| DeliveryRow {
            id: super::new_id(),
            message_id: message.id.clone(),
            endpoint_id: endpoint.id.clone(),
            seq: intake.event_id.to_owned(),
            status: store::PENDING.to_owned(),
            attempts: 0,
            next_attempt_at: if endpoint.ordered { now + ORDER_SETTLE_MS } else { now },
            lease_until: 0,
            created_at: now,
            updated_at: now,
        })
        .collect();
    store::insert_deliveries(c, &rows)
}
