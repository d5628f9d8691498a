//! Consumer-side deduplication: a handler records the event id in the same transaction as its
//! effect, so a redelivered event (after a broker restart, say) is recognised and skipped.

use diesel::sql_types::{BigInt, Text};
use diesel::{QueryResult, RunQueryDsl};
use storage::AnyConnection;

/// Records that `consumer` handled `event_id`; false when it already had.
pub fn first_time(conn: &mut AnyConnection, consumer: &str, event_id: &uuid::Uuid) -> QueryResult<bool> {
    // `ON CONFLICT DO NOTHING` is spelled alike in PostgreSQL and SQLite.
    let inserted = diesel::sql_query(
        "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind::<Text, _>(consumer)
    .bind::<Text, _>(event_id.to_string())
    .bind::<BigInt, _>(storage::now_millis())
    .execute(conn)?;
    Ok(inserted == 1)
}

/// Forgets ids older than `before_millis`; redeliveries come within minutes, not days.
pub fn purge(conn: &mut AnyConnection, before_millis: i64) -> QueryResult<usize> {
    diesel::sql_query("DELETE FROM processed_events WHERE processed_at < $1")
        .bind::<BigInt, _>(before_millis)
        .execute(conn)
}
