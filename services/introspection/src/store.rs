//! What has been revoked: learnt from `token.revoked` events (each replica consumes every one),
//! kept in memory for the per-request check and in the database so a restart remembers.

use diesel::RunQueryDsl;
use diesel::sql_types::{BigInt, Text};
use events::catalogue::{Revoked, TokenRevoked};
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

/// What a stored revocation covers.
#[derive(Clone, Copy)]
enum Covers {
    Token,
    Client,
    User,
    /// One application's tokens for one user: `<client_id>:<sub>`.
    Grant,
}

impl Covers {
    /// What `revoked` covers, and its key in that table.
    fn of(revoked: &Revoked) -> (Self, String) {
        match revoked {
            Revoked::Token { jti, .. } => (Self::Token, jti.to_string()),
            Revoked::Client(client) => (Self::Client, client.to_string()),
            Revoked::User(user) => (Self::User, user.to_string()),
            Revoked::Grant { client_id, user } => (Self::Grant, format!("{client_id}:{user}")),
        }
    }

    /// Its table and key column.
    fn table(self) -> (&'static str, &'static str) {
        match self {
            Self::Token => ("revoked_tokens", "jti"),
            Self::Client => ("revoked_clients", "client_id"),
            Self::User => ("revoked_users", "sub"),
            Self::Grant => ("revoked_grants", "grant_key"),
        }
    }
}

const ALL: [Covers; 4] = [Covers::Token, Covers::Client, Covers::User, Covers::Grant];

fn load_rows(conn: &mut AnyConnection, now: i64) -> diesel::QueryResult<Vec<(Covers, Row)>> {
    let mut all = Vec::new();
    for covers in ALL {
        let (table, key) = covers.table();
        let issued_up_to = match covers {
            Covers::Token => "CAST(0 AS BIGINT)",
            Covers::Client | Covers::User | Covers::Grant => "issued_up_to",
        };
        let rows: Vec<Row> = diesel::sql_query(format!(
            "SELECT {key} AS id, {issued_up_to} AS issued_up_to, expires_at FROM {table} WHERE expires_at > $1"
        ))
        .bind::<BigInt, _>(now)
        .load(conn)?;
        all.extend(rows.into_iter().map(|row| (covers, row)));
    }
    Ok(all)
}

fn store(conn: &mut AnyConnection, revoked: &TokenRevoked, at: i64) -> diesel::QueryResult<usize> {
    if let Revoked::Token { jti, client_id, .. } = &revoked.revoked {
        return diesel::sql_query(
            "INSERT INTO revoked_tokens (jti, client_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind::<Text, _>(jti.as_str())
        .bind::<Text, _>(client_id.as_str())
        .bind::<BigInt, _>(revoked.exp)
        .execute(conn);
    }
    let (covers, id) = Covers::of(&revoked.revoked);
    let (table, key) = covers.table();
    diesel::sql_query(format!(
        "INSERT INTO {table} ({key}, issued_up_to, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT ({key}) DO UPDATE SET issued_up_to = excluded.issued_up_to, expires_at = excluded.expires_at"
    ))
    .bind::<Text, _>(id)
    .bind::<BigInt, _>(at)
    .bind::<BigInt, _>(revoked.exp)
    .execute(conn)
}

fn purge(conn: &mut AnyConnection, now: i64) -> diesel::QueryResult<usize> {
    let mut purged = 0;
    for covers in ALL {
        purged += diesel::sql_query(format!("DELETE FROM {} WHERE expires_at <= $1", covers.table().0))
            .bind::<BigInt, _>(now)
            .execute(conn)?;
    }
    Ok(purged)
}

impl Revocations {
    pub async fn load(db: Database) -> Result<Self, StorageError> {
        let now = tokens::now_secs();
        let rows = db.run(move |c| Ok(load_rows(c, now)?)).await?;
        let list = RevocationList::default();
        for (covers, row) in rows {
            match covers {
                Covers::Token => list.revoke_token(&row.id, row.expires_at),
                Covers::Client => list.revoke_client(&row.id, row.issued_up_to, row.expires_at),
                Covers::User => list.revoke_subject(&row.id, row.issued_up_to, row.expires_at),
                Covers::Grant => {
                    if let Some((client, sub)) = row.id.split_once(':') {
                        list.revoke_grant(client, sub, row.issued_up_to, row.expires_at);
                    }
                }
            }
        }
        tracing::info!(revocations = list.len(), "revocations loaded");
        Ok(Self { db, list })
    }

    pub fn is_revoked(&self, claims: &AccessClaims) -> bool {
        self.list
            .is_revoked(&claims.jti, &claims.client_id, claims.subject(), claims.iat)
    }

    /// Records a revocation that happened at `at` (seconds): in memory first, so it counts at
    /// once, then in the database (idempotent: every replica writes the same row).
    pub async fn record(&self, revoked: TokenRevoked, at: i64) -> Result<(), StorageError> {
        self.list.record(&revoked.revoked, revoked.exp, at);
        self.db.run(move |c| Ok(store(c, &revoked, at)?)).await.map(drop)
    }

    /// Forgets revocations of tokens that have expired anyway.
    pub async fn purge(&self) -> Result<usize, StorageError> {
        let now = tokens::now_secs();
        self.list.purge(now);
        self.db.run(move |c| Ok(purge(c, now)?)).await
    }
}
