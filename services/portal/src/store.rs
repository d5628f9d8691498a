//! The portal's tables: sessions and sign-ins in progress.

use diesel::prelude::*;
use storage::AnyConnection;

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

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = portal_sessions)]
pub struct SessionRow {
    pub id_hash: String,
    pub user_id: String,
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

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = portal_sign_ins)]
pub struct SignInRow {
    pub state_hash: String,
    pub verifier: String,
    pub return_to: String,
    pub expires_at: i64,
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
