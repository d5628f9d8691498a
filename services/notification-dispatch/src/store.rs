//! The notification service's tables and queries; functions take a connection so several
//! compose in one transaction. The claim of due notifications is raw SQL (`FOR UPDATE SKIP
//! LOCKED` on PostgreSQL; SQLite is one process).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use ids::{ClientId, UserId};
use storage::{AnyConnection, Database, StorageError};

use crate::destination::{self, Destination};

mod schema {
    diesel::table! {
        applications (client_id) {
            client_id -> Text,
            owner_id -> Text,
        }
    }

    diesel::table! {
        recipients (user_id) {
            user_id -> Text,
            email -> Nullable<Text>,
            phone -> Nullable<Text>,
        }
    }

    diesel::table! {
        providers (provider_id) {
            provider_id -> BigInt,
            client_id -> Text,
            created_at -> BigInt,
        }
    }

    diesel::table! {
        services (provider_id, service_id) {
            provider_id -> BigInt,
            service_id -> Integer,
            name -> Text,
            kinds -> Text,
            channels -> Text,
            rate_limit -> Nullable<Integer>,
            token_hash -> Text,
            created_at -> BigInt,
        }
    }

    diesel::table! {
        notifications (id) {
            id -> Text,
            client_id -> Text,
            provider_id -> BigInt,
            service_id -> Integer,
            user_id -> Text,
            status -> Text,
            reason -> Nullable<Text>,
            channel_used -> Nullable<Text>,
            sent_by -> Nullable<Text>,
            external_id -> Nullable<Text>,
            attempts -> Integer,
            due_at -> BigInt,
            lease_until -> BigInt,
            created_at -> BigInt,
            updated_at -> BigInt,
        }
    }

    diesel::table! {
        contents (id) {
            id -> Text,
            client_id -> Text,
            kind -> Text,
            title -> Text,
            message -> Text,
            link -> Nullable<Text>,
            picture -> Nullable<Text>,
            qr_code -> Nullable<Text>,
            channel -> Text,
            urgent -> Bool,
            reference -> Nullable<Text>,
            fingerprint -> Text,
        }
    }

    diesel::joinable!(contents -> notifications (id));
    diesel::allow_tables_to_appear_in_same_query!(notifications, contents);

    diesel::table! {
        sends (id) {
            id -> Text,
            notification_id -> Text,
            channel -> Text,
            provider -> Text,
            attempted_at -> BigInt,
            duration_ms -> BigInt,
            outcome -> Text,
            error -> Nullable<Text>,
        }
    }

    diesel::table! {
        preferences (user_id) {
            user_id -> Text,
            document -> Text,
            version -> BigInt,
            updated_at -> BigInt,
        }
    }

    diesel::table! {
        devices (id) {
            id -> Text,
            user_id -> Text,
            client_id -> Text,
            token -> Text,
            platform -> Text,
            created_at -> BigInt,
        }
    }

    diesel::table! {
        inbox (id) {
            id -> Text,
            user_id -> Text,
            notification_id -> Text,
            provider_id -> BigInt,
            kind -> Text,
            channel -> Text,
            title -> Text,
            message -> Text,
            link -> Nullable<Text>,
            picture -> Nullable<Text>,
            qr_code -> Nullable<Text>,
            sandbox -> Bool,
            created_at -> BigInt,
            read_at -> Nullable<BigInt>,
        }
    }
}

use schema::{
    applications, contents, devices, inbox, notifications, preferences, providers, recipients, sends, services,
};

/// Statuses of a notification, in the order it moves through them.
pub const QUEUED: &str = "queued";
pub const SENT: &str = "sent";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

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

    /// Who owns `client`, if the service knows it.
    pub async fn owner_of(&self, client: String) -> Result<Option<String>, StorageError> {
        self.db.run(move |c| Ok(owner_of(c, &client)?)).await
    }

    pub async fn provider(&self, id: i64) -> Result<Option<ProviderRow>, StorageError> {
        self.db.run(move |c| Ok(provider(c, id)?)).await
    }

    pub async fn provider_of_client(&self, client: ClientId) -> Result<Option<ProviderRow>, StorageError> {
        self.db.run(move |c| Ok(provider_of_client(c, &client)?)).await
    }

    /// Stores `row` unless its application is a provider already: then that provider's id.
    pub async fn add_provider(&self, row: ProviderRow) -> Result<Option<i64>, StorageError> {
        self.db
            .transaction(move |c| {
                if let Some(existing) = provider_of_client(c, &row.client_id)? {
                    return Ok(Some(existing.provider_id));
                }
                insert_provider(c, &row)?;
                Ok(None)
            })
            .await
    }

    /// Stores `row` numbered as its provider's next service (whatever `service_id` it came
    /// with), unless the provider has `limit` services already (then `None`).
    pub async fn add_service(&self, row: ServiceRow, limit: i64) -> Result<Option<ServiceRow>, StorageError> {
        self.db
            .transaction(move |c| {
                if service_count(c, row.provider_id)? >= limit {
                    return Ok(None);
                }
                let row = ServiceRow {
                    service_id: next_service_id(c, row.provider_id)?,
                    ..row.clone()
                };
                insert_service(c, &row)?;
                Ok(Some(row))
            })
            .await
    }

    pub async fn services_of(&self, provider: i64) -> Result<Vec<ServiceRow>, StorageError> {
        self.db.run(move |c| Ok(services_of(c, provider)?)).await
    }

    /// The service's latest `size` notifications, newest first; `None` when there is no such
    /// service.
    pub async fn recent_of_service(
        &self,
        provider: i64,
        service_id: i32,
        size: i64,
    ) -> Result<Option<Vec<NotificationRow>>, StorageError> {
        self.db
            .run(move |c| {
                if service(c, provider, service_id)?.is_none() {
                    return Ok(None);
                }
                Ok(Some(recent_of_service(c, provider, service_id, size)?))
            })
            .await
    }

    /// The service with its token hash replaced by `hash`; `None` when there is no such service.
    pub async fn rotate_service_token(
        &self,
        provider: i64,
        service_id: i32,
        hash: String,
    ) -> Result<Option<ServiceRow>, StorageError> {
        self.db
            .transaction(move |c| {
                if !set_service_token(c, provider, service_id, &hash)? {
                    return Ok(None);
                }
                Ok(service(c, provider, service_id)?)
            })
            .await
    }

    /// What `POST /Services` checks, in one statement: the client owning the provider, its
    /// service and, when the request names a user, whether and how `client` may reach them.
    pub async fn request_facts(
        &self,
        provider_id: i64,
        service_id: i32,
        user: Option<String>,
        client: ClientId,
    ) -> Result<(Option<String>, Option<ServiceRow>, Option<Destination>), StorageError> {
        self.db
            .run(move |c| {
                let lines = request_lines(c, provider_id, service_id, user.as_deref().unwrap_or_default(), &client)?;
                let first = lines.first();
                let owner = first.and_then(|l| l.provider_client.clone());
                let service = first.and_then(|l| l.service(provider_id, service_id));
                let destination = user
                    .as_ref()
                    .map(|_| destination::from_lines(lines.into_iter().map(|l| l.line).collect()));
                Ok((owner, service, destination))
            })
            .await
    }

    /// What the tries of claimed notifications need, in one statement (see [`context_lines`]).
    pub async fn try_contexts(&self, ids: Vec<String>) -> Result<Vec<ContextLine>, StorageError> {
        self.db.run(move |c| Ok(context_lines(c, &ids)?)).await
    }

    /// The notifications `client` accepted under `references`.
    pub async fn by_references(
        &self,
        client: ClientId,
        references: Vec<String>,
    ) -> Result<Vec<NotificationRow>, StorageError> {
        self.db.run(move |c| Ok(by_references(c, &client, &references)?)).await
    }

    /// A notification and every try of it.
    pub async fn notification_with_sends(
        &self,
        id: String,
    ) -> Result<Option<(NotificationRow, Vec<SendRow>)>, StorageError> {
        self.db
            .run(move |c| {
                let Some(row) = notification(c, &id)? else {
                    return Ok(None);
                };
                let sends = sends_of(c, &row.id)?;
                Ok(Some((row, sends)))
            })
            .await
    }

    /// Claims up to `limit` due notifications until `lease_until`, in one transaction.
    pub async fn claim(&self, now: i64, lease_until: i64, limit: i64) -> Result<Vec<NotificationRow>, StorageError> {
        self.db
            .transaction(move |c| {
                let ids = claim(c, now, lease_until, limit)?;
                Ok(if ids.is_empty() { Vec::new() } else { claimed(c, &ids)? })
            })
            .await
    }

    pub async fn due_count(&self, now: i64) -> Result<i64, StorageError> {
        self.db.run(move |c| Ok(due_count(c, now)?)).await
    }

    pub async fn purge(&self, before: i64) -> Result<usize, StorageError> {
        self.db.run(move |c| Ok(purge(c, before)?)).await
    }

    pub async fn preferences(&self, user: UserId) -> Result<Option<(String, i64)>, StorageError> {
        self.db.run(move |c| Ok(preferences(c, &user)?)).await
    }

    /// Stores `user`'s document after `previous`; false when another write came first.
    pub async fn put_preferences(
        &self,
        user: UserId,
        document: String,
        previous: i64,
        now: i64,
    ) -> Result<bool, StorageError> {
        self.db
            .run(move |c| Ok(put_preferences(c, &user, &document, previous, now)?))
            .await
    }

    pub async fn register_device(&self, row: DeviceRow) -> Result<DeviceRow, StorageError> {
        self.db.transaction(move |c| Ok(register_device(c, &row)?)).await
    }

    pub async fn devices_of(&self, user: UserId) -> Result<Vec<DeviceRow>, StorageError> {
        self.db.run(move |c| Ok(devices_of(c, &user)?)).await
    }

    pub async fn delete_device(&self, user: UserId, id: String) -> Result<bool, StorageError> {
        self.db.run(move |c| Ok(delete_device(c, &user, &id)?)).await
    }

    pub async fn inbox_of(
        &self,
        user: UserId,
        unread_only: bool,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<InboxRow>, i64), StorageError> {
        self.db
            .run(move |c| Ok(inbox_of(c, &user, unread_only, offset, limit)?))
            .await
    }

    pub async fn mark_read(&self, user: UserId, id: String, now: i64) -> Result<Option<InboxRow>, StorageError> {
        self.db.run(move |c| Ok(mark_read(c, &user, &id, now)?)).await
    }
}

// Applications, consents, recipients: projections of auth's and user-profile's events.

pub fn upsert_application(c: &mut AnyConnection, client: &str, owner: &str) -> QueryResult<()> {
    diesel::delete(applications::table.find(client)).execute(c)?;
    diesel::insert_into(applications::table)
        .values((applications::client_id.eq(client), applications::owner_id.eq(owner)))
        .execute(c)
        .map(drop)
}

pub fn owner_of(c: &mut AnyConnection, client: &str) -> QueryResult<Option<String>> {
    applications::table
        .find(client)
        .select(applications::owner_id)
        .first(c)
        .optional()
}

/// Forgets an application, its provider and the provider's services (their tokens stop
/// working at once), and the consents it had.
pub fn delete_application(c: &mut AnyConnection, client: &str) -> QueryResult<()> {
    if let Some(provider) = provider_of_client(c, client)? {
        diesel::delete(services::table.filter(services::provider_id.eq(provider.provider_id))).execute(c)?;
        diesel::delete(providers::table.find(provider.provider_id)).execute(c)?;
    }
    consents::forget_client(c, client)?;
    diesel::delete(applications::table.find(client)).execute(c).map(drop)
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = recipients)]
pub struct RecipientRow {
    pub user_id: UserId,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// A registered user, with their e-mail address (a phone number already known stays).
pub fn register_recipient(c: &mut AnyConnection, user: &str, email: &str) -> QueryResult<()> {
    let changed = diesel::update(recipients::table.find(user))
        .set(recipients::email.eq(Some(email)))
        .execute(c)?;
    if changed == 0 {
        diesel::insert_into(recipients::table)
            .values((recipients::user_id.eq(user), recipients::email.eq(Some(email))))
            .execute(c)?;
    }
    Ok(())
}

/// A user's phone number changed (or was removed); a user not yet known is added.
pub fn set_phone(c: &mut AnyConnection, user: &str, phone: Option<&str>) -> QueryResult<()> {
    let changed = diesel::update(recipients::table.find(user))
        .set(recipients::phone.eq(phone))
        .execute(c)?;
    if changed == 0 {
        diesel::insert_into(recipients::table)
            .values((recipients::user_id.eq(user), recipients::phone.eq(phone)))
            .execute(c)?;
    }
    Ok(())
}

/// A line of a destination as [`request_lines`] and [`context_lines`] read it (a line per
/// device, at least one): the user's contact points, the application's consent and the
/// preferences (alike on every line), and one device token.
#[derive(QueryableByName)]
pub struct DestinationLine {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub known: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub email: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub phone: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub scopes: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub document: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub token: Option<String>,
}

/// A line of [`request_lines`]: the provider's owner and the service (alike on every line),
/// and a line of the destination.
#[derive(QueryableByName)]
pub struct RequestLine {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    provider_client: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    name: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    kinds: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    channels: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    rate_limit: Option<i32>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    token_hash: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    service_created_at: Option<i64>,
    #[diesel(embed)]
    line: DestinationLine,
}

impl RequestLine {
    fn service(&self, provider_id: i64, service_id: i32) -> Option<ServiceRow> {
        Some(ServiceRow {
            provider_id,
            service_id,
            name: self.name.clone()?,
            kinds: self.kinds.clone()?,
            channels: self.channels.clone()?,
            rate_limit: self.rate_limit,
            token_hash: self.token_hash.clone()?,
            created_at: self.service_created_at?,
        })
    }
}

/// Everything `POST /Services` checks in one statement: it is read for every request.
pub fn request_lines(
    c: &mut AnyConnection,
    provider_id: i64,
    service_id: i32,
    user: &str,
    client: &str,
) -> QueryResult<Vec<RequestLine>> {
    // On every request: prepared once per connection, so it is not parsed each time.
    storage::Prepared::new(
        "SELECT pr.client_id AS provider_client, s.name, s.kinds, s.channels, s.rate_limit, s.token_hash, \
         s.created_at AS service_created_at, \
         r.user_id IS NOT NULL AS known, r.email, r.phone, c.scopes, p.document, d.token \
         FROM (SELECT CAST(? AS TEXT) AS id) u \
         LEFT JOIN consents c ON c.user_id = u.id AND c.client_id = ? \
         LEFT JOIN providers pr ON pr.provider_id = ? \
         LEFT JOIN services s ON s.provider_id = ? AND s.service_id = ? \
         LEFT JOIN recipients r ON r.user_id = u.id \
         LEFT JOIN preferences p ON p.user_id = u.id \
         LEFT JOIN devices d ON d.user_id = u.id \
         ORDER BY d.created_at",
    )
    .text(user)
    .text(client)
    .big_int(provider_id)
    .big_int(provider_id)
    .integer(service_id)
    .load(c)
}

/// A line of [`context_lines`]: a claimed notification's service channels (`None` once the
/// service is gone, or for the platform's own mail) and a line of its destination.
#[derive(QueryableByName)]
pub struct ContextLine {
    #[diesel(sql_type = Text)]
    pub notification_id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub channels: Option<String>,
    #[diesel(embed)]
    pub line: DestinationLine,
}

/// What the tries of claimed notifications need, in one statement for them all: the
/// destination of each, with its service's channels.
pub fn context_lines(c: &mut AnyConnection, ids: &[String]) -> QueryResult<Vec<ContextLine>> {
    let mut lines = Vec::new();
    for chunk in ids.chunks(200) {
        let mut query = diesel::sql_query(format!(
            "SELECT n.id AS notification_id, s.channels, r.user_id IS NOT NULL AS known, r.email, r.phone, \
             c.scopes, p.document, d.token \
             FROM notifications n \
             LEFT JOIN services s ON s.provider_id = n.provider_id AND s.service_id = n.service_id \
             LEFT JOIN recipients r ON r.user_id = n.user_id \
             LEFT JOIN consents c ON c.user_id = n.user_id AND c.client_id = n.client_id \
             LEFT JOIN preferences p ON p.user_id = n.user_id \
             LEFT JOIN devices d ON d.user_id = n.user_id \
             WHERE n.id IN ({}) ORDER BY n.id, d.created_at",
            storage::placeholders(chunk.len(), 1)
        ))
        .into_boxed::<storage::MultiBackend>();
        for id in chunk {
            query = query.bind::<Text, _>(id.as_str());
        }
        lines.extend(query.load::<ContextLine>(c)?);
    }
    Ok(lines)
}

pub fn recipient(c: &mut AnyConnection, user: &str) -> QueryResult<Option<RecipientRow>> {
    recipients::table
        .find(user)
        .select(RecipientRow::as_select())
        .first(c)
        .optional()
}

/// Fails the notifications not yet sent to `user` (from `client` only, when given) for
/// `reason`; they come back, for their events.
pub fn fail_queued(
    c: &mut AnyConnection,
    user: &str,
    client: Option<&str>,
    reason: &str,
    now: i64,
) -> QueryResult<Vec<NotificationRow>> {
    let pending: Vec<NotificationRow> = joined()
        .filter(notifications::user_id.eq(user))
        .filter(notifications::status.eq(QUEUED))
        .select(both())
        .load(c)
        .map(rows)?
        .into_iter()
        .filter(|row| client.is_none_or(|client| row.client_id == client))
        .collect();
    diesel::update(
        notifications::table
            .filter(notifications::id.eq_any(pending.iter().map(|row| row.id.as_str())))
            .filter(notifications::status.eq(QUEUED)),
    )
    .set((
        notifications::status.eq(FAILED),
        notifications::reason.eq(Some(reason)),
        notifications::lease_until.eq(0),
        notifications::updated_at.eq(now),
    ))
    .execute(c)?;
    Ok(pending)
}

/// Forgets a deleted user: contact points, devices, preferences, consents, inbox. Their
/// notifications not yet sent fail; the ids of those come back, for their events.
pub fn forget_user(c: &mut AnyConnection, user: &str, now: i64) -> QueryResult<Vec<NotificationRow>> {
    let pending = fail_queued(c, user, None, "user_deleted", now)?;
    diesel::delete(recipients::table.find(user)).execute(c)?;
    diesel::delete(devices::table.filter(devices::user_id.eq(user))).execute(c)?;
    diesel::delete(preferences::table.find(user)).execute(c)?;
    consents::forget_user(c, user)?;
    diesel::delete(inbox::table.filter(inbox::user_id.eq(user))).execute(c)?;
    Ok(pending)
}

// Providers and their services.

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = providers)]
pub struct ProviderRow {
    pub provider_id: i64,
    pub client_id: ClientId,
    pub created_at: i64,
}

pub fn insert_provider(c: &mut AnyConnection, row: &ProviderRow) -> QueryResult<()> {
    diesel::insert_into(providers::table).values(row).execute(c).map(drop)
}

pub fn provider(c: &mut AnyConnection, id: i64) -> QueryResult<Option<ProviderRow>> {
    providers::table
        .find(id)
        .select(ProviderRow::as_select())
        .first(c)
        .optional()
}

pub fn provider_of_client(c: &mut AnyConnection, client: &str) -> QueryResult<Option<ProviderRow>> {
    providers::table
        .filter(providers::client_id.eq(client))
        .select(ProviderRow::as_select())
        .first(c)
        .optional()
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = services)]
pub struct ServiceRow {
    pub provider_id: i64,
    pub service_id: i32,
    pub name: String,
    /// Space-separated kinds (`notification qr_code`).
    pub kinds: String,
    /// Space-separated channels, in the order fallbacks take them (`FCM SMS`).
    pub channels: String,
    /// Accepted requests per second at most.
    pub rate_limit: Option<i32>,
    pub token_hash: String,
    pub created_at: i64,
}

/// The next service id of `provider` (1, 2, …).
pub fn next_service_id(c: &mut AnyConnection, provider: i64) -> QueryResult<i32> {
    let max: Option<i32> = services::table
        .filter(services::provider_id.eq(provider))
        .select(diesel::dsl::max(services::service_id))
        .first(c)?;
    Ok(max.unwrap_or(0) + 1)
}

pub fn service_count(c: &mut AnyConnection, provider: i64) -> QueryResult<i64> {
    services::table
        .filter(services::provider_id.eq(provider))
        .count()
        .get_result(c)
}

pub fn insert_service(c: &mut AnyConnection, row: &ServiceRow) -> QueryResult<()> {
    diesel::insert_into(services::table).values(row).execute(c).map(drop)
}

pub fn service(c: &mut AnyConnection, provider: i64, id: i32) -> QueryResult<Option<ServiceRow>> {
    services::table
        .find((provider, id))
        .select(ServiceRow::as_select())
        .first(c)
        .optional()
}

pub fn services_of(c: &mut AnyConnection, provider: i64) -> QueryResult<Vec<ServiceRow>> {
    services::table
        .filter(services::provider_id.eq(provider))
        .order(services::service_id)
        .select(ServiceRow::as_select())
        .load(c)
}

pub fn set_service_token(c: &mut AnyConnection, provider: i64, id: i32, hash: &str) -> QueryResult<bool> {
    let changed = diesel::update(services::table.find((provider, id)))
        .set(services::token_hash.eq(hash))
        .execute(c)?;
    Ok(changed == 1)
}

// Notifications.

/// A notification: what it says (`contents`, as accepted) and how far it got
/// (`notifications`, the queue), read and written together.
#[derive(Debug, Clone)]
pub struct NotificationRow {
    pub id: String,
    pub client_id: ClientId,
    pub provider_id: i64,
    pub service_id: i32,
    pub user_id: UserId,
    pub kind: String,
    pub title: String,
    pub message: String,
    pub link: Option<String>,
    pub picture: Option<String>,
    pub qr_code: Option<String>,
    /// The channel asked for.
    pub channel: String,
    pub urgent: bool,
    /// `<idempotency key>#<kind>`, unique per application.
    pub reference: Option<String>,
    /// SHA-256 of the request: a repeated key with another request is a conflict.
    pub fingerprint: String,
    pub status: String,
    pub reason: Option<String>,
    pub channel_used: Option<String>,
    pub sent_by: Option<String>,
    pub external_id: Option<String>,
    pub attempts: i32,
    pub due_at: i64,
    pub lease_until: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = notifications)]
struct StateRow {
    id: String,
    client_id: ClientId,
    provider_id: i64,
    service_id: i32,
    user_id: UserId,
    status: String,
    reason: Option<String>,
    channel_used: Option<String>,
    sent_by: Option<String>,
    external_id: Option<String>,
    attempts: i32,
    due_at: i64,
    lease_until: i64,
    created_at: i64,
    updated_at: i64,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = contents)]
struct ContentRow {
    id: String,
    client_id: ClientId,
    kind: String,
    title: String,
    message: String,
    link: Option<String>,
    picture: Option<String>,
    qr_code: Option<String>,
    channel: String,
    urgent: bool,
    reference: Option<String>,
    fingerprint: String,
}

impl From<(StateRow, ContentRow)> for NotificationRow {
    fn from((s, c): (StateRow, ContentRow)) -> Self {
        Self {
            id: s.id,
            client_id: s.client_id,
            provider_id: s.provider_id,
            service_id: s.service_id,
            user_id: s.user_id,
            kind: c.kind,
            title: c.title,
            message: c.message,
            link: c.link,
            picture: c.picture,
            qr_code: c.qr_code,
            channel: c.channel,
            urgent: c.urgent,
            reference: c.reference,
            fingerprint: c.fingerprint,
            status: s.status,
            reason: s.reason,
            channel_used: s.channel_used,
            sent_by: s.sent_by,
            external_id: s.external_id,
            attempts: s.attempts,
            due_at: s.due_at,
            lease_until: s.lease_until,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

impl NotificationRow {
    fn split(&self) -> (StateRow, ContentRow) {
        let r = self.clone();
        (
            StateRow {
                id: r.id.clone(),
                client_id: r.client_id.clone(),
                provider_id: r.provider_id,
                service_id: r.service_id,
                user_id: r.user_id,
                status: r.status,
                reason: r.reason,
                channel_used: r.channel_used,
                sent_by: r.sent_by,
                external_id: r.external_id,
                attempts: r.attempts,
                due_at: r.due_at,
                lease_until: r.lease_until,
                created_at: r.created_at,
                updated_at: r.updated_at,
            },
            ContentRow {
                id: r.id,
                client_id: r.client_id,
                kind: r.kind,
                title: r.title,
                message: r.message,
                link: r.link,
                picture: r.picture,
                qr_code: r.qr_code,
                channel: r.channel,
                urgent: r.urgent,
                reference: r.reference,
                fingerprint: r.fingerprint,
            },
        )
    }
}

type Joined = diesel::dsl::InnerJoin<notifications::table, contents::table>;

fn joined() -> Joined {
    notifications::table.inner_join(contents::table)
}

type Both = (
    diesel::dsl::AsSelect<StateRow, storage::MultiBackend>,
    diesel::dsl::AsSelect<ContentRow, storage::MultiBackend>,
);

fn both() -> Both {
    (StateRow::as_select(), ContentRow::as_select())
}

fn rows(found: Vec<(StateRow, ContentRow)>) -> Vec<NotificationRow> {
    found.into_iter().map(NotificationRow::from).collect()
}

pub fn insert_notification(c: &mut AnyConnection, row: &NotificationRow) -> QueryResult<()> {
    insert_notifications(c, std::slice::from_ref(row))
}

/// Inserts `rows` in a statement per table (per hundred rows).
pub fn insert_notifications(c: &mut AnyConnection, rows: &[NotificationRow]) -> QueryResult<()> {
    for chunk in rows.chunks(100) {
        let (states, contents): (Vec<StateRow>, Vec<ContentRow>) = chunk.iter().map(NotificationRow::split).unzip();
        // Multi-row VALUES is each backend's own (diesel's multi-backend has no batch insert).
        match c {
            AnyConnection::Postgresql(pg) => {
                diesel::insert_into(contents::table).values(&contents).execute(pg)?;
                diesel::insert_into(notifications::table).values(&states).execute(pg)?;
            }
            AnyConnection::Sqlite(sqlite) => {
                diesel::insert_into(contents::table).values(&contents).execute(sqlite)?;
                diesel::insert_into(notifications::table)
                    .values(&states)
                    .execute(sqlite)?;
            }
        }
    }
    Ok(())
}

pub fn notification(c: &mut AnyConnection, id: &str) -> QueryResult<Option<NotificationRow>> {
    let found: Option<(StateRow, ContentRow)> = joined()
        .filter(notifications::id.eq(id))
        .select(both())
        .first(c)
        .optional()?;
    Ok(found.map(NotificationRow::from))
}

/// A service's latest notifications, newest first.
pub fn recent_of_service(
    c: &mut AnyConnection,
    provider: i64,
    service: i32,
    limit: i64,
) -> QueryResult<Vec<NotificationRow>> {
    joined()
        .filter(notifications::provider_id.eq(provider))
        .filter(notifications::service_id.eq(service))
        .order(notifications::created_at.desc())
        .limit(limit)
        .select(both())
        .load(c)
        .map(rows)
}

/// The notifications an earlier request with these references made, oldest first.
pub fn by_references(c: &mut AnyConnection, client: &str, references: &[String]) -> QueryResult<Vec<NotificationRow>> {
    joined()
        .filter(contents::client_id.eq(client))
        .filter(contents::reference.eq_any(references))
        .order(notifications::id)
        .select(both())
        .load(c)
        .map(rows)
}

#[derive(Debug, QueryableByName)]
struct ClaimedId {
    #[diesel(sql_type = Text)]
    id: String,
}

/// Claims up to `limit` queued notifications due at `now` until `lease_until`, oldest due
/// first; in a transaction. On PostgreSQL rows another replica is claiming are skipped and the
/// lease is checked again under the lock, so none is claimed twice.
pub fn claim(c: &mut AnyConnection, now: i64, lease_until: i64, limit: i64) -> QueryResult<Vec<String>> {
    let lock = match c {
        AnyConnection::Postgresql(_) => {
            // Every notification sent leaves a dead entry in the index of those due until
            // VACUUM. A bitmap scan visits them all, each claim, ever more under load; an index
            // scan marks each dead the first time it passes it, and stops at the limit.
            diesel::sql_query("SET LOCAL enable_bitmapscan = off").execute(c)?;
            "FOR UPDATE SKIP LOCKED"
        }
        AnyConnection::Sqlite(_) => "",
    };
    let sql = format!(
        "UPDATE notifications SET lease_until = $1 WHERE status = 'queued' AND lease_until <= $2 AND id IN ( \
           SELECT id FROM notifications WHERE status = 'queued' AND due_at <= $2 AND lease_until <= $2 \
           ORDER BY due_at LIMIT $3 {lock} \
         ) RETURNING id"
    );
    let rows: Vec<ClaimedId> = diesel::sql_query(sql)
        .bind::<BigInt, _>(lease_until)
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(limit)
        .load(c)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

pub fn claimed(c: &mut AnyConnection, ids: &[String]) -> QueryResult<Vec<NotificationRow>> {
    joined()
        .filter(notifications::id.eq_any(ids))
        .select(both())
        .load(c)
        .map(rows)
}

/// What a try changed of notification `id`: the new status, and what the row learns.
#[derive(Debug, Clone)]
pub struct Settled {
    pub id: String,
    pub status: &'static str,
    pub reason: Option<String>,
    pub channel_used: Option<&'static str>,
    pub sent_by: Option<String>,
    pub external_id: Option<String>,
    pub attempts: i32,
    pub due_at: i64,
}

/// Records tries' outcomes and releases their leases, in one statement per two hundred.
pub fn settle_all(c: &mut AnyConnection, rows: &[Settled], now: i64) -> QueryResult<()> {
    use diesel::sql_types::{Integer, Nullable};
    for chunk in rows.chunks(200) {
        let mut query = diesel::sql_query(format!(
            "WITH v (id, status, reason, channel_used, sent_by, external_id, attempts, due_at) AS (VALUES {}) \
             UPDATE notifications SET status = v.status, reason = v.reason, channel_used = v.channel_used, \
             sent_by = v.sent_by, external_id = v.external_id, attempts = v.attempts, due_at = v.due_at, \
             lease_until = 0, updated_at = ${} FROM v WHERE notifications.id = v.id",
            storage::placeholders(chunk.len(), 8),
            chunk.len() * 8 + 1
        ))
        .into_boxed::<storage::MultiBackend>();
        for r in chunk {
            query = query
                .bind::<Text, _>(r.id.as_str())
                .bind::<Text, _>(r.status)
                .bind::<Nullable<Text>, _>(r.reason.as_deref())
                .bind::<Nullable<Text>, _>(r.channel_used)
                .bind::<Nullable<Text>, _>(r.sent_by.as_deref())
                .bind::<Nullable<Text>, _>(r.external_id.as_deref())
                .bind::<Integer, _>(r.attempts)
                .bind::<BigInt, _>(r.due_at);
        }
        query.bind::<BigInt, _>(now).execute(c)?;
    }
    Ok(())
}

/// Puts a claimed notification back, untried, until `at` (quiet hours, a rate limit). One that
/// failed meanwhile (its consent was withdrawn while the dispatcher decided) keeps its reason.
pub fn postpone(c: &mut AnyConnection, id: &str, at: i64, reason: &str, now: i64) -> QueryResult<()> {
    diesel::update(notifications::table.find(id).filter(notifications::status.eq(QUEUED)))
        .set((
            notifications::due_at.eq(at),
            notifications::reason.eq(Some(reason)),
            notifications::lease_until.eq(0),
            notifications::updated_at.eq(now),
        ))
        .execute(c)
        .map(drop)
}

/// The `sent` notifications the receipts are for (each by its provider's message id, with the
/// receipt's status when it says the message failed) marked delivered, or failed; those found,
/// as they were, each with the reason it failed for (`undelivered: <status>`).
pub fn receipted(
    c: &mut AnyConnection,
    receipts: &[(String, Option<String>)],
    now: i64,
) -> QueryResult<Vec<(NotificationRow, Option<String>)>> {
    let failures: HashMap<&str, Option<&str>> = receipts
        .iter()
        .map(|(id, failure)| (id.as_str(), failure.as_deref()))
        .collect();
    let found = rows(
        joined()
            .filter(notifications::external_id.eq_any(failures.keys().copied()))
            .filter(notifications::status.eq(SENT))
            .select(both())
            .load::<(StateRow, ContentRow)>(c)?,
    );
    let found: Vec<(NotificationRow, Option<String>)> = found
        .into_iter()
        .map(|row| {
            let failure = row
                .external_id
                .as_deref()
                .and_then(|id| failures.get(id).copied().flatten());
            (row, failure.map(|stat| format!("undelivered: {stat}")))
        })
        .collect();
    let delivered: Vec<&str> = found
        .iter()
        .filter(|(_, failure)| failure.is_none())
        .map(|(row, _)| row.id.as_str())
        .collect();
    if !delivered.is_empty() {
        diesel::update(notifications::table.filter(notifications::id.eq_any(delivered)))
            .set((
                notifications::status.eq(DELIVERED),
                notifications::reason.eq(None::<String>),
                notifications::updated_at.eq(now),
            ))
            .execute(c)?;
    }
    for (row, failure) in &found {
        if let Some(reason) = failure {
            diesel::update(notifications::table.find(&row.id))
                .set((
                    notifications::status.eq(FAILED),
                    notifications::reason.eq(reason),
                    notifications::updated_at.eq(now),
                ))
                .execute(c)?;
        }
    }
    Ok(found)
}

/// Queued notifications due now and not claimed: the backlog the metrics show.
pub fn due_count(c: &mut AnyConnection, now: i64) -> QueryResult<i64> {
    notifications::table
        .filter(notifications::status.eq(QUEUED))
        .filter(notifications::due_at.le(now))
        .count()
        .get_result(c)
}

/// Deletes notifications accepted before `before`, with their sends and inbox entries.
pub fn purge(c: &mut AnyConnection, before: i64) -> QueryResult<usize> {
    for (table, column) in [
        ("sends", "notification_id"),
        ("inbox", "notification_id"),
        ("contents", "id"),
    ] {
        diesel::sql_query(format!(
            "DELETE FROM {table} WHERE {column} IN (SELECT id FROM notifications WHERE created_at < $1)"
        ))
        .bind::<BigInt, _>(before)
        .execute(c)?;
    }
    diesel::delete(notifications::table.filter(notifications::created_at.lt(before))).execute(c)
}

// Sends: the log of tries.

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sends)]
pub struct SendRow {
    pub id: String,
    pub notification_id: String,
    pub channel: String,
    pub provider: String,
    pub attempted_at: i64,
    pub duration_ms: i64,
    /// `sent`, `recorded` (sandbox), `failed`, `rejected`, `unreachable`.
    pub outcome: String,
    pub error: Option<String>,
}

pub fn insert_sends(c: &mut AnyConnection, rows: &[SendRow]) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    match c {
        AnyConnection::Postgresql(pg) => diesel::insert_into(sends::table).values(rows).execute(pg),
        AnyConnection::Sqlite(sqlite) => diesel::insert_into(sends::table).values(rows).execute(sqlite),
    }
    .map(drop)
}

pub fn sends_of(c: &mut AnyConnection, notification: &str) -> QueryResult<Vec<SendRow>> {
    sends::table
        .filter(sends::notification_id.eq(notification))
        .order((sends::attempted_at, sends::id))
        .select(SendRow::as_select())
        .load(c)
}

// Preferences.

/// A user's stored document and its version.
pub fn preferences(c: &mut AnyConnection, user: &str) -> QueryResult<Option<(String, i64)>> {
    preferences::table
        .find(user)
        .select((preferences::document, preferences::version))
        .first(c)
        .optional()
}

/// Stores a document as `version` (the one after `previous`, 0 for none); false when another
/// write came first.
pub fn put_preferences(
    c: &mut AnyConnection,
    user: &str,
    document: &str,
    previous: i64,
    now: i64,
) -> QueryResult<bool> {
    if previous == 0 {
        let inserted = diesel::insert_into(preferences::table)
            .values((
                preferences::user_id.eq(user),
                preferences::document.eq(document),
                preferences::version.eq(1),
                preferences::updated_at.eq(now),
            ))
            .execute(c);
        return match inserted {
            Ok(_) => Ok(true),
            Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => {
                Ok(false)
            }
            Err(e) => Err(e),
        };
    }
    let changed = diesel::update(preferences::table.find(user).filter(preferences::version.eq(previous)))
        .set((
            preferences::document.eq(document),
            preferences::version.eq(previous + 1),
            preferences::updated_at.eq(now),
        ))
        .execute(c)?;
    Ok(changed == 1)
}

// Devices.

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = devices)]
pub struct DeviceRow {
    pub id: String,
    pub user_id: UserId,
    pub client_id: ClientId,
    pub token: String,
    pub platform: String,
    pub created_at: i64,
}

/// Registers a device token for `row.user_id`; a token already registered moves to this user
/// and app (a phone changes hands, an app reinstalls). The stored row comes back.
pub fn register_device(c: &mut AnyConnection, row: &DeviceRow) -> QueryResult<DeviceRow> {
    diesel::delete(devices::table.filter(devices::token.eq(&row.token))).execute(c)?;
    diesel::insert_into(devices::table).values(row).execute(c)?;
    Ok(row.clone())
}

pub fn devices_of(c: &mut AnyConnection, user: &str) -> QueryResult<Vec<DeviceRow>> {
    devices::table
        .filter(devices::user_id.eq(user))
        .order(devices::created_at)
        .select(DeviceRow::as_select())
        .load(c)
}

pub fn delete_device(c: &mut AnyConnection, user: &str, id: &str) -> QueryResult<bool> {
    let deleted = diesel::delete(devices::table.find(id).filter(devices::user_id.eq(user))).execute(c)?;
    Ok(deleted == 1)
}

/// Removes tokens a push provider said are no longer registered.
pub fn delete_tokens(c: &mut AnyConnection, tokens: &[String]) -> QueryResult<usize> {
    diesel::delete(devices::table.filter(devices::token.eq_any(tokens))).execute(c)
}

// The inbox.

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = inbox)]
pub struct InboxRow {
    pub id: String,
    pub user_id: UserId,
    pub notification_id: String,
    pub provider_id: i64,
    pub kind: String,
    /// The channel: `INAPP`, or the one a sandbox stood in for.
    pub channel: String,
    pub title: String,
    pub message: String,
    pub link: Option<String>,
    pub picture: Option<String>,
    pub qr_code: Option<String>,
    /// Recorded by a sandbox provider: this is what would have been sent.
    pub sandbox: bool,
    pub created_at: i64,
    pub read_at: Option<i64>,
}

/// Adds an entry unless the notification already has one for this channel (a retried try).
/// Inserts inbox entries; one a notification already has on its channel is kept.
pub fn insert_inbox(c: &mut AnyConnection, rows: &[InboxRow]) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    // Both backends speak ON CONFLICT; diesel's multi-backend does not.
    match c {
        AnyConnection::Postgresql(pg) => diesel::insert_into(inbox::table)
            .values(rows)
            .on_conflict((inbox::notification_id, inbox::channel))
            .do_nothing()
            .execute(pg),
        AnyConnection::Sqlite(sqlite) => {
            for row in rows {
                diesel::insert_into(inbox::table)
                    .values(row)
                    .on_conflict((inbox::notification_id, inbox::channel))
                    .do_nothing()
                    .execute(sqlite)?;
            }
            Ok(0)
        }
    }
    .map(drop)
}

/// A page of `user`'s inbox, newest first, and its total.
pub fn inbox_of(
    c: &mut AnyConnection,
    user: &str,
    unread_only: bool,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<InboxRow>, i64)> {
    let query = || {
        let mut q = inbox::table.filter(inbox::user_id.eq(user.to_owned())).into_boxed();
        if unread_only {
            q = q.filter(inbox::read_at.is_null());
        }
        q
    };
    let rows = query()
        .order((inbox::created_at.desc(), inbox::id.desc()))
        .offset(offset)
        .limit(limit)
        .select(InboxRow::as_select())
        .load(c)?;
    let total = query().count().get_result(c)?;
    Ok((rows, total))
}

/// Marks an entry read (once); false when the user has no such entry.
pub fn mark_read(c: &mut AnyConnection, user: &str, id: &str, now: i64) -> QueryResult<Option<InboxRow>> {
    diesel::update(
        inbox::table
            .find(id)
            .filter(inbox::user_id.eq(user))
            .filter(inbox::read_at.is_null()),
    )
    .set(inbox::read_at.eq(Some(now)))
    .execute(c)?;
    inbox::table
        .find(id)
        .filter(inbox::user_id.eq(user))
        .select(InboxRow::as_select())
        .first(c)
        .optional()
}
