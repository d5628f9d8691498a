//! The profiles table and the queries on it. Functions take a connection, so the domain
//! composes them with the outbox in one transaction; [`Store`] runs them for async callers.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use ids::UserId;
use storage::{AnyConnection, Database, StorageError};

use crate::domain::ProfilePatch;

// Raw SQL: diesel's `table!` stops at 16 columns without a feature that slows every build.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ProfileRow {
    #[diesel(sql_type = Text)]
    pub user_id: ids::UserId,
    #[diesel(sql_type = Text)]
    pub username: String,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub first_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub gender: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub birth_date: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub picture: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub cover: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub relationship: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub biography: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub website: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub nationality: Option<String>,
    /// E.164 (`+5491155550000`).
    #[diesel(sql_type = Nullable<Text>)]
    pub phone: Option<String>,
    #[diesel(sql_type = Text)]
    pub sports: String,
    #[diesel(sql_type = Bool)]
    pub verified: bool,
    #[diesel(sql_type = BigInt)]
    pub registered_at: i64,
    #[diesel(sql_type = BigInt)]
    pub updated_at: i64,
    #[diesel(sql_type = BigInt)]
    pub version: i64,
}

impl ProfileRow {
    /// A new user's profile: only what auth knows.
    pub fn registered(user_id: ids::UserId, username: String, email: String, at: i64) -> Self {
        Self {
            user_id,
            username,
            email,
            first_name: None,
            last_name: None,
            gender: None,
            birth_date: None,
            picture: None,
            cover: None,
            relationship: None,
            biography: None,
            website: None,
            nationality: None,
            phone: None,
            sports: String::new(),
            verified: false,
            registered_at: at,
            updated_at: at,
            version: 1,
        }
    }

    /// This profile with `patch` applied, one version later.
    pub fn patched(&self, patch: ProfilePatch, now: i64) -> Self {
        let mut next = self.clone();
        let fields = [
            (patch.first_name, &mut next.first_name),
            (patch.last_name, &mut next.last_name),
            (patch.gender, &mut next.gender),
            (patch.birth_date, &mut next.birth_date),
            (patch.picture, &mut next.picture),
            (patch.cover, &mut next.cover),
            (patch.relationship, &mut next.relationship),
            (patch.biography, &mut next.biography),
            (patch.website, &mut next.website),
            (patch.nationality, &mut next.nationality),
            (patch.phone, &mut next.phone),
        ];
        for (change, slot) in fields {
            if let Some(value) = change {
                *slot = value;
            }
        }
        if let Some(sports) = patch.sports {
            next.sports = sports;
        }
        next.updated_at = now;
        next.version = self.version + 1;
        next
    }
}

/// The profiles for async callers: each method is one call on the blocking pool, with owned
/// arguments, so no caller writes a closure or clones to feed one.
#[derive(Clone)]
pub struct Store {
    db: Database,
}

impl Store {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    pub async fn profile(&self, user_id: UserId) -> Result<Option<ProfileRow>, StorageError> {
        self.db.run(move |c| Ok(by_id(c, &user_id)?)).await
    }
}

/// Creates the profile unless it exists (a redelivered `user.registered` changes nothing).
pub fn insert_if_absent(conn: &mut AnyConnection, row: &ProfileRow) -> QueryResult<bool> {
    let inserted = diesel::sql_query(
        "INSERT INTO profiles (user_id, username, email, sports, verified, registered_at, updated_at, version) \
         VALUES ($1, $2, $3, '', FALSE, $4, $4, 1) ON CONFLICT DO NOTHING",
    )
    .bind::<Text, _>(&row.user_id)
    .bind::<Text, _>(&row.username)
    .bind::<Text, _>(&row.email)
    .bind::<BigInt, _>(row.registered_at)
    .execute(conn)?;
    Ok(inserted == 1)
}

/// Seed 003's `user_verified`: the person confirmed this address (a later change of address
/// is not confirmed by it).
pub fn set_verified(conn: &mut AnyConnection, user_id: &str, email: &str, now: i64) -> QueryResult<usize> {
    diesel::sql_query(
        // In order of appearance: SQLite binds `$n` by position.
        "UPDATE profiles SET verified = TRUE, updated_at = $1, version = version + 1 \
         WHERE user_id = $2 AND email = $3 AND verified = FALSE",
    )
    .bind::<BigInt, _>(now)
    .bind::<Text, _>(user_id)
    .bind::<Text, _>(email)
    .execute(conn)
}

pub fn by_id(conn: &mut AnyConnection, user_id: &str) -> QueryResult<Option<ProfileRow>> {
    diesel::sql_query("SELECT * FROM profiles WHERE user_id = $1")
        .bind::<Text, _>(user_id)
        .get_result(conn)
        .optional()
}

/// Writes `next` if the stored profile is still at `next.version - 1`; false if it moved on.
pub fn replace(conn: &mut AnyConnection, next: &ProfileRow) -> QueryResult<bool> {
    let updated = diesel::sql_query(
        "UPDATE profiles SET first_name = $1, last_name = $2, gender = $3, birth_date = $4, picture = $5, \
         cover = $6, relationship = $7, biography = $8, website = $9, nationality = $10, phone = $11, \
         sports = $12, updated_at = $13, version = $14 WHERE user_id = $15 AND version = $16",
    )
    .bind::<Nullable<Text>, _>(&next.first_name)
    .bind::<Nullable<Text>, _>(&next.last_name)
    .bind::<Nullable<Text>, _>(&next.gender)
    .bind::<Nullable<Text>, _>(&next.birth_date)
    .bind::<Nullable<Text>, _>(&next.picture)
    .bind::<Nullable<Text>, _>(&next.cover)
    .bind::<Nullable<Text>, _>(&next.relationship)
    .bind::<Nullable<Text>, _>(&next.biography)
    .bind::<Nullable<Text>, _>(&next.website)
    .bind::<Nullable<Text>, _>(&next.nationality)
    .bind::<Nullable<Text>, _>(&next.phone)
    .bind::<Text, _>(&next.sports)
    .bind::<BigInt, _>(next.updated_at)
    .bind::<BigInt, _>(next.version)
    .bind::<Text, _>(&next.user_id)
    .bind::<BigInt, _>(next.version - 1)
    .execute(conn)?;
    Ok(updated == 1)
}

pub fn delete(conn: &mut AnyConnection, user_id: &str) -> QueryResult<usize> {
    diesel::sql_query("DELETE FROM profiles WHERE user_id = $1")
        .bind::<Text, _>(user_id)
        .execute(conn)
}
