//! Consumer-side deduplication: a handler records the event id in the same transaction as its
//! effect, so a redelivered event (after a broker restart, say) is recognised and skipped.

use std::collections::HashSet;

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

/// [`first_time`] for events taken together, in one statement: the ids `consumer` had not
/// handled yet (each once, however often it appears).
pub fn first_times(
    conn: &mut AnyConnection,
    consumer: &str,
    event_ids: &[uuid::Uuid],
) -> QueryResult<HashSet<uuid::Uuid>> {
    let mut fresh = HashSet::new();
    let now = storage::now_millis();
    for chunk in event_ids.chunks(300) {
        let mut query = diesel::sql_query(format!(
            "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES {} \
             ON CONFLICT DO NOTHING RETURNING event_id",
            storage::placeholders(chunk.len(), 3)
        ))
        .into_boxed::<storage::MultiBackend>();
        for id in chunk {
            query = query
                .bind::<Text, _>(consumer)
                .bind::<Text, _>(id.to_string())
                .bind::<BigInt, _>(now);
        }
        let inserted: Vec<Inserted> = query.load(conn)?;
        fresh.extend(
            inserted
                .iter()
                .filter_map(|row| row.event_id.parse::<uuid::Uuid>().ok()),
        );
    }
    Ok(fresh)
}

#[derive(diesel::QueryableByName)]
struct Inserted {
    #[diesel(sql_type = Text)]
    event_id: String,
}

/// Forgets ids older than `before_millis`; redeliveries come within minutes, not days.
pub fn purge(conn: &mut AnyConnection, before_millis: i64) -> QueryResult<usize> {
    diesel::sql_query("DELETE FROM processed_events WHERE processed_at < $1")
        .bind::<BigInt, _>(before_millis)
        .execute(conn)
}
