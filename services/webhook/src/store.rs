//! The webhook service's tables and queries; functions take a connection so several compose
//! in one transaction. The claim of due deliveries is raw SQL (a window function and a lease
//! re-checked by the `UPDATE`, on both dialects).

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use ids::{ClientId, UserId};
use storage::{AnyConnection, Database, StorageError};

mod schema {
    diesel::table! {
        applications (client_id) {
            client_id -> Text,
            owner_id -> Text,
            scopes -> Text,
        }
    }

    diesel::table! {
        endpoints (id) {
            id -> Text,
            client_id -> Text,
            url -> Text,
            description -> Text,
            event_types -> Text,
            enabled -> Bool,
            ordered -> Bool,
            rate_limit -> Nullable<Integer>,
            headers -> Text,
            secret -> Text,
            previous_secret -> Nullable<Text>,
            previous_until -> Nullable<BigInt>,
            failing_since -> Nullable<BigInt>,
            disabled_reason -> Nullable<Text>,
            version -> BigInt,
            created_at -> BigInt,
        }
    }

    diesel::table! {
        endpoint_rooms (endpoint_id) {
            endpoint_id -> Text,
            room -> Integer,
        }
    }

    diesel::table! {
        messages (id) {
            id -> Text,
            client_id -> Text,
            event_id -> Text,
            event_type -> Text,
            user_id -> Nullable<Text>,
            body -> Text,
            created_at -> BigInt,
        }
    }

    diesel::table! {
        deliveries (id) {
            id -> Text,
            message_id -> Text,
            endpoint_id -> Text,
            seq -> Text,
            status -> Text,
            attempts -> Integer,
            next_attempt_at -> BigInt,
            lease_until -> BigInt,
            created_at -> BigInt,
            updated_at -> BigInt,
        }
    }

    diesel::table! {
        signing_keys (endpoint_id) {
            endpoint_id -> Text,
            secret_key -> Text,
            public_key -> Text,
            created_at -> BigInt,
            previous_secret_key -> Nullable<Text>,
            previous_public_key -> Nullable<Text>,
            previous_until -> Nullable<BigInt>,
        }
    }

    diesel::table! {
        attempts (id) {
            id -> Text,
            delivery_id -> Text,
            message_id -> Text,
            endpoint_id -> Text,
            event_type -> Text,
            attempted_at -> BigInt,
            duration_ms -> BigInt,
            status_code -> Nullable<Integer>,
            error_kind -> Nullable<Text>,
            response_body -> Text,
            succeeded -> Bool,
        }
    }
}

use schema::{applications, attempts, deliveries, endpoint_rooms, endpoints, messages, signing_keys};

pub const PENDING: &str = "pending";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";
/// Not made: the user withdrew the consent that let the message reach the application.
pub const CANCELLED: &str = "cancelled";

/// The service's tables for async callers: each method is one call on the blocking pool, with
/// owned arguments, so no caller writes a closure or clones to feed one.
#[derive(Clone)]
pub struct Store {
    db: Database,
}

impl Store {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// The applications `owner` owns.
    pub async fn applications_of(&self, owner: UserId) -> Result<Vec<String>, StorageError> {
        self.db.run(move |c| Ok(applications_of(c, &owner)?)).await
    }

    /// The owner and scopes of `client`, if the service knows it.
    pub async fn application(&self, client: String) -> Result<Option<(String, String)>, StorageError> {
        self.db.run(move |c| Ok(application(c, &client)?)).await
    }

    pub async fn endpoint(&self, id: String) -> Result<Option<EndpointRow>, StorageError> {
        self.db.run(move |c| Ok(endpoint(c, &id)?)).await
    }

    /// Stores `row` unless its application has `limit` endpoints already (then `false`).
    pub async fn add_endpoint(&self, row: EndpointRow, limit: i64) -> Result<bool, StorageError> {
        self.db
            .transaction(move |c| {
                if endpoint_count(c, &row.client_id)? >= limit {
                    return Ok(false);
                }
                insert_endpoint(c, &row)?;
                Ok(true)
            })
            .await
    }

    /// A page of the endpoints of `clients`, and their total.
    pub async fn endpoints_of(
        &self,
        clients: Vec<String>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<EndpointRow>, i64), StorageError> {
        self.db
            .run(move |c| Ok(endpoints_of(c, &clients, offset, limit)?))
            .await
    }

    /// Replaces the endpoint by `row` if it is still at `version`.
    pub async fn update_endpoint(&self, row: EndpointRow, version: i64) -> Result<bool, StorageError> {
        self.db.run(move |c| Ok(update_endpoint(c, &row, version)?)).await
    }

    pub async fn delete_endpoint(&self, id: String) -> Result<bool, StorageError> {
        self.db.transaction(move |c| Ok(delete_endpoint(c, &id)?)).await
    }

    pub async fn signing_key(&self, endpoint: String) -> Result<Option<SigningKeyRow>, StorageError> {
        self.db.run(move |c| Ok(signing_key(c, &endpoint)?)).await
    }

    /// Makes `secret_key`/`public_key` the endpoint's key pair (a pair before keeps signing
    /// until `overlap_until`), and the pair as stored: `None` when the endpoint is gone.
    pub async fn replace_signing_key(
        &self,
        endpoint: String,
        secret_key: String,
        public_key: String,
        now: i64,
        overlap_until: i64,
    ) -> Result<Option<SigningKeyRow>, StorageError> {
        self.db
            .transaction(move |c| {
                set_signing_key(c, &endpoint, &secret_key, &public_key, now, overlap_until)?;
                Ok(signing_key(c, &endpoint)?)
            })
            .await
    }

    pub async fn delete_signing_key(&self, endpoint: String) -> Result<bool, StorageError> {
        self.db.run(move |c| Ok(delete_signing_key(c, &endpoint)?)).await
    }

    /// Messages and their deliveries (those of a message already made are dropped), in one
    /// transaction, and the id of the message `event_id` made for `client`.
    pub async fn deliver(
        &self,
        messages: Vec<MessageRow>,
        deliveries: Vec<DeliveryRow>,
        client: ClientId,
        event_id: String,
    ) -> Result<Option<String>, StorageError> {
        self.db
            .transaction(move |c| {
                write_messages(c, &messages, &deliveries)?;
                Ok(delivery_of_event(c, &client, &event_id)?)
            })
            .await
    }

    /// Claims up to `limit` due deliveries of `lane` until `lease_until`, in one transaction (a
    /// claim that fails after its leases were taken leaves none behind), with what their
    /// attempts need. `consent_scope` names the scope a message's user must still have granted
    /// for its type, if any.
    pub async fn claim(
        &self,
        lane: Lane,
        now: i64,
        lease_until: i64,
        limit: i64,
        consent_scope: fn(&str) -> Option<&'static str>,
    ) -> Result<Vec<Claimed>, StorageError> {
        self.db
            .transaction(move |c| {
                let ids = claim(c, lane, now, lease_until, limit)?;
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let claimed = claimed(c, &ids)?;
                let endpoints: Vec<&str> = claimed.iter().map(|(_, _, e)| e.id.as_str()).collect();
                let keys = secret_keys(c, &endpoints, now)?;
                let rooms = rooms(c, &endpoints)?;
                let mut consents = HashMap::new();
                let mut jobs = Vec::with_capacity(claimed.len());
                for (delivery, message, endpoint) in claimed {
                    jobs.push(Claimed {
                        authorized: still_authorized(c, &message, consent_scope, &mut consents)?,
                        v1a: keys.get(&endpoint.id).cloned(),
                        room: rooms.get(&endpoint.id).copied(),
                        delivery,
                        message,
                        endpoint,
                    });
                }
                Ok(jobs)
            })
            .await
    }

    /// Gives the delivery back until `at`, its lease released.
    pub async fn postpone(&self, id: String, at: i64) -> Result<(), StorageError> {
        self.db.run(move |c| Ok(postpone(c, &id, at)?)).await
    }

    /// Settles the delivery as not made, `attempts` having been.
    pub async fn cancel(&self, id: String, attempts: i32, now: i64) -> Result<(), StorageError> {
        self.db
            .run(move |c| Ok(settle(c, &id, CANCELLED, attempts, now, now)?))
            .await
    }

    /// Makes `message` due again at `endpoint`; `false` when the endpoint has no such message.
    pub async fn retry_now(&self, message: String, endpoint: String, now: i64) -> Result<bool, StorageError> {
        self.db.run(move |c| Ok(retry_now(c, &message, &endpoint, now)?)).await
    }

    /// Makes every message that failed at `endpoint` since `since` due again: how many.
    pub async fn recover(&self, endpoint: String, since: i64, now: i64) -> Result<usize, StorageError> {
        self.db.run(move |c| Ok(recover(c, &endpoint, since, now)?)).await
    }

    pub async fn attempts_of(
        &self,
        endpoint: String,
        filter: AttemptFilter,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<AttemptRow>, i64), StorageError> {
        self.db
            .run(move |c| Ok(attempts_of(c, &endpoint, &filter, offset, limit)?))
            .await
    }

    pub async fn purge(&self, before: i64) -> Result<usize, StorageError> {
        self.db.run(move |c| Ok(purge(c, before)?)).await
    }

    /// The due backlog and the disabled endpoints.
    pub async fn backlog(&self, now: i64) -> Result<(i64, i64), StorageError> {
        self.db.run(move |c| Ok((due_count(c, now)?, disabled_count(c)?))).await
    }
}

/// A claimed delivery with what its attempt needs.
pub struct Claimed {
    pub delivery: DeliveryRow,
    pub message: MessageRow,
    pub endpoint: EndpointRow,
    /// The endpoint's sealed `v1a` keys signing now, if it signs `v1a`.
    pub v1a: Option<Vec<String>>,
    /// The endpoint's room (`None`: it never answered, room for one).
    pub room: Option<i32>,
    /// Whether the message may still go: its user's consent, if it needs one, still covers its
    /// type's scope.
    pub authorized: bool,
}

/// A message about a user goes only while the user's consent covers its type's scope: a
/// consent withdrawn after the message was made stops it. Each user and application's
/// consent is read once a claim.
fn still_authorized(
    c: &mut AnyConnection,
    message: &MessageRow,
    consent_scope: fn(&str) -> Option<&'static str>,
    read: &mut HashMap<(UserId, ClientId), Option<String>>,
) -> QueryResult<bool> {
    let Some(user) = &message.user_id else {
        return Ok(true);
    };
    let Some(scope) = consent_scope(&message.event_type) else {
        return Ok(true);
    };
    let key = (user.clone(), message.client_id.clone());
    let scopes = match read.get(&key) {
        Some(scopes) => scopes.clone(),
        None => {
            let scopes = consents::scopes(c, user, &message.client_id)?;
            read.insert(key, scopes.clone());
            scopes
        }
    };
    // No row: the user was deleted after their `user.deleted` was fanned out.
    Ok(scopes.is_none_or(|s| s.split(' ').any(|s| s == scope)))
}

// Applications and consents: projections of auth's events.

pub fn upsert_application(c: &mut AnyConnection, client: &str, owner: &str, scopes: &str) -> QueryResult<()> {
    diesel::delete(applications::table.find(client)).execute(c)?;
    diesel::insert_into(applications::table)
        .values((
            applications::client_id.eq(client),
            applications::owner_id.eq(owner),
            applications::scopes.eq(scopes),
        ))
        .execute(c)
        .map(drop)
}

/// (owner, scopes) of an application this service knows.
pub fn application(c: &mut AnyConnection, client: &str) -> QueryResult<Option<(String, String)>> {
    applications::table
        .find(client)
        .select((applications::owner_id, applications::scopes))
        .first(c)
        .optional()
}

pub fn applications_of(c: &mut AnyConnection, owner: &str) -> QueryResult<Vec<String>> {
    applications::table
        .filter(applications::owner_id.eq(owner))
        .select(applications::client_id)
        .load(c)
}

/// Forgets an application with its endpoints, their deliveries and the consents it had.
pub fn delete_application(c: &mut AnyConnection, client: &str) -> QueryResult<()> {
    let ids: Vec<String> = endpoints::table
        .filter(endpoints::client_id.eq(client))
        .select(endpoints::id)
        .load(c)?;
    for id in &ids {
        delete_endpoint(c, id)?;
    }
    consents::forget_client(c, client)?;
    diesel::delete(applications::table.find(client)).execute(c).map(drop)
}

// Endpoints.

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = endpoints, treat_none_as_null = true)]
pub struct EndpointRow {
    pub id: String,
    pub client_id: ClientId,
    pub url: String,
    pub description: String,
    /// Space-separated; empty means every type the application may receive.
    pub event_types: String,
    pub enabled: bool,
    pub ordered: bool,
    pub rate_limit: Option<i32>,
    /// A JSON object of extra request headers.
    pub headers: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_until: Option<i64>,
    pub failing_since: Option<i64>,
    pub disabled_reason: Option<String>,
    pub version: i64,
    pub created_at: i64,
}

impl EndpointRow {
    /// The types in its filter (none: every type).
    pub fn event_type_list(&self) -> Vec<String> {
        self.event_types
            .split(' ')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The extra headers every attempt carries (stored as validated JSON).
    pub fn extra_headers(&self) -> std::collections::BTreeMap<String, String> {
        serde_json::from_str(&self.headers).unwrap_or_default()
    }

    /// The secrets signing at `now`: the current one, and the previous one during its overlap.
    pub fn signing_secrets(&self, now: i64) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if overlap_lasts(self.previous_until, now).is_some()
            && let Some(previous) = &self.previous_secret
        {
            secrets.push(previous);
        }
        secrets
    }
}

/// When the overlap of a rotation (a secret's or a key pair's) ends, if it still lasts at `now`.
pub fn overlap_lasts(until: Option<i64>, now: i64) -> Option<i64> {
    until.filter(|until| now < *until)
}

pub fn insert_endpoint(c: &mut AnyConnection, row: &EndpointRow) -> QueryResult<()> {
    diesel::insert_into(endpoints::table).values(row).execute(c).map(drop)
}

pub fn endpoint(c: &mut AnyConnection, id: &str) -> QueryResult<Option<EndpointRow>> {
    endpoints::table
        .find(id)
        .select(EndpointRow::as_select())
        .first(c)
        .optional()
}

pub fn endpoint_count(c: &mut AnyConnection, client: &str) -> QueryResult<i64> {
    endpoints::table
        .filter(endpoints::client_id.eq(client))
        .count()
        .get_result(c)
}

/// A page of the endpoints of `clients`, oldest first, and their total.
pub fn endpoints_of(
    c: &mut AnyConnection,
    clients: &[String],
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<EndpointRow>, i64)> {
    let rows = endpoints::table
        .filter(endpoints::client_id.eq_any(clients))
        .order((endpoints::created_at.asc(), endpoints::id.asc()))
        .offset(offset)
        .limit(limit)
        .select(EndpointRow::as_select())
        .load(c)?;
    let total = endpoints::table
        .filter(endpoints::client_id.eq_any(clients))
        .count()
        .get_result(c)?;
    Ok((rows, total))
}

/// Stores `row` if it is still at `version`; false when another change came first.
pub fn update_endpoint(c: &mut AnyConnection, row: &EndpointRow, version: i64) -> QueryResult<bool> {
    let changed = diesel::update(
        endpoints::table
            .filter(endpoints::id.eq(&row.id))
            .filter(endpoints::version.eq(version)),
    )
    .set(row)
    .execute(c)?;
    Ok(changed == 1)
}

pub fn delete_endpoint(c: &mut AnyConnection, id: &str) -> QueryResult<bool> {
    diesel::delete(deliveries::table.filter(deliveries::endpoint_id.eq(id))).execute(c)?;
    diesel::delete(signing_keys::table.find(id)).execute(c)?;
    diesel::delete(endpoint_rooms::table.find(id)).execute(c)?;
    Ok(diesel::delete(endpoints::table.find(id)).execute(c)? == 1)
}

// Signing keys (`v1a`).

/// An endpoint's key pair, and the one before it while that still signs. No `Debug`: it holds
/// secret keys.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub endpoint_id: String,
    pub secret_key: String,
    pub public_key: String,
    pub created_at: i64,
    pub previous_secret_key: Option<String>,
    pub previous_public_key: Option<String>,
    pub previous_until: Option<i64>,
}

impl SigningKeyRow {
    /// The secret keys signing at `now`: the current one, and the previous one in its overlap.
    pub fn signing(&self, now: i64) -> Vec<String> {
        let mut keys = vec![self.secret_key.clone()];
        if overlap_lasts(self.previous_until, now).is_some()
            && let Some(previous) = &self.previous_secret_key
        {
            keys.push(previous.clone());
        }
        keys
    }
}

/// Sets `endpoint`'s key pair; one it had signs beside it until `previous_until`.
pub fn set_signing_key(
    c: &mut AnyConnection,
    endpoint: &str,
    secret: &str,
    public: &str,
    now: i64,
    previous_until: i64,
) -> QueryResult<()> {
    let before = signing_key(c, endpoint)?;
    diesel::delete(signing_keys::table.find(endpoint)).execute(c)?;
    diesel::insert_into(signing_keys::table)
        .values((
            signing_keys::endpoint_id.eq(endpoint),
            signing_keys::secret_key.eq(secret),
            signing_keys::public_key.eq(public),
            signing_keys::created_at.eq(now),
            signing_keys::previous_secret_key.eq(before.as_ref().map(|b| b.secret_key.as_str())),
            signing_keys::previous_public_key.eq(before.as_ref().map(|b| b.public_key.as_str())),
            signing_keys::previous_until.eq(before.as_ref().map(|_| previous_until)),
        ))
        .execute(c)
        .map(drop)
}

/// `endpoint`'s key pair, if it has one.
pub fn signing_key(c: &mut AnyConnection, endpoint: &str) -> QueryResult<Option<SigningKeyRow>> {
    signing_keys::table
        .find(endpoint)
        .select(SigningKeyRow::as_select())
        .first(c)
        .optional()
}

pub fn delete_signing_key(c: &mut AnyConnection, endpoint: &str) -> QueryResult<bool> {
    Ok(diesel::delete(signing_keys::table.find(endpoint)).execute(c)? == 1)
}

/// endpoint → the secret keys signing at `now`, for those of `endpoints` that sign `v1a`.
pub fn secret_keys(
    c: &mut AnyConnection,
    endpoints: &[&str],
    now: i64,
) -> QueryResult<std::collections::HashMap<String, Vec<String>>> {
    let rows: Vec<SigningKeyRow> = signing_keys::table
        .filter(signing_keys::endpoint_id.eq_any(endpoints))
        .select(SigningKeyRow::as_select())
        .load(c)?;
    Ok(rows
        .into_iter()
        .map(|row| (row.endpoint_id.clone(), row.signing(now)))
        .collect())
}

/// What the fan-out needs of an endpoint: whose it is, what it wants, whether it is ordered
/// (read for every batch of events: none of the columns attempts need).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = endpoints)]
pub struct Route {
    pub id: String,
    pub client_id: ClientId,
    /// Space-separated; empty means every type the application may receive.
    pub event_types: String,
    pub ordered: bool,
}

impl Route {
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.split(' ').any(|t| t == event_type)
    }
}

impl From<&EndpointRow> for Route {
    fn from(e: &EndpointRow) -> Self {
        Self {
            id: e.id.clone(),
            client_id: e.client_id.clone(),
            event_types: e.event_types.clone(),
            ordered: e.ordered,
        }
    }
}

/// Every enabled endpoint's route: those an event may go to.
pub fn enabled_routes(c: &mut AnyConnection) -> QueryResult<Vec<Route>> {
    endpoints::table
        .filter(endpoints::enabled.eq(true))
        .select(Route::as_select())
        .load(c)
}

/// Records the outcome of an attempt on the endpoint's health: `None` after a success.
pub fn set_failing_since(c: &mut AnyConnection, id: &str, since: Option<i64>) -> QueryResult<()> {
    diesel::update(endpoints::table.find(id))
        .set(endpoints::failing_since.eq(since))
        .execute(c)
        .map(drop)
}

/// How many attempts the endpoint may have in flight while healthy.
pub fn set_room(c: &mut AnyConnection, id: &str, room: i32) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO endpoint_rooms (endpoint_id, room) VALUES ($1, $2) \
         ON CONFLICT (endpoint_id) DO UPDATE SET room = excluded.room",
    )
    .bind::<Text, _>(id)
    .bind::<diesel::sql_types::Integer, _>(room)
    .execute(c)
    .map(drop)
}

/// The rooms of `ids` that have one of their own.
pub fn rooms(c: &mut AnyConnection, ids: &[&str]) -> QueryResult<std::collections::HashMap<String, i32>> {
    Ok(endpoint_rooms::table
        .filter(endpoint_rooms::endpoint_id.eq_any(ids))
        .select((endpoint_rooms::endpoint_id, endpoint_rooms::room))
        .load::<(String, i32)>(c)?
        .into_iter()
        .collect())
}

/// Disables an endpoint; false when it already was.
pub fn disable(c: &mut AnyConnection, id: &str, reason: &str) -> QueryResult<bool> {
    let changed = diesel::update(endpoints::table.find(id).filter(endpoints::enabled.eq(true)))
        .set((
            endpoints::enabled.eq(false),
            endpoints::disabled_reason.eq(reason),
            endpoints::version.eq(endpoints::version + 1),
        ))
        .execute(c)?;
    Ok(changed == 1)
}

// Messages, deliveries and attempts.

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = messages)]
pub struct MessageRow {
    pub id: String,
    pub client_id: ClientId,
    pub event_id: String,
    pub event_type: String,
    /// The user it is about, when only their consent lets it reach the application.
    pub user_id: Option<UserId>,
    /// The exact bytes every attempt sends and signs.
    pub body: String,
    pub created_at: i64,
}

/// Stores a message; false when this event already made one for this application.
/// Inserts the messages not made before (by client and event); the ids of those inserted.
pub fn insert_messages(c: &mut AnyConnection, rows: &[MessageRow]) -> QueryResult<HashSet<String>> {
    use diesel::sql_types::Nullable;
    let mut made = HashSet::new();
    for chunk in rows.chunks(300) {
        // `ON CONFLICT DO NOTHING` is spelled alike in both dialects (diesel's has no MultiBackend form).
        let mut query = diesel::sql_query(format!(
            "INSERT INTO messages (id, client_id, event_id, event_type, user_id, body, created_at) \
             VALUES {} ON CONFLICT DO NOTHING RETURNING id",
            storage::placeholders(chunk.len(), 7)
        ))
        .into_boxed::<storage::MultiBackend>();
        for r in chunk {
            query = query
                .bind::<Text, _>(r.id.as_str())
                .bind::<Text, _>(r.client_id.as_str())
                .bind::<Text, _>(r.event_id.as_str())
                .bind::<Text, _>(r.event_type.as_str())
                .bind::<Nullable<Text>, _>(r.user_id.as_deref())
                .bind::<Text, _>(r.body.as_str())
                .bind::<BigInt, _>(r.created_at);
        }
        let inserted: Vec<IdRow> = query.load(c)?;
        made.extend(inserted.into_iter().map(|r| r.id));
    }
    Ok(made)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = deliveries)]
pub struct DeliveryRow {
    pub id: String,
    pub message_id: String,
    pub endpoint_id: String,
    /// Event order (the event's UUIDv7): ordered endpoints get messages by it.
    pub seq: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub lease_until: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Inserts deliveries.
pub fn insert_deliveries(c: &mut AnyConnection, rows: &[DeliveryRow]) -> QueryResult<()> {
    match c {
        AnyConnection::Postgresql(pg) => insert_deliveries_unnested(pg, rows),
        AnyConnection::Sqlite(_) => insert_deliveries_as_values(c, rows),
    }
}

/// On PostgreSQL, one statement of a column each, however many the rows: an event beside a
/// hundred endpoints otherwise binds a thousand parameters into a statement parsed anew.
/// Inserts the messages not made before, and the deliveries of those inserted (an event's
/// message to an application is made once).
pub fn write_messages(c: &mut AnyConnection, messages: &[MessageRow], deliveries: &[DeliveryRow]) -> QueryResult<()> {
    let made = insert_messages(c, messages)?;
    let deliveries: Vec<DeliveryRow> = deliveries
        .iter()
        .filter(|d| made.contains(&d.message_id))
        .cloned()
        .collect();
    insert_deliveries(c, &deliveries)
}

fn insert_deliveries_unnested(pg: &mut diesel::PgConnection, rows: &[DeliveryRow]) -> QueryResult<()> {
    use diesel::sql_types::{Array, Integer};
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&DeliveryRow) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
    let number = |f: fn(&DeliveryRow) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
    diesel::sql_query(
        "INSERT INTO deliveries (id, message_id, endpoint_id, seq, status, attempts, next_attempt_at, \
         lease_until, created_at, updated_at) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int4[], \
         $7::int8[], $8::int8[], $9::int8[], $10::int8[])",
    )
    .bind::<Array<Text>, _>(column(|r| &r.id))
    .bind::<Array<Text>, _>(column(|r| &r.message_id))
    .bind::<Array<Text>, _>(column(|r| &r.endpoint_id))
    .bind::<Array<Text>, _>(column(|r| &r.seq))
    .bind::<Array<Text>, _>(column(|r| &r.status))
    .bind::<Array<Integer>, _>(rows.iter().map(|r| r.attempts).collect::<Vec<i32>>())
    .bind::<Array<BigInt>, _>(number(|r| r.next_attempt_at))
    .bind::<Array<BigInt>, _>(number(|r| r.lease_until))
    .bind::<Array<BigInt>, _>(number(|r| r.created_at))
    .bind::<Array<BigInt>, _>(number(|r| r.updated_at))
    .execute(pg)
    .map(drop)
}

/// On SQLite, a few hundred per statement (diesel has no batch insert for both dialects at once).
fn insert_deliveries_as_values(c: &mut AnyConnection, rows: &[DeliveryRow]) -> QueryResult<()> {
    for chunk in rows.chunks(300) {
        let mut query = diesel::sql_query(format!(
            "INSERT INTO deliveries (id, message_id, endpoint_id, seq, status, attempts, next_attempt_at, \
             lease_until, created_at, updated_at) VALUES {}",
            storage::placeholders(chunk.len(), 10)
        ))
        .into_boxed::<storage::MultiBackend>();
        for r in chunk {
            query = query
                .bind::<Text, _>(r.id.as_str())
                .bind::<Text, _>(r.message_id.as_str())
                .bind::<Text, _>(r.endpoint_id.as_str())
                .bind::<Text, _>(r.seq.as_str())
                .bind::<Text, _>(r.status.as_str())
                .bind::<diesel::sql_types::Integer, _>(r.attempts)
                .bind::<BigInt, _>(r.next_attempt_at)
                .bind::<BigInt, _>(r.lease_until)
                .bind::<BigInt, _>(r.created_at)
                .bind::<BigInt, _>(r.updated_at);
        }
        query.execute(c)?;
    }
    Ok(())
}

#[derive(Debug, QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

/// Which endpoints a claim is for: those that answer, or those failing (claimed on their own,
/// so that the attempts of a hundred dead endpoints never make a claim for the others wait).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Healthy,
    Failing,
}

/// Each enabled endpoint of `lane`: its attempts in flight (`busy`, by their leases, across
/// replicas) and its room (its own; one while failing, or until it first answered).
fn room(lane: Lane) -> String {
    let (of_lane, room) = match lane {
        Lane::Healthy => ("e.failing_since IS NULL", "COALESCE(r.room, 1)"),
        Lane::Failing => ("e.failing_since IS NOT NULL", "1"),
    };
    format!(
        "SELECT e.id, e.ordered, COALESCE(b.busy, 0) AS busy, {room} - COALESCE(b.busy, 0) AS free \
         FROM endpoints e LEFT JOIN endpoint_rooms r ON r.endpoint_id = e.id LEFT JOIN ( \
           SELECT endpoint_id, COUNT(*) AS busy FROM deliveries \
           WHERE lease_until > $2 AND status = 'pending' GROUP BY endpoint_id \
         ) b ON b.endpoint_id = e.id \
         WHERE e.enabled = TRUE AND {of_lane}"
    )
}

/// The oldest pending delivery of the endpoint in `column`: an ordered endpoint's next one.
fn head(column: &str) -> String {
    format!("(SELECT MIN(h.seq) FROM deliveries h WHERE h.endpoint_id = {column} AND h.status = 'pending')")
}

/// Claims up to `limit` due deliveries of `lane`'s endpoints until `lease_until`. Each endpoint
/// has room for its own number of attempts in flight (one until it first answered, and while it
/// is failing); an ordered endpoint gets only its oldest pending message, once none is in
/// flight. Endpoints with the fewest attempts in flight come first, so a busy endpoint never
/// takes the turn of others.
///
/// On PostgreSQL each endpoint with room reads only the first deliveries of its queue (a
/// `LATERAL` walk of the pending index, stopping at its room), so a long backlog costs nothing;
/// each step is materialized, so statistics that lag a young table cannot make the planner
/// repeat the walk for every due row (seen: 4 s a claim, 606 walks of 101 endpoints); twice the
/// batch is picked and rows another replica is claiming are skipped (`FOR UPDATE SKIP LOCKED`),
/// the lease checked again under the lock, so no row is claimed twice. The picked rows are
/// locked one by one by their key, in order, until the batch is full (a `LATERAL` lookup: a
/// join let the planner, expecting twice the batch, hash the whole table, 40 ms a claim at
/// 47,000 rows). Two replicas claiming at the same
/// instant may together exceed an endpoint's room, by at most its room per replica. SQLite
/// (embedded mode, one process) numbers `$n` parameters by first appearance, so they appear in
/// order there.
pub fn claim(c: &mut AnyConnection, lane: Lane, now: i64, lease_until: i64, limit: i64) -> QueryResult<Vec<String>> {
    let sql = match c {
        AnyConnection::Postgresql(_) => {
            let (head, room) = (head("room.id"), room(lane));
            format!(
                "WITH room AS MATERIALIZED ({room}), \
                 picked AS MATERIALIZED ( \
                   SELECT next.id, room.busy + next.n AS load, next.next_attempt_at \
                   FROM room CROSS JOIN LATERAL ( \
                     SELECT p.id, p.seq, p.next_attempt_at, ROW_NUMBER() OVER (ORDER BY p.seq) AS n FROM ( \
                       SELECT q.id, q.seq, q.next_attempt_at FROM deliveries q \
                       WHERE q.endpoint_id = room.id AND q.status = 'pending' AND q.next_attempt_at <= $2 AND q.lease_until <= $2 \
                       ORDER BY q.seq LIMIT GREATEST(room.free, 0) \
                     ) p \
                   ) next \
                   WHERE room.free > 0 AND (room.ordered = FALSE OR (room.busy = 0 AND next.n = 1 AND next.seq = {head})) \
                   ORDER BY load, next.next_attempt_at LIMIT 2 * $3 \
                 ) \
                 UPDATE deliveries SET lease_until = $1 WHERE id IN ( \
                   SELECT locked.id FROM (SELECT * FROM picked ORDER BY load, next_attempt_at) p \
                   CROSS JOIN LATERAL ( \
                     SELECT d.id FROM deliveries d WHERE d.id = p.id AND d.lease_until <= $2 AND d.status = 'pending' \
                     FOR UPDATE SKIP LOCKED \
                   ) locked LIMIT $3 \
                 ) RETURNING id"
            )
        }
        AnyConnection::Sqlite(_) => {
            let (head, room) = (head("due.endpoint_id"), room(lane));
            format!(
                "UPDATE deliveries SET lease_until = $1 WHERE lease_until <= $2 AND status = 'pending' AND id IN ( \
               SELECT due.id FROM ( \
                 SELECT d.id, d.endpoint_id, d.seq, d.next_attempt_at, room.ordered, room.busy, room.free, \
                   ROW_NUMBER() OVER (PARTITION BY d.endpoint_id ORDER BY d.seq) AS n \
                 FROM deliveries d JOIN ({room}) room ON room.id = d.endpoint_id \
                 WHERE room.free > 0 AND d.status = 'pending' AND d.next_attempt_at <= $2 AND d.lease_until <= $2 \
               ) due \
               WHERE due.n <= due.free AND (due.ordered = FALSE OR (due.busy = 0 AND due.n = 1 AND due.seq = {head})) \
               ORDER BY due.busy + due.n, due.next_attempt_at LIMIT $3 \
             ) RETURNING id"
            )
        }
    };
    let rows: Vec<IdRow> = diesel::sql_query(sql)
        .bind::<BigInt, _>(lease_until)
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(limit)
        .load(c)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Claimed deliveries with what their attempts need, in three queries whatever their number.
pub fn claimed(c: &mut AnyConnection, ids: &[String]) -> QueryResult<Vec<(DeliveryRow, MessageRow, EndpointRow)>> {
    let found: Vec<DeliveryRow> = deliveries::table
        .filter(deliveries::id.eq_any(ids))
        .select(DeliveryRow::as_select())
        .load(c)?;
    let message_ids: Vec<&str> = found.iter().map(|d| d.message_id.as_str()).collect();
    let endpoint_ids: Vec<&str> = found.iter().map(|d| d.endpoint_id.as_str()).collect();
    let messages: std::collections::HashMap<String, MessageRow> = messages::table
        .filter(messages::id.eq_any(&message_ids))
        .select(MessageRow::as_select())
        .load(c)?
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect();
    let endpoints: std::collections::HashMap<String, EndpointRow> = endpoints::table
        .filter(endpoints::id.eq_any(&endpoint_ids))
        .select(EndpointRow::as_select())
        .load(c)?
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect();
    Ok(found
        .into_iter()
        .filter_map(|d| {
            let message = messages.get(&d.message_id)?.clone();
            let endpoint = endpoints.get(&d.endpoint_id)?.clone();
            Some((d, message, endpoint))
        })
        .collect())
}

/// After an attempt: `status`, attempts made, when the next one is due; releases the lease.
pub fn settle(c: &mut AnyConnection, id: &str, status: &str, attempts: i32, next_at: i64, now: i64) -> QueryResult<()> {
    diesel::update(deliveries::table.find(id))
        .set((
            deliveries::status.eq(status),
            deliveries::attempts.eq(attempts),
            deliveries::next_attempt_at.eq(next_at),
            deliveries::lease_until.eq(0),
            deliveries::updated_at.eq(now),
        ))
        .execute(c)
        .map(drop)
}

/// A delivery's state after an attempt.
pub struct Settled<'a> {
    pub id: &'a str,
    pub status: &'static str,
    pub attempts: i32,
    pub next_at: i64,
}

/// [`settle`] for many deliveries, in one statement per five hundred.
pub fn settle_all(c: &mut AnyConnection, rows: &[Settled<'_>], now: i64) -> QueryResult<()> {
    for chunk in rows.chunks(500) {
        let mut query = diesel::sql_query(format!(
            "WITH v (id, status, attempts, next_at) AS (VALUES {}) \
             UPDATE deliveries SET status = v.status, attempts = v.attempts, next_attempt_at = v.next_at, \
             lease_until = 0, updated_at = ${} FROM v WHERE deliveries.id = v.id",
            storage::placeholders(chunk.len(), 4),
            chunk.len() * 4 + 1
        ))
        .into_boxed::<storage::MultiBackend>();
        for r in chunk {
            query = query
                .bind::<Text, _>(r.id)
                .bind::<Text, _>(r.status)
                .bind::<diesel::sql_types::Integer, _>(r.attempts)
                .bind::<BigInt, _>(r.next_at);
        }
        query.bind::<BigInt, _>(now).execute(c)?;
    }
    Ok(())
}

/// Puts a claimed delivery back untried until `at` (its endpoint's rate limit said wait).
pub fn postpone(c: &mut AnyConnection, id: &str, at: i64) -> QueryResult<()> {
    diesel::update(deliveries::table.find(id))
        .set((deliveries::next_attempt_at.eq(at), deliveries::lease_until.eq(0)))
        .execute(c)
        .map(drop)
}

type DueAgain = (
    diesel::dsl::Eq<deliveries::status, &'static str>,
    diesel::dsl::Eq<deliveries::attempts, i32>,
    diesel::dsl::Eq<deliveries::next_attempt_at, i64>,
    diesel::dsl::Eq<deliveries::updated_at, i64>,
);

/// Pending again, due at `now`, with a fresh schedule (resend, recover).
fn due_again(now: i64) -> DueAgain {
    (
        deliveries::status.eq(PENDING),
        deliveries::attempts.eq(0),
        deliveries::next_attempt_at.eq(now),
        deliveries::updated_at.eq(now),
    )
}

/// Makes a delivery due again now, with a fresh schedule; false when there is none.
pub fn retry_now(c: &mut AnyConnection, message: &str, endpoint: &str, now: i64) -> QueryResult<bool> {
    let changed = diesel::update(
        deliveries::table
            .filter(deliveries::message_id.eq(message))
            .filter(deliveries::endpoint_id.eq(endpoint)),
    )
    .set(due_again(now))
    .execute(c)?;
    Ok(changed == 1)
}

/// Makes every failed delivery of `endpoint` created since `since` due again; how many.
pub fn recover(c: &mut AnyConnection, endpoint: &str, since: i64, now: i64) -> QueryResult<usize> {
    diesel::update(
        deliveries::table
            .filter(deliveries::endpoint_id.eq(endpoint))
            .filter(deliveries::status.eq(FAILED))
            .filter(deliveries::created_at.ge(since)),
    )
    .set(due_again(now))
    .execute(c)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = attempts)]
pub struct AttemptRow {
    pub id: String,
    pub delivery_id: String,
    pub message_id: String,
    pub endpoint_id: String,
    pub event_type: String,
    pub attempted_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<i32>,
    /// `timeout`, `refused`, `blocked`, `tls`, `redirect`, `status`, `network`, `secret`.
    pub error_kind: Option<String>,
    pub response_body: String,
    pub succeeded: bool,
}

/// The attempts, in one statement per two hundred.
pub fn insert_attempts(c: &mut AnyConnection, rows: &[AttemptRow]) -> QueryResult<()> {
    use diesel::sql_types::{Bool, Integer, Nullable};
    for chunk in rows.chunks(200) {
        let mut query = diesel::sql_query(format!(
            "INSERT INTO attempts (id, delivery_id, message_id, endpoint_id, event_type, attempted_at, \
             duration_ms, status_code, error_kind, response_body, succeeded) VALUES {}",
            storage::placeholders(chunk.len(), 11)
        ))
        .into_boxed::<storage::MultiBackend>();
        for r in chunk {
            query = query
                .bind::<Text, _>(r.id.as_str())
                .bind::<Text, _>(r.delivery_id.as_str())
                .bind::<Text, _>(r.message_id.as_str())
                .bind::<Text, _>(r.endpoint_id.as_str())
                .bind::<Text, _>(r.event_type.as_str())
                .bind::<BigInt, _>(r.attempted_at)
                .bind::<BigInt, _>(r.duration_ms)
                .bind::<Nullable<Integer>, _>(r.status_code)
                .bind::<Nullable<Text>, _>(r.error_kind.as_deref())
                .bind::<Text, _>(r.response_body.as_str())
                .bind::<Bool, _>(r.succeeded);
        }
        query.execute(c)?;
    }
    Ok(())
}

/// What the delivery log may be filtered by.
#[derive(Debug, Default, Clone)]
pub struct AttemptFilter {
    pub succeeded: Option<bool>,
    pub event_type: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub message_id: Option<String>,
}

/// A page of `endpoint`'s attempts, newest first, and their total.
pub fn attempts_of(
    c: &mut AnyConnection,
    endpoint: &str,
    filter: &AttemptFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<AttemptRow>, i64)> {
    let query = || {
        let mut q = attempts::table
            .filter(attempts::endpoint_id.eq(endpoint.to_owned()))
            .into_boxed();
        if let Some(ok) = filter.succeeded {
            q = q.filter(attempts::succeeded.eq(ok));
        }
        if let Some(t) = &filter.event_type {
            q = q.filter(attempts::event_type.eq(t.clone()));
        }
        if let Some(since) = filter.since {
            q = q.filter(attempts::attempted_at.ge(since));
        }
        if let Some(until) = filter.until {
            q = q.filter(attempts::attempted_at.lt(until));
        }
        if let Some(m) = &filter.message_id {
            q = q.filter(attempts::message_id.eq(m.clone()));
        }
        q
    };
    let rows = query()
        .order((attempts::attempted_at.desc(), attempts::id.desc()))
        .offset(offset)
        .limit(limit)
        .select(AttemptRow::as_select())
        .load(c)?;
    let total = query().count().get_result(c)?;
    Ok((rows, total))
}

/// Deletes messages created before `before`, with their deliveries and attempts.
pub fn purge(c: &mut AnyConnection, before: i64) -> QueryResult<usize> {
    for table in ["attempts", "deliveries"] {
        diesel::sql_query(format!(
            "DELETE FROM {table} WHERE message_id IN (SELECT id FROM messages WHERE created_at < $1)"
        ))
        .bind::<BigInt, _>(before)
        .execute(c)?;
    }
    diesel::delete(messages::table.filter(messages::created_at.lt(before))).execute(c)
}

/// Deliveries due now and not claimed: the backlog the metrics show.
pub fn due_count(c: &mut AnyConnection, now: i64) -> QueryResult<i64> {
    deliveries::table
        .filter(deliveries::status.eq(PENDING))
        .filter(deliveries::next_attempt_at.le(now))
        .count()
        .get_result(c)
}

pub fn disabled_count(c: &mut AnyConnection) -> QueryResult<i64> {
    endpoints::table
        .filter(endpoints::enabled.eq(false))
        .count()
        .get_result(c)
}

/// The message an event made for `client`, if it made one.
pub fn delivery_of_event(c: &mut AnyConnection, client: &str, event_id: &str) -> QueryResult<Option<String>> {
    messages::table
        .filter(messages::client_id.eq(client))
        .filter(messages::event_id.eq(event_id))
        .select(messages::id)
        .first(c)
        .optional()
}

/// Messages taken in so far.
pub fn message_count(c: &mut AnyConnection) -> QueryResult<i64> {
    messages::table.count().get_result(c)
}
