//! What has been revoked: learnt from `token.revoked` events (each replica consumes every one),
//! kept in memory for the per-request check and in the database so a restart remembers.

use diesel::RunQueryDsl;
use diesel::sql_types::{BigInt, Text};
use events::catalogue::TokenRevoked;
use storage::{AnyConnection, Database, StorageError};
use tokens::{AccessClaims, RevocationList};

pub struct Revocations {
    db: Database,
    list: RevocationList,
}

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = BigInt)]
    issued_up_to: i64,
    #[diesel(sql_type = BigInt)]
    expires_at: i64,
}

fn load_rows(conn: &mut AnyConnection, now: i64) -> diesel::QueryResult<Vec<(bool, Row)>> {
    let tokens: Vec<Row> = diesel::sql_query(
        "SELECT jti AS id, CAST(0 AS BIGINT) AS issued_up_to, expires_at FROM revoked_tokens WHERE expires_at > $1",
    )
    .bind::<BigInt, _>(now)
    .load(conn)?;
    let clients: Vec<Row> = diesel::sql_query(
        "SELECT client_id AS id, issued_up_to, expires_at FROM revoked_clients WHERE expires_at > $1",
    )
    .bind::<BigInt, _>(now)
    .load(conn)?;
    Ok(tokens
        .into_iter()
        .map(|r| (false, r))
        .chain(clients.into_iter().map(|r| (true, r)))
        .collect())
}

fn store(conn: &mut AnyConnection, revoked: &TokenRevoked, at: i64) -> diesel::QueryResult<usize> {
    if revoked.jti == RevocationList::EVERY_TOKEN {
        diesel::sql_query(
            "INSERT INTO revoked_clients (client_id, issued_up_to, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (client_id) DO UPDATE SET issued_up_to = excluded.issued_up_to, expires_at = excluded.expires_at",
        )
        .bind::<Text, _>(&revoked.client_id)
        .bind::<BigInt, _>(at)
        .bind::<BigInt, _>(revoked.exp)
        .execute(conn)
    } else {
        diesel::sql_query(
            "INSERT INTO revoked_tokens (jti, client_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind::<Text, _>(&revoked.jti)
        .bind::<Text, _>(&revoked.client_id)
        .bind::<BigInt, _>(revoked.exp)
        .execute(conn)
    }
}

fn purge(conn: &mut AnyConnection, now: i64) -> diesel::QueryResult<usize> {
    let tokens = diesel::sql_query("DELETE FROM revoked_tokens WHERE expires_at <= $1")
        .bind::<BigInt, _>(now)
        .execute(conn)?;
    let clients = diesel::sql_query("DELETE FROM revoked_clients WHERE expires_at <= $1")
        .bind::<BigInt, _>(now)
        .execute(conn)?;
    Ok(tokens + clients)
}

impl Revocations {
    pub async fn load(db: Database) -> Result<Self, StorageError> {
        let now = tokens::now_secs();
        let rows = db.run(move |c| Ok(load_rows(c, now)?)).await?;
        let list = RevocationList::default();
        for (client_wide, row) in rows {
            if client_wide {
                list.revoke_client(&row.id, row.issued_up_to, row.expires_at);
            } else {
                list.revoke_token(&row.id, row.expires_at);
            }
        }
        tracing::info!(revocations = list.len(), "revocations loaded");
        Ok(Self { db, list })
    }

    pub fn is_revoked(&self, claims: &AccessClaims) -> bool {
        self.list.is_revoked(&claims.jti, &claims.client_id, claims.iat)
    }

    /// Records a revocation that happened at `at` (seconds): in memory first, so it counts at
    /// once, then in the database (idempotent: every replica writes the same row).
    pub async fn record(&self, revoked: TokenRevoked, at: i64) -> Result<(), StorageError> {
        self.list.record(&revoked.jti, &revoked.client_id, revoked.exp, at);
        self.db.run(move |c| Ok(store(c, &revoked, at)?)).await.map(drop)
    }

    /// Forgets revocations of tokens that have expired anyway.
    pub async fn purge(&self) -> Result<usize, StorageError> {
        let now = tokens::now_secs();
        self.list.purge(now);
        self.db.run(move |c| Ok(purge(c, now)?)).await
    }
}
