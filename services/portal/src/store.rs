//! The portal's tables: sessions and sign-ins in progress, and usage. Functions take a
//! connection; [`Store`] runs them for async callers.

use diesel::prelude::*;
use events::Event;
use events::catalogue::UsageReported;
use ids::{ClientId, UserId};
use storage::{AnyConnection, Database, StorageError};

mod schema {
    diesel::table! {
        portal_sessions (id_hash) {
            id_hash -> Text,
            user_id -> Text,
            username -> Text,
            roles -> Text,
            csrf -> Text,
            access_token -> Text,
            refresh_token -> Nullable<Text>,
            access_expires_at -> BigInt,
            created_at -> BigInt,
            expires_at -> BigInt,
        }
    }

    diesel::table! {
        portal_sign_ins (state_hash) {
            state_hash -> Text,
            verifier -> Text,
            return_to -> Text,
            expires_at -> BigInt,
        }
    }
}

use schema::{portal_sessions, portal_sign_ins};

/// No `Debug`: it holds the person's tokens.
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = portal_sessions)]
pub struct SessionRow {
    pub id_hash: String,
    pub user_id: UserId,
    pub username: String,
    /// Space-separated, as auth names them.
    pub roles: String,
    pub csrf: String,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub access_expires_at: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = portal_sign_ins)]
pub struct SignInRow {
    pub state_hash: String,
    pub verifier: String,
    pub return_to: String,
    pub expires_at: i64,
}

/// The portal's tables for async callers: each method is one call on the blocking pool, with
/// owned arguments, so no caller writes a closure or clones to feed one.
#[derive(Clone)]
pub struct Store {
    db: Database,
}

impl Store {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    pub async fn insert_session(&self, row: SessionRow) -> Result<(), StorageError> {
        self.db.run(move |c| Ok(insert_session(c, &row)?)).await
    }

    /// The session, unless it expired by `now`.
    pub async fn session(&self, id_hash: String, now: i64) -> Result<Option<SessionRow>, StorageError> {
        self.db.run(move |c| Ok(session(c, &id_hash, now)?)).await
    }

    pub async fn set_tokens(
        &self,
        id_hash: String,
        access: String,
        refresh: Option<String>,
        access_expires_at: i64,
    ) -> Result<usize, StorageError> {
        self.db
            .run(move |c| Ok(set_tokens(c, &id_hash, &access, refresh.as_deref(), access_expires_at)?))
            .await
    }

    /// Deletes the session and returns it (its tokens are revoked next).
    pub async fn take_session(&self, id_hash: String) -> Result<Option<SessionRow>, StorageError> {
        self.db.run(move |c| Ok(take_session(c, &id_hash)?)).await
    }

    pub async fn insert_sign_in(&self, row: SignInRow) -> Result<(), StorageError> {
        self.db.run(move |c| Ok(insert_sign_in(c, &row)?)).await
    }

    /// A sign-in's row, once, unless it expired by `now`.
    pub async fn take_sign_in(&self, state_hash: String, now: i64) -> Result<Option<SignInRow>, StorageError> {
        self.db.run(move |c| Ok(take_sign_in(c, &state_hash, now)?)).await
    }

    /// Adds the report `event` carries to the totals, once: a redelivered event changes nothing.
    pub async fn add_usage_once(&self, event: Event, report: UsageReported) -> Result<(), StorageError> {
        self.db
            .transaction(move |c| {
                if events::inbox::first_time(c, crate::NAME, &event.id)? {
                    add_usage(c, &report)?;
                }
                Ok(())
            })
            .await
    }

    pub async fn usage_of(&self, client: ClientId, since: String) -> Result<Vec<UsageRow>, StorageError> {
        self.db.run(move |c| Ok(usage_of(c, &client, &since)?)).await
    }

    /// Deletes what expired by `now`: sessions, sign-ins, events seen a week before, and usage
    /// of days before `usage_before`. Returns how many rows went.
    pub async fn purge(&self, now: i64, usage_before: String) -> Result<usize, StorageError> {
        self.db
            .run(move |c| {
                let sessions = purge_expired(c, now)?;
                let seen = events::inbox::purge(c, now - 7 * 86_400_000)?;
                Ok(sessions + seen + purge_usage(c, &usage_before)?)
            })
            .await
    }
}

pub fn insert_session(c: &mut AnyConnection, row: &SessionRow) -> QueryResult<()> {
    diesel::insert_into(portal_sessions::table)
        .values(row)
        .execute(c)
        .map(drop)
}

pub fn session(c: &mut AnyConnection, id_hash: &str, now: i64) -> QueryResult<Option<SessionRow>> {
    portal_sessions::table
        .find(id_hash)
        .filter(portal_sessions::expires_at.gt(now))
        .select(SessionRow::as_select())
        .first(c)
        .optional()
}

pub fn set_tokens(
    c: &mut AnyConnection,
    id_hash: &str,
    access: &str,
    refresh: Option<&str>,
    access_expires_at: i64,
) -> QueryResult<usize> {
    diesel::update(portal_sessions::table.find(id_hash))
        .set((
            portal_sessions::access_token.eq(access),
            portal_sessions::refresh_token.eq(refresh),
            portal_sessions::access_expires_at.eq(access_expires_at),
        ))
        .execute(c)
}

/// Deletes the session and returns it (its tokens are revoked next).
pub fn take_session(c: &mut AnyConnection, id_hash: &str) -> QueryResult<Option<SessionRow>> {
    let row = portal_sessions::table
        .find(id_hash)
        .select(SessionRow::as_select())
        .first(c)
        .optional()?;
    diesel::delete(portal_sessions::table.find(id_hash)).execute(c)?;
    Ok(row)
}

pub fn insert_sign_in(c: &mut AnyConnection, row: &SignInRow) -> QueryResult<()> {
    diesel::insert_into(portal_sign_ins::table)
        .values(row)
        .execute(c)
        .map(drop)
}

/// A sign-in's row, once: a replayed callback finds nothing.
pub fn take_sign_in(c: &mut AnyConnection, state_hash: &str, now: i64) -> QueryResult<Option<SignInRow>> {
    let row = portal_sign_ins::table
        .find(state_hash)
        .filter(portal_sign_ins::expires_at.gt(now))
        .select(SignInRow::as_select())
        .first(c)
        .optional()?;
    let deleted = diesel::delete(portal_sign_ins::table.find(state_hash)).execute(c)?;
    Ok(row.filter(|_| deleted == 1))
}

pub fn purge_expired(c: &mut AnyConnection, now: i64) -> QueryResult<usize> {
    let sessions = diesel::delete(portal_sessions::table.filter(portal_sessions::expires_at.le(now))).execute(c)?;
    let sign_ins = diesel::delete(portal_sign_ins::table.filter(portal_sign_ins::expires_at.le(now))).execute(c)?;
    Ok(sessions + sign_ins)
}

// Usage.

/// One application's usage of one API on one day.
#[derive(Debug, Clone, QueryableByName)]
pub struct UsageRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub api: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub day: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub requests: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub client_errors: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub server_errors: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub buckets: String,
}

const BUCKET_COLUMNS: [&str; 10] = ["b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9"];

/// Adds a gateway's report to the day's totals (`ON CONFLICT … DO UPDATE` is spelled alike in
/// PostgreSQL and SQLite).
pub fn add_usage(c: &mut AnyConnection, report: &UsageReported) -> QueryResult<()> {
    use diesel::sql_types::{BigInt, Text};
    let columns = BUCKET_COLUMNS.join(", ");
    let values: Vec<String> = (7..17).map(|n| format!("${n}")).collect();
    let updates: Vec<String> = BUCKET_COLUMNS
        .iter()
        .map(|b| format!("{b} = usage_daily.{b} + excluded.{b}"))
        .collect();
    let sql = format!(
        "INSERT INTO usage_daily (client_id, api, day, requests, client_errors, server_errors, {columns}) \
         VALUES ($1, $2, $3, $4, $5, $6, {}) ON CONFLICT (client_id, day, api) DO UPDATE SET \
         requests = usage_daily.requests + excluded.requests, \
         client_errors = usage_daily.client_errors + excluded.client_errors, \
         server_errors = usage_daily.server_errors + excluded.server_errors, {}",
        values.join(", "),
        updates.join(", ")
    );
    let bucket = |i: usize| report.latency_buckets.get(i).copied().unwrap_or(0);
    diesel::sql_query(sql)
        .bind::<Text, _>(&report.client_id)
        .bind::<Text, _>(&report.api)
        .bind::<Text, _>(&report.day)
        .bind::<BigInt, _>(report.requests)
        .bind::<BigInt, _>(report.client_errors)
        .bind::<BigInt, _>(report.server_errors)
        .bind::<BigInt, _>(bucket(0))
        .bind::<BigInt, _>(bucket(1))
        .bind::<BigInt, _>(bucket(2))
        .bind::<BigInt, _>(bucket(3))
        .bind::<BigInt, _>(bucket(4))
        .bind::<BigInt, _>(bucket(5))
        .bind::<BigInt, _>(bucket(6))
        .bind::<BigInt, _>(bucket(7))
        .bind::<BigInt, _>(bucket(8))
        .bind::<BigInt, _>(bucket(9))
        .execute(c)
        .map(drop)
}

/// An application's usage from `since` (`YYYY-MM-DD`, inclusive), by day then API; the
/// buckets come space-separated.
pub fn usage_of(c: &mut AnyConnection, client: &str, since: &str) -> QueryResult<Vec<UsageRow>> {
    use diesel::sql_types::Text;
    let buckets = BUCKET_COLUMNS
        .iter()
        .map(|b| format!("CAST({b} AS TEXT)"))
        .collect::<Vec<_>>()
        .join(" || ' ' || ");
    diesel::sql_query(format!(
        "SELECT api, day, requests, client_errors, server_errors, {buckets} AS buckets FROM usage_daily \
         WHERE client_id = $1 AND day >= $2 ORDER BY day, api"
    ))
    .bind::<Text, _>(client)
    .bind::<Text, _>(since)
    .load(c)
}

/// Forgets usage of days before `before` (`YYYY-MM-DD`): the portal shows 30 days.
pub fn purge_usage(c: &mut AnyConnection, before: &str) -> QueryResult<usize> {
    diesel::sql_query("DELETE FROM usage_daily WHERE day < $1")
        .bind::<diesel::sql_types::Text, _>(before)
        .execute(c)
}
