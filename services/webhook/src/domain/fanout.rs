//! From an event to messages: which applications may learn of it (the consent of the user it
//! is about, or the scope their registration allows), one message for each, one delivery for
//! each of their endpoints that wants the type. Runs inside the consumer's transaction, so an
//! event becomes its deliveries once, or not at all.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use ids::{ClientId, UserId};
use serde_json::{Value, json};
use storage::{AnyConnection, StorageError};

use super::event_types::{self, Audience};
use crate::store::{self, DeliveryRow, MessageRow, Route, Store};

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

/// The messages and deliveries of events taken in together, gathered and written at the end
/// in a few statements however many the events; what the fan-out reads (endpoints,
/// applications' scopes, users' consents) is read once meanwhile.
#[derive(Default)]
pub struct Fanout {
    routes: Option<Vec<Route>>,
    scopes: HashMap<String, Option<String>>,
    consents: HashMap<String, HashMap<String, String>>,
    messages: Vec<MessageRow>,
    deliveries: Vec<DeliveryRow>,
}

impl Fanout {
    /// Gathers the messages and deliveries `intake` makes.
    pub fn add(&mut self, c: &mut AnyConnection, intake: &Intake<'_>, now: i64) -> Result<(), diesel::result::Error> {
        let Some(kind) = event_types::find(intake.event_type) else {
            return Ok(());
        };
        let own = match kind.audience {
            Audience::Own => match intake.data.get("client_id").and_then(Value::as_str) {
                Some(client) => Some(client),
                None => return Ok(()),
            },
            Audience::AuthorizedBy(_) | Audience::Holding(_) => None,
        };
        let mut by_client: BTreeMap<ClientId, Vec<Route>> = BTreeMap::new();
        for route in self.routes(c)? {
            if route.wants(intake.event_type) && own.is_none_or(|client| route.client_id == client) {
                by_client
                    .entry(route.client_id.clone())
                    .or_default()
                    .push(route.clone());
            }
        }
        let user = event_types::subject_user(intake.event_type, intake.data);
        for (client, endpoints) in by_client {
            let may = match (kind.audience, &user) {
                (Audience::AuthorizedBy(scope), Some(user)) => self
                    .consents(c, user)?
                    .get(client.as_str())
                    .is_some_and(|s| has_scope(s, scope)),
                (Audience::AuthorizedBy(_), None) => false,
                (Audience::Holding(scope), _) => self.scopes(c, &client)?.is_some_and(|s| has_scope(s, scope)),
                (Audience::Own, _) => true,
            };
            if may {
                self.gather(intake, &client, user.clone(), &endpoints, now);
            }
        }
        Ok(())
    }

    /// Writes what was gathered and forgets what was read: before a change the reads depend on
    /// (a projection's, a deleted user's consents).
    pub fn flush(&mut self, c: &mut AnyConnection) -> Result<(), diesel::result::Error> {
        self.write(c)?;
        self.routes = None;
        self.scopes.clear();
        self.consents.clear();
        Ok(())
    }

    /// Writes the messages gathered, and the deliveries of those new (an event's message to an
    /// application is made once).
    pub fn write(&mut self, c: &mut AnyConnection) -> Result<(), diesel::result::Error> {
        store::write_messages(
            c,
            &std::mem::take(&mut self.messages),
            &std::mem::take(&mut self.deliveries),
        )
    }

    fn routes(&mut self, c: &mut AnyConnection) -> Result<&[Route], diesel::result::Error> {
        if self.routes.is_none() {
            self.routes = Some(store::enabled_routes(c)?);
        }
        Ok(self.routes.as_deref().unwrap_or_default())
    }

    fn scopes(&mut self, c: &mut AnyConnection, client: &str) -> Result<Option<&String>, diesel::result::Error> {
        if !self.scopes.contains_key(client) {
            let scopes = store::application(c, client)?.map(|(_, s)| s);
            self.scopes.insert(client.to_owned(), scopes);
        }
        Ok(self.scopes.get(client).and_then(Option::as_ref))
    }

    fn consents(
        &mut self,
        c: &mut AnyConnection,
        user: &str,
    ) -> Result<&HashMap<String, String>, diesel::result::Error> {
        if !self.consents.contains_key(user) {
            let granted = consents::granted_by(c, user)?.into_iter().collect();
            self.consents.insert(user.to_owned(), granted);
        }
        Ok(&self.consents[user])
    }

    /// One message of `intake` for `client`, and a delivery to each of `endpoints`.
    fn gather(&mut self, intake: &Intake<'_>, client: &ClientId, user: Option<UserId>, endpoints: &[Route], now: i64) {
        let message = MessageRow {
            id: super::new_message_id(),
            client_id: client.clone(),
            event_id: intake.event_id.to_owned(),
            event_type: intake.event_type.to_owned(),
            user_id: user,
            body: body(
                intake.event_type,
                intake.time,
                &public_data(intake.event_type, intake.data),
            ),
            created_at: now,
        };
        self.deliveries.extend(endpoints.iter().map(|endpoint| DeliveryRow {
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
        }));
        self.messages.push(message);
    }
}

/// How long a message waits before an ordered endpoint may get it: events are taken in several
/// at once (and by several replicas), so an earlier event may commit a moment after a later
/// one; by then it has, and order by event id holds.
pub const ORDER_SETTLE_MS: i64 = 250;

/// One message of `intake` for `client`, and a delivery to each of `endpoints`, written now
/// in one transaction: the id of the message (the one made before, if the event made one).
pub async fn deliver(
    store: &Store,
    intake: &Intake<'_>,
    client: ClientId,
    endpoints: &[Route],
    now: i64,
) -> Result<Option<String>, StorageError> {
    let mut one = Fanout::default();
    let user = event_types::subject_user(intake.event_type, intake.data);
    one.gather(intake, &client, user, endpoints, now);
    store
        .deliver(one.messages, one.deliveries, client, intake.event_id.to_owned())
        .await
}
