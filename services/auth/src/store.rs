//! The auth database: tables and the queries on them. Functions take a connection, so the
//! domain composes them in one transaction (with the outbox); everyone else calls [`Store`].

use diesel::prelude::*;
use ids::{ClientId, Jti, UserId};
use storage::{AnyConnection, Database, StorageError};

use crate::domain::{Role, format_roles, parse_roles};

pub mod schema {
    diesel::table! {
        users (id) {
            id -> Text,
            username -> Text,
            email -> Text,
            password_hash -> Text,
            roles -> Text,
            group_id -> Integer,
            created_at -> BigInt,
        }
    }

    diesel::table! {
        clients (id) {
            id -> Text,
            secret_hash -> Nullable<Text>,
            name -> Text,
            owner_id -> Text,
            redirect_uris -> Text,
            grant_types -> Text,
            scopes -> Text,
            created_at -> BigInt,
            secret_rotated_at -> BigInt,
            allowed_networks -> Text,
            previous_secret_hash -> Nullable<Text>,
            previous_secret_expires_at -> Nullable<BigInt>,
            first_party -> Bool,
        }
    }

    diesel::table! {
        signing_keys (kid) {
            kid -> Text,
            algorithm -> Text,
            private_pem -> Text,
            public_jwk -> Text,
            created_at -> BigInt,
            retired_at -> Nullable<BigInt>,
        }
    }

    diesel::table! {
        refresh_tokens (token_hash) {
            token_hash -> Text,
            family_id -> Text,
            client_id -> Text,
            user_id -> Nullable<Text>,
            scope -> Text,
            created_at -> BigInt,
            expires_at -> BigInt,
            used_at -> Nullable<BigInt>,
            revoked_at -> Nullable<BigInt>,
        }
    }

    diesel::table! {
        revoked_tokens (jti) {
            jti -> Text,
            client_id -> Text,
            expires_at -> BigInt,
        }
    }
}

use schema::{clients, refresh_tokens, revoked_tokens, signing_keys, users};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub roles: String,
    pub group_id: i32,
    pub created_at: i64,
}

/// The owner of the clients the platform configures itself (no user owns them).
pub fn platform_owner() -> UserId {
    ids::literal!(UserId, "platform")
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = clients)]
pub struct ClientRow {
    pub id: ClientId,
    pub secret_hash: Option<String>,
    pub name: String,
    pub owner_id: UserId,
    pub redirect_uris: String,
    pub grant_types: String,
    pub scopes: String,
    pub created_at: i64,
    pub secret_rotated_at: i64,
    /// CIDR networks, space-separated; empty: any.
    pub allowed_networks: String,
    /// The secret a rotation replaced, accepted until `previous_secret_expires_at` (ms).
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    /// One of the platform's own clients: consent is implied.
    pub first_party: bool,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct KeyRow {
    pub kid: String,
    pub algorithm: String,
    pub private_pem: String,
    pub public_jwk: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshRow {
    pub token_hash: String,
    pub family_id: String,
    pub client_id: ClientId,
    pub user_id: Option<UserId>,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ClientRow {
    /// Whether the client may use `grant` (grant types are stored space-separated).
    pub fn allows(&self, grant: crate::domain::GrantType) -> bool {
        self.grant_types.split(' ').any(|g| g == grant.as_str())
    }

    /// The scopes the client may be granted.
    pub fn scopes(&self) -> crate::domain::Scopes {
        crate::domain::Scopes::parse(&self.scopes).unwrap_or_default()
    }

    /// Whether `secret` is the client's secret, or the one it replaced while that overlaps.
    pub fn secret_matches(&self, secret: &str, now: i64) -> bool {
        let current = self
            .secret_hash
            .as_deref()
            .is_some_and(|hash| crate::crypto::secret_matches(secret, hash));
        let previous = self
            .previous_secret_hash
            .as_deref()
            .filter(|_| self.previous_secret_expires_at.is_some_and(|until| now < until))
            .is_some_and(|hash| crate::crypto::secret_matches(secret, hash));
        current | previous
    }

    /// The networks its credentials and tokens are accepted from (stored as parsed).
    pub fn networks(&self) -> crate::domain::AllowedNetworks {
        crate::domain::AllowedNetworks::stored(&self.allowed_networks)
    }
}

/// Auth's tables for async callers: each method is one call on the blocking pool, with owned
/// arguments, so no caller writes a closure or clones to feed one.
#[derive(Clone)]
pub struct Store {
    db: Database,
}

impl Store {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    // Users.

    pub async fn user_by_username(&self, username: String) -> Result<Option<UserRow>, StorageError> {
        self.db.run(move |c| Ok(user_by_username(c, &username)?)).await
    }

    pub async fn user_by_id(&self, id: UserId) -> Result<Option<UserRow>, StorageError> {
        self.db.run(move |c| Ok(user_by_id(c, &id)?)).await
    }

    /// Replaces a user's roles: the user as changed; `NotFound` when there is no such user.
    pub async fn set_roles(&self, id: String, roles: String) -> Result<UserRow, StorageError> {
        self.db
            .transaction(move |c| {
                if set_roles(c, &id, &roles)? == 0 {
                    return Err(StorageError::NotFound);
                }
                user_by_id(c, &id)?.ok_or(StorageError::NotFound)
            })
            .await
    }

    // Clients.

    /// A client from the database (`AppState::client` also looks in the short-lived cache).
    pub async fn client(&self, id: String) -> Result<Option<ClientRow>, StorageError> {
        self.db.run(move |c| Ok(client_by_id(c, &id)?)).await
    }

    pub async fn clients_of(&self, owner: UserId) -> Result<Vec<ClientRow>, StorageError> {
        self.db.run(move |c| Ok(clients_of(c, &owner)?)).await
    }

    pub async fn insert_client(&self, row: ClientRow) -> Result<(), StorageError> {
        self.db.run(move |c| Ok(insert_client(c, &row)?)).await
    }

    pub async fn set_platform_client(&self, row: ClientRow) -> Result<usize, StorageError> {
        self.db.run(move |c| Ok(set_platform_client(c, &row)?)).await
    }

    /// See [`set_client_secret`].
    pub async fn set_client_secret(
        &self,
        id: ClientId,
        secret_hash: String,
        now: i64,
        previous_until: Option<i64>,
    ) -> Result<usize, StorageError> {
        self.db
            .run(move |c| Ok(set_client_secret(c, &id, &secret_hash, now, previous_until)?))
            .await
    }

    // Signing keys.

    pub async fn live_keys(&self, now: i64, keep_ms: i64) -> Result<Vec<KeyRow>, StorageError> {
        self.db.run(move |c| Ok(live_keys(c, now, keep_ms)?)).await
    }

    /// Stores a new key: the live keys, it among them.
    pub async fn add_key(&self, key: KeyRow, now: i64, keep_ms: i64) -> Result<Vec<KeyRow>, StorageError> {
        self.db
            .transaction(move |c| {
                insert_key(c, &key)?;
                Ok(live_keys(c, now, keep_ms)?)
            })
            .await
    }

    /// Retires the active key; `key` signs from now on.
    pub async fn rotate_key(&self, key: KeyRow, now: i64) -> Result<(), StorageError> {
        self.db
            .transaction(move |c| {
                retire_active_keys(c, now)?;
                insert_key(c, &key)?;
                Ok(())
            })
            .await
    }

    // Refresh tokens and revoked access tokens.

    pub async fn insert_refresh(&self, row: RefreshRow) -> Result<(), StorageError> {
        self.db.run(move |c| Ok(insert_refresh(c, &row)?)).await
    }

    pub async fn refresh_by_hash(&self, hash: String) -> Result<Option<RefreshRow>, StorageError> {
        self.db.run(move |c| Ok(refresh_by_hash(c, &hash)?)).await
    }

    /// A refresh token and the user it acts for (None when it acts for none, or they are gone).
    pub async fn refresh_with_user(&self, hash: String) -> Result<Option<(RefreshRow, Option<UserRow>)>, StorageError> {
        self.db
            .run(move |c| {
                let Some(row) = refresh_by_hash(c, &hash)? else {
                    return Ok(None);
                };
                let user = match &row.user_id {
                    Some(id) => user_by_id(c, id)?,
                    None => None,
                };
                Ok(Some((row, user)))
            })
            .await
    }

    /// See [`use_refresh`].
    pub async fn use_refresh(&self, hash: String, now: i64) -> Result<bool, StorageError> {
        self.db.run(move |c| Ok(use_refresh(c, &hash, now)?)).await
    }

    pub async fn revoke_family(&self, family: String, now: i64) -> Result<usize, StorageError> {
        self.db.run(move |c| Ok(revoke_family(c, &family, now)?)).await
    }

    /// Revokes the family of the refresh token `hash` if `client` holds it; nothing otherwise.
    pub async fn revoke_family_of(&self, hash: String, client: ClientId, now: i64) -> Result<(), StorageError> {
        self.db
            .run(move |c| {
                if let Some(row) = refresh_by_hash(c, &hash)?.filter(|r| r.client_id == client) {
                    revoke_family(c, &row.family_id, now)?;
                }
                Ok(())
            })
            .await
    }

    /// Whether the access token `jti` is revoked, and the user it acts for when it names one.
    pub async fn revoked_and_user(
        &self,
        jti: Jti,
        user: Option<UserId>,
    ) -> Result<(bool, Option<UserRow>), StorageError> {
        self.db
            .run(move |c| {
                let user = match &user {
                    Some(id) => user_by_id(c, id)?,
                    None => None,
                };
                Ok((is_revoked(c, &jti)?, user))
            })
            .await
    }

    /// Deletes what can no longer matter: expired tokens, revocations, codes, sessions and
    /// links, keys retired more than `keep_ms` ago, and the inbox's week-old entries. Returns
    /// how many rows went.
    pub async fn purge_expired(&self, now: i64, keep_ms: i64) -> Result<usize, StorageError> {
        self.db
            .run(move |c| {
                let tokens =
                    purge_expired(c, now)? + purge_expired_logins(c, now - keep_ms)? + purge_verifications(c, now)?;
                let keys = delete_dead_keys(c, now, keep_ms)?;
                let seen = events::inbox::purge(c, now - 7 * 24 * 3600 * 1000)?;
                Ok(tokens + keys + seen)
            })
            .await
    }

    // Codes, consents, sessions.

    pub async fn insert_code(&self, row: CodeRow) -> Result<(), StorageError> {
        self.db.run(move |c| Ok(insert_code(c, &row)?)).await
    }

    pub async fn code_by_hash(&self, hash: String) -> Result<Option<CodeRow>, StorageError> {
        self.db.run(move |c| Ok(code_by_hash(c, &hash)?)).await
    }

    /// See [`use_code`].
    pub async fn use_code(&self, hash: String, now: i64) -> Result<bool, StorageError> {
        self.db.run(move |c| Ok(use_code(c, &hash, now)?)).await
    }

    /// See [`record_issued`].
    pub async fn record_issued(
        &self,
        hash: String,
        jti: Jti,
        family: Option<String>,
        exp: i64,
    ) -> Result<usize, StorageError> {
        self.db
            .run(move |c| Ok(record_issued(c, &hash, &jti, family.as_deref(), exp)?))
            .await
    }

    /// The scope `user` consented to for `client`.
    pub async fn consent(&self, user: UserId, client: ClientId) -> Result<Option<String>, StorageError> {
        self.db.run(move |c| Ok(consent(c, &user, &client)?)).await
    }

    /// See [`consents_of`].
    pub async fn consents_of(&self, user: UserId) -> Result<Vec<(String, String, i64)>, StorageError> {
        self.db.run(move |c| Ok(consents_of(c, &user)?)).await
    }

    pub async fn insert_session(
        &self,
        id_hash: String,
        user: UserId,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StorageError> {
        self.db
            .run(move |c| Ok(insert_session(c, &id_hash, &user, now, expires_at)?))
            .await
    }

    /// See [`session_user`].
    pub async fn session_user(&self, id_hash: String, now: i64) -> Result<Option<UserRow>, StorageError> {
        self.db.run(move |c| Ok(session_user(c, &id_hash, now)?)).await
    }

    pub async fn delete_session(&self, id_hash: String) -> Result<usize, StorageError> {
        self.db.run(move |c| Ok(delete_session(c, &id_hash)?)).await
    }

    // Role requests.

    /// Stores a request; `Conflict` when its user already waits for an answer about that role.
    pub async fn insert_role_request(&self, row: RoleRequestRow) -> Result<(), StorageError> {
        self.db
            .transaction(move |c| {
                let waiting = role_requests_of(c, &row.user_id)?
                    .iter()
                    .any(|r| r.status == "pending" && r.role == row.role);
                if waiting {
                    return Err(StorageError::Conflict(diesel::result::Error::RollbackTransaction));
                }
                Ok(insert_role_request(c, &row)?)
            })
            .await
    }

    pub async fn role_requests_of(&self, user: UserId) -> Result<Vec<RoleRequestRow>, StorageError> {
        self.db.run(move |c| Ok(role_requests_of(c, &user)?)).await
    }

    /// At most `limit` pending requests, oldest first, each with its user's username.
    pub async fn pending_role_requests(
        &self,
        limit: i64,
    ) -> Result<Vec<(RoleRequestRow, Option<String>)>, StorageError> {
        self.db
            .run(move |c| {
                let rows = pending_role_requests(c, limit)?;
                let mut named = Vec::with_capacity(rows.len());
                for row in rows {
                    let username = user_by_id(c, &row.user_id)?.map(|u| u.username);
                    named.push((row, username));
                }
                Ok(named)
            })
            .await
    }

    /// Decides a pending request as `status` (`approved` adds its role to the user) in one
    /// transaction: the request as decided. `NotFound` when there is no such request,
    /// `Conflict` when it was decided already.
    pub async fn decide_role_request(
        &self,
        id: String,
        status: &'static str,
        by: UserId,
        now: i64,
    ) -> Result<RoleRequestRow, StorageError> {
        self.db
            .transaction(move |c| {
                let request = role_request(c, &id)?.ok_or(StorageError::NotFound)?;
                if decide_role_request(c, &id, status, &by, now)? == 0 {
                    return Err(StorageError::Conflict(diesel::result::Error::RollbackTransaction));
                }
                if status == "approved" {
                    let user = user_by_id(c, &request.user_id)?.ok_or(StorageError::NotFound)?;
                    let mut roles = parse_roles(&user.roles);
                    roles.extend(Role::parse(&request.role));
                    set_roles(c, &user.id, &format_roles(&roles))?;
                }
                role_request(c, &id)?.ok_or(StorageError::NotFound)
            })
            .await
    }
}

// Users.

pub fn insert_user(conn: &mut AnyConnection, user: &UserRow) -> QueryResult<()> {
    diesel::insert_into(users::table).values(user).execute(conn).map(drop)
}

pub fn user_by_username(conn: &mut AnyConnection, username: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::username.eq(username))
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn user_by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn set_roles(conn: &mut AnyConnection, id: &str, roles: &str) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set(users::roles.eq(roles))
        .execute(conn)
}

// Clients.

pub fn set_client_networks(conn: &mut AnyConnection, id: &str, networks: &str) -> QueryResult<usize> {
    diesel::update(clients::table.find(id))
        .set(clients::allowed_networks.eq(networks))
        .execute(conn)
}

pub fn insert_client(conn: &mut AnyConnection, client: &ClientRow) -> QueryResult<()> {
    diesel::insert_into(clients::table)
        .values(client)
        .execute(conn)
        .map(drop)
}

pub fn client_by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<ClientRow>> {
    clients::table
        .find(id)
        .select(ClientRow::as_select())
        .first(conn)
        .optional()
}

pub fn clients_of(conn: &mut AnyConnection, owner: &str) -> QueryResult<Vec<ClientRow>> {
    clients::table
        .filter(clients::owner_id.eq(owner))
        .order(clients::created_at.desc())
        .select(ClientRow::as_select())
        .load(conn)
}

/// Every application, oldest first.
pub fn all_clients(conn: &mut AnyConnection) -> QueryResult<Vec<ClientRow>> {
    clients::table
        .order(clients::created_at.asc())
        .select(ClientRow::as_select())
        .load(conn)
}

/// A new secret; the one it replaces stays valid until `previous_until` (None: not at all).
pub fn set_client_secret(
    conn: &mut AnyConnection,
    id: &str,
    secret_hash: &str,
    now: i64,
    previous_until: Option<i64>,
) -> QueryResult<usize> {
    let previous = clients::table
        .find(id)
        .select(clients::secret_hash)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten()
        .filter(|_| previous_until.is_some());
    diesel::update(clients::table.find(id))
        .set((
            clients::secret_hash.eq(secret_hash),
            clients::secret_rotated_at.eq(now),
            clients::previous_secret_hash.eq(previous),
            clients::previous_secret_expires_at.eq(previous_until),
        ))
        .execute(conn)
}

/// Keeps a platform client in line with its settings: secret, redirect URIs, scopes.
pub fn set_platform_client(conn: &mut AnyConnection, row: &ClientRow) -> QueryResult<usize> {
    diesel::update(clients::table.find(&row.id))
        .set((
            clients::secret_hash.eq(&row.secret_hash),
            clients::redirect_uris.eq(&row.redirect_uris),
            clients::scopes.eq(&row.scopes),
            clients::grant_types.eq(&row.grant_types),
            clients::first_party.eq(row.first_party),
            clients::secret_rotated_at.eq(row.secret_rotated_at),
        ))
        .execute(conn)
}

pub fn delete_client(conn: &mut AnyConnection, id: &str) -> QueryResult<usize> {
    diesel::delete(clients::table.find(id)).execute(conn)
}

// Signing keys.

pub fn insert_key(conn: &mut AnyConnection, key: &KeyRow) -> QueryResult<()> {
    diesel::insert_into(signing_keys::table)
        .values(key)
        .execute(conn)
        .map(drop)
}

/// Keys that still verify: the active one and those retired less than `keep_ms` ago.
pub fn live_keys(conn: &mut AnyConnection, now: i64, keep_ms: i64) -> QueryResult<Vec<KeyRow>> {
    signing_keys::table
        .filter(
            signing_keys::retired_at
                .is_null()
                .or(signing_keys::retired_at.gt(now - keep_ms)),
        )
        .order(signing_keys::created_at.desc())
        .select(KeyRow::as_select())
        .load(conn)
}

pub fn retire_active_keys(conn: &mut AnyConnection, now: i64) -> QueryResult<usize> {
    diesel::update(signing_keys::table.filter(signing_keys::retired_at.is_null()))
        .set(signing_keys::retired_at.eq(now))
        .execute(conn)
}

pub fn delete_dead_keys(conn: &mut AnyConnection, now: i64, keep_ms: i64) -> QueryResult<usize> {
    diesel::delete(signing_keys::table.filter(signing_keys::retired_at.le(now - keep_ms))).execute(conn)
}

// Refresh tokens.

pub fn insert_refresh(conn: &mut AnyConnection, row: &RefreshRow) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn refresh_by_hash(conn: &mut AnyConnection, hash: &str) -> QueryResult<Option<RefreshRow>> {
    refresh_tokens::table
        .find(hash)
        .select(RefreshRow::as_select())
        .first(conn)
        .optional()
}

/// Marks a refresh token used; false when it already was (a concurrent or replayed use).
pub fn use_refresh(conn: &mut AnyConnection, hash: &str, now: i64) -> QueryResult<bool> {
    diesel::update(
        refresh_tokens::table
            .find(hash)
            .filter(refresh_tokens::used_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(now))
    .execute(conn)
    .map(|n| n == 1)
}

pub fn revoke_family(conn: &mut AnyConnection, family: &str, now: i64) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)
}

pub fn revoke_client_refresh_tokens(conn: &mut AnyConnection, client: &str, now: i64) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::client_id.eq(client))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)
}

/// Revokes the live refresh tokens `client` holds for `user`.
pub fn revoke_user_refresh_tokens_at(
    conn: &mut AnyConnection,
    user: &str,
    client: &str,
    now: i64,
) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::client_id.eq(client))
            .filter(refresh_tokens::user_id.eq(user))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)
}

// Revoked access tokens.

/// Records a revoked access token; false when it was already recorded.
pub fn revoke_access(conn: &mut AnyConnection, jti: &str, client: &str, expires_at: i64) -> QueryResult<bool> {
    use diesel::sql_types::{BigInt, Text};
    diesel::sql_query(
        "INSERT INTO revoked_tokens (jti, client_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind::<Text, _>(jti)
    .bind::<Text, _>(client)
    .bind::<BigInt, _>(expires_at)
    .execute(conn)
    .map(|n| n == 1)
}

pub fn is_revoked(conn: &mut AnyConnection, jti: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(revoked_tokens::table.find(jti))).get_result(conn)
}

/// Deletes what can no longer matter: expired refresh tokens and revocation records of tokens
/// that have expired anyway. Returns how many rows went.
pub fn purge_expired(conn: &mut AnyConnection, now: i64) -> QueryResult<usize> {
    let refresh = diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.lt(now))).execute(conn)?;
    let revoked = diesel::delete(revoked_tokens::table.filter(revoked_tokens::expires_at.lt(now))).execute(conn)?;
    Ok(refresh + revoked)
}

pub mod authorize_schema {
    diesel::table! {
        authorization_codes (code_hash) {
            code_hash -> Text,
            client_id -> Text,
            user_id -> Text,
            redirect_uri -> Text,
            scope -> Text,
            code_challenge -> Nullable<Text>,
            created_at -> BigInt,
            expires_at -> BigInt,
            used_at -> Nullable<BigInt>,
            issued_jti -> Nullable<Text>,
            issued_family -> Nullable<Text>,
            issued_exp -> Nullable<BigInt>,
        }
    }

    diesel::table! {
        consents (user_id, client_id) {
            user_id -> Text,
            client_id -> Text,
            scope -> Text,
            granted_at -> BigInt,
        }
    }

    diesel::table! {
        sessions (id_hash) {
            id_hash -> Text,
            user_id -> Text,
            created_at -> BigInt,
            expires_at -> BigInt,
        }
    }
}

use authorize_schema::{authorization_codes, consents, sessions};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_codes)]
pub struct CodeRow {
    pub code_hash: String,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub redirect_uri: String,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub issued_jti: Option<Jti>,
    pub issued_family: Option<String>,
    pub issued_exp: Option<i64>,
}

pub fn insert_code(conn: &mut AnyConnection, row: &CodeRow) -> QueryResult<()> {
    diesel::insert_into(authorization_codes::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn code_by_hash(conn: &mut AnyConnection, hash: &str) -> QueryResult<Option<CodeRow>> {
    authorization_codes::table
        .find(hash)
        .select(CodeRow::as_select())
        .first(conn)
        .optional()
}

/// Marks a code used; false when it already was (a replay).
pub fn use_code(conn: &mut AnyConnection, hash: &str, now: i64) -> QueryResult<bool> {
    diesel::update(
        authorization_codes::table
            .find(hash)
            .filter(authorization_codes::used_at.is_null()),
    )
    .set(authorization_codes::used_at.eq(now))
    .execute(conn)
    .map(|n| n == 1)
}

/// Remembers what a code issued, so that a replay can revoke it.
pub fn record_issued(
    conn: &mut AnyConnection,
    hash: &str,
    jti: &str,
    family: Option<&str>,
    exp: i64,
) -> QueryResult<usize> {
    diesel::update(authorization_codes::table.find(hash))
        .set((
            authorization_codes::issued_jti.eq(jti),
            authorization_codes::issued_family.eq(family),
            authorization_codes::issued_exp.eq(exp),
        ))
        .execute(conn)
}

pub fn consent(conn: &mut AnyConnection, user: &str, client: &str) -> QueryResult<Option<String>> {
    consents::table
        .find((user, client))
        .select(consents::scope)
        .first(conn)
        .optional()
}

pub fn save_consent(conn: &mut AnyConnection, user: &str, client: &str, scope: &str, now: i64) -> QueryResult<()> {
    diesel::delete(consents::table.find((user, client))).execute(conn)?;
    diesel::insert_into(consents::table)
        .values((
            consents::user_id.eq(user),
            consents::client_id.eq(client),
            consents::scope.eq(scope),
            consents::granted_at.eq(now),
        ))
        .execute(conn)
        .map(drop)
}

/// False when `user` had no consent for `client`.
pub fn delete_consent(conn: &mut AnyConnection, user: &str, client: &str) -> QueryResult<bool> {
    Ok(diesel::delete(consents::table.find((user, client))).execute(conn)? == 1)
}

/// The consents `user` gave: (client, scope, granted at), newest first.
pub fn consents_of(conn: &mut AnyConnection, user: &str) -> QueryResult<Vec<(String, String, i64)>> {
    consents::table
        .filter(consents::user_id.eq(user))
        .order(consents::granted_at.desc())
        .select((consents::client_id, consents::scope, consents::granted_at))
        .load(conn)
}

/// Every consent: (user, client, scope, granted at).
pub fn all_consents(conn: &mut AnyConnection) -> QueryResult<Vec<(UserId, ClientId, String, i64)>> {
    consents::table
        .order((consents::user_id, consents::client_id))
        .select((
            consents::user_id,
            consents::client_id,
            consents::scope,
            consents::granted_at,
        ))
        .load(conn)
}

pub fn insert_session(
    conn: &mut AnyConnection,
    id_hash: &str,
    user: &str,
    now: i64,
    expires_at: i64,
) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::id_hash.eq(id_hash),
            sessions::user_id.eq(user),
            sessions::created_at.eq(now),
            sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .map(drop)
}

/// The user of a live session.
pub fn session_user(conn: &mut AnyConnection, id_hash: &str, now: i64) -> QueryResult<Option<UserRow>> {
    let user: Option<String> = sessions::table
        .find(id_hash)
        .filter(sessions::expires_at.gt(now))
        .select(sessions::user_id)
        .first(conn)
        .optional()?;
    match user {
        Some(id) => user_by_id(conn, &id),
        None => Ok(None),
    }
}

pub fn delete_session(conn: &mut AnyConnection, id_hash: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.find(id_hash)).execute(conn)
}

/// Expired codes and sessions.
pub fn purge_expired_logins(conn: &mut AnyConnection, now: i64) -> QueryResult<usize> {
    let codes =
        diesel::delete(authorization_codes::table.filter(authorization_codes::expires_at.lt(now))).execute(conn)?;
    let sessions = diesel::delete(sessions::table.filter(sessions::expires_at.lt(now))).execute(conn)?;
    Ok(codes + sessions)
}

/// Deletes a user and everything that acts for them: sessions, consents, codes not yet used,
/// refresh tokens. False when there was no such user. Their access tokens are revoked by the
/// caller's `token.revoked` event (they are not stored).
pub fn delete_user(conn: &mut AnyConnection, id: &str) -> QueryResult<bool> {
    diesel::delete(sessions::table.filter(sessions::user_id.eq(id))).execute(conn)?;
    diesel::delete(consents::table.filter(consents::user_id.eq(id))).execute(conn)?;
    diesel::delete(authorization_codes::table.filter(authorization_codes::user_id.eq(id))).execute(conn)?;
    diesel::delete(refresh_tokens::table.filter(refresh_tokens::user_id.eq(id))).execute(conn)?;
    Ok(diesel::delete(users::table.find(id)).execute(conn)? == 1)
}

// Role requests.

mod role_schema {
    diesel::table! {
        role_requests (id) {
            id -> Text,
            user_id -> Text,
            role -> Text,
            reason -> Text,
            status -> Text,
            created_at -> BigInt,
            decided_at -> Nullable<BigInt>,
            decided_by -> Nullable<Text>,
        }
    }
}

use role_schema::role_requests;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = role_requests)]
pub struct RoleRequestRow {
    pub id: String,
    pub user_id: UserId,
    pub role: String,
    pub reason: String,
    /// `pending`, `approved` or `refused`.
    pub status: String,
    pub created_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
}

pub fn insert_role_request(conn: &mut AnyConnection, row: &RoleRequestRow) -> QueryResult<()> {
    diesel::insert_into(role_requests::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn role_requests_of(conn: &mut AnyConnection, user: &str) -> QueryResult<Vec<RoleRequestRow>> {
    role_requests::table
        .filter(role_requests::user_id.eq(user))
        .order(role_requests::created_at.desc())
        .select(RoleRequestRow::as_select())
        .load(conn)
}

pub fn pending_role_requests(conn: &mut AnyConnection, limit: i64) -> QueryResult<Vec<RoleRequestRow>> {
    role_requests::table
        .filter(role_requests::status.eq("pending"))
        .order(role_requests::created_at.asc())
        .limit(limit)
        .select(RoleRequestRow::as_select())
        .load(conn)
}

pub fn role_request(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<RoleRequestRow>> {
    role_requests::table
        .find(id)
        .select(RoleRequestRow::as_select())
        .first(conn)
        .optional()
}

/// Decides a pending request; 0 when it was decided already (by another administrator).
pub fn decide_role_request(conn: &mut AnyConnection, id: &str, status: &str, by: &str, now: i64) -> QueryResult<usize> {
    diesel::update(
        role_requests::table
            .find(id)
            .filter(role_requests::status.eq("pending")),
    )
    .set((
        role_requests::status.eq(status),
        role_requests::decided_at.eq(now),
        role_requests::decided_by.eq(by),
    ))
    .execute(conn)
}

// E-mail verifications.

mod verification_schema {
    diesel::table! {
        email_verifications (token_hash) {
            token_hash -> Text,
            user_id -> Text,
            email -> Text,
            created_at -> BigInt,
            expires_at -> BigInt,
            used_at -> Nullable<BigInt>,
        }
    }
}

use verification_schema::email_verifications;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = email_verifications)]
pub struct VerificationRow {
    pub token_hash: String,
    pub user_id: UserId,
    pub email: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

pub fn insert_verification(conn: &mut AnyConnection, row: &VerificationRow) -> QueryResult<()> {
    diesel::insert_into(email_verifications::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// Uses a live link once: its row, or None when it is unknown, used or expired.
pub fn use_verification(conn: &mut AnyConnection, token_hash: &str, now: i64) -> QueryResult<Option<VerificationRow>> {
    let used = diesel::update(
        email_verifications::table
            .find(token_hash)
            .filter(email_verifications::used_at.is_null())
            .filter(email_verifications::expires_at.gt(now)),
    )
    .set(email_verifications::used_at.eq(now))
    .execute(conn)?;
    if used == 0 {
        return Ok(None);
    }
    email_verifications::table
        .find(token_hash)
        .select(VerificationRow::as_select())
        .first(conn)
        .optional()
}

pub fn purge_verifications(conn: &mut AnyConnection, before: i64) -> QueryResult<usize> {
    diesel::delete(email_verifications::table.filter(email_verifications::expires_at.lt(before))).execute(conn)
}
