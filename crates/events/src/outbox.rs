//! The transactional outbox: a service writes its change and its events in one transaction
//! ([`enqueue`]); the [`OutboxRelay`] publishes committed rows with broker confirms and only then
//! deletes them. A rolled-back change leaves no row, so publishes nothing; a crash between
//! publish and delete publishes the row again, which consumers drop by event id ([`crate::inbox`]).

use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel_migrations::embed_migrations;
use storage::{AnyConnection, Database, Migrations, StorageError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{Bus, BusError, Event};

/// The outbox and processed-events tables, for every service that publishes or consumes.
// The SQL is portable so far, so both dialects read one directory; a migration that needs
// dialect-specific SQL splits them.
pub static MIGRATIONS: Migrations = Migrations {
    postgres: embed_migrations!("migrations"),
    sqlite: embed_migrations!("migrations"),
};

diesel::table! {
    outbox_events (id) {
        id -> Text,
        event_type -> Text,
        payload -> Text,
        created_at -> BigInt,
    }
}

#[derive(Insertable, Queryable)]
#[diesel(table_name = outbox_events)]
struct Row {
    id: String,
    event_type: String,
    payload: String,
    created_at: i64,
}

/// Adds events to the outbox inside the caller's transaction.
pub fn enqueue(conn: &mut AnyConnection, events: &[Event]) -> QueryResult<()> {
    let created_at = storage::now_millis();
    let rows: Vec<Row> = events
        .iter()
        .map(|event| Row {
            id: event.id.to_string(),
            event_type: event.event_type.clone(),
            payload: String::from_utf8_lossy(&event.to_json()).into_owned(),
            created_at,
        })
        .collect();
    match conn {
        // One multi-row statement on PostgreSQL; diesel has no batch insert for SQLite through
        // the multi-backend connection, and SQLite, being in-process, gains little from one.
        AnyConnection::Postgresql(pg) => {
            for chunk in rows.chunks(1000) {
                diesel::insert_into(outbox_events::table).values(chunk).execute(pg)?;
            }
        }
        AnyConnection::Sqlite(sqlite) => {
            for row in &rows {
                diesel::insert_into(outbox_events::table).values(row).execute(sqlite)?;
            }
        }
    }
    Ok(())
}

/// Rows not yet published.
pub fn pending(conn: &mut AnyConnection) -> QueryResult<i64> {
    outbox_events::table.count().get_result(conn)
}

#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Rows published per round trip.
    pub batch_size: i64,
    /// How often to look for rows nobody woke the relay for (written by another replica).
    pub poll_interval: Duration,
    /// How long shutdown may spend publishing what is left.
    pub drain_timeout: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            poll_interval: Duration::from_millis(500),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Publishes committed outbox rows. Run one per database; more are safe (they only duplicate).
pub struct OutboxRelay {
    db: Database,
    bus: Arc<dyn Bus>,
    settings: RelaySettings,
    wake: Arc<Notify>,
}

impl OutboxRelay {
    pub fn new(db: Database, bus: Arc<dyn Bus>, settings: RelaySettings) -> Self {
        Self {
            db,
            bus,
            settings,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Notify after committing a transaction that enqueued events, to publish them at once.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Publishes until `shutdown`, then drains what is left within the drain timeout.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(50);
        while !shutdown.is_cancelled() {
            match self.relay_batch().await {
                Ok(n) if n == self.batch_len() => continue,
                Ok(_) => {
                    backoff = Duration::from_millis(50);
                    tokio::select! {
                        () = shutdown.cancelled() => {}
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(self.settings.poll_interval) => {}
                    }
                }
                Err(error) => {
                    // New rows do not cut the backoff short: the broker or database is what is down.
                    tracing::warn!(%error, ?backoff, "outbox relay could not publish; will retry");
                    tokio::select! {
                        () = shutdown.cancelled() => {}
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.drain().await;
    }

    async fn drain(&self) {
        let deadline = tokio::time::Instant::now() + self.settings.drain_timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.relay_batch()).await {
                Ok(Ok(0)) => return,
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, "outbox not drained at shutdown; the rows stay for the next start");
                    return;
                }
                Err(_) => {
                    tracing::warn!("outbox drain timed out; the rows stay for the next start");
                    return;
                }
            }
        }
    }

    fn batch_len(&self) -> usize {
        usize::try_from(self.settings.batch_size).unwrap_or(0)
    }

    /// Publishes the oldest batch and deletes it; returns how many rows it published.
    async fn relay_batch(&self) -> Result<usize, RelayError> {
        let limit = self.settings.batch_size;
        let rows: Vec<(String, String)> = self
            .db
            .run(move |conn| {
                Ok(outbox_events::table
                    .select((outbox_events::id, outbox_events::payload))
                    .order(outbox_events::id)
                    .limit(limit)
                    .load(conn)?)
            })
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut events = Vec::with_capacity(rows.len());
        let mut ids = Vec::with_capacity(rows.len());
        for (id, payload) in rows {
            match Event::from_json(payload.as_bytes()) {
                Ok(event) => events.push(event),
                // Written by `enqueue` from a valid event: unreadable means corruption; skip it loudly.
                Err(error) => {
                    tracing::error!(outbox.id = %id, %error, "dropping an unreadable outbox row")
                }
            }
            ids.push(id);
        }
        self.bus.publish(&events).await?;
        let published = ids.len();
        self.db
            .run(move |conn| {
                Ok(diesel::delete(outbox_events::table.filter(outbox_events::id.eq_any(ids))).execute(conn)?)
            })
            .await?;
        Ok(published)
    }
}
