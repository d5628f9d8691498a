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

    /// Publishes until `shutdown`, then drains what is left within the drain timeout. Two
    /// batches are in flight at once: the next is read and sent while the broker confirms the
    /// previous one, whose rows are deleted only once confirmed.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(50);
        let mut pending: Option<InFlight> = None;
        let mut cursor = Cursor::new(self.settings.poll_interval);
        while !shutdown.is_cancelled() {
            let excluded = pending.as_ref().map_or(&[][..], |p| p.ids.as_slice());
            let launched = match self.fetch(excluded, cursor.next()).await {
                Ok((ids, _)) if ids.is_empty() => {
                    cursor.restart();
                    None
                }
                Ok((ids, events)) => {
                    cursor.passed(ids.last());
                    Some(self.launch(ids, events))
                }
                Err(error) => {
                    fail(error, &mut backoff, &shutdown).await;
                    continue;
                }
            };
            if let Some(previous) = pending.take()
                && let Err(error) = self.settle(previous).await
            {
                fail(error, &mut backoff, &shutdown).await;
            }
            let idle = launched.is_none();
            pending = launched;
            if idle {
                backoff = Duration::from_millis(50);
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(self.settings.poll_interval) => {}
                }
            }
        }
        if let Some(previous) = pending.take()
            && let Err(error) = self.settle(previous).await
        {
            tracing::warn!(%error, "last outbox batch not confirmed; it is published again by the drain");
        }
        self.drain().await;
    }

    fn launch(&self, ids: Vec<String>, mut events: Vec<Event>) -> InFlight {
        let spans = events.iter_mut().filter_map(relay_span).collect();
        let bus = self.bus.clone();
        InFlight {
            ids,
            task: tokio::spawn(async move { bus.publish(&events).await }),
            spans,
        }
    }

    /// Deletes a batch's rows once the broker confirmed all of it; otherwise they stay, to be
    /// published again.
    async fn settle(&self, batch: InFlight) -> Result<(), RelayError> {
        let InFlight { ids, task, spans } = batch;
        task.await.unwrap_or_else(|e| Err(BusError::Protocol(e.to_string())))?;
        drop(spans);
        self.delete(ids).await
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

    /// Publishes the oldest batch and deletes it; returns how many rows it published.
    async fn relay_batch(&self) -> Result<usize, RelayError> {
        let (ids, events) = self.fetch(&[], None).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let mut events = events;
        let _spans: Vec<_> = events.iter_mut().filter_map(relay_span).collect();
        self.bus.publish(&events).await?;
        let published = ids.len();
        self.delete(ids).await?;
        Ok(published)
    }

    /// The oldest rows after `after` (the last row read), or from the start but for `excluded`
    /// (a batch still in flight): their ids and events.
    async fn fetch(&self, excluded: &[String], after: Option<String>) -> Result<(Vec<String>, Vec<Event>), RelayError> {
        let limit = self.settings.batch_size;
        // Only a read from the start needs them: the batch in flight is before `after`.
        let excluded = if after.is_none() { excluded.to_vec() } else { Vec::new() };
        let rows: Vec<(String, String)> = self
            .db
            .run(move |conn| {
                let query = outbox_events::table
                    .select((outbox_events::id, outbox_events::payload))
                    .order(outbox_events::id)
                    .limit(limit)
                    .into_boxed();
                let query = match &after {
                    Some(after) => query.filter(outbox_events::id.gt(after)),
                    None => query.filter(outbox_events::id.ne_all(&excluded)),
                };
                Ok(query.load(conn)?)
            })
            .await?;
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
        Ok((ids, events))
    }

    async fn delete(&self, ids: Vec<String>) -> Result<(), RelayError> {
        self.db
            .run(move |conn| {
                Ok(diesel::delete(outbox_events::table.filter(outbox_events::id.eq_any(&ids))).execute(conn)?)
            })
            .await?;
        Ok(())
    }
}

/// Where the relay's next read starts. Rows are read in id order, and each one published
/// leaves a dead index entry at the head until VACUUM: reading from the start every time walked
/// all of them (tens of thousands under load). So a read starts after the last row read; but a
/// row can commit after rows with later ids were read (its id was made before its commit), so a
/// read after an empty one, and one every `full_every`, starts from the start again.
struct Cursor {
    after: Option<String>,
    full_every: Duration,
    full_due: tokio::time::Instant,
}

impl Cursor {
    fn new(full_every: Duration) -> Self {
        Self {
            after: None,
            full_every,
            full_due: tokio::time::Instant::now(),
        }
    }

    /// Where the next read starts: after this id, or (`None`) from the start.
    fn next(&mut self) -> Option<String> {
        let now = tokio::time::Instant::now();
        if now >= self.full_due {
            self.full_due = now + self.full_every;
            return None;
        }
        self.after.clone()
    }

    fn passed(&mut self, last: Option<&String>) {
        self.after = last.cloned();
    }

    fn restart(&mut self) {
        self.after = None;
    }
}

/// A batch sent to the bus whose confirms are still awaited.
struct InFlight {
    ids: Vec<String>,
    task: tokio::task::JoinHandle<Result<(), BusError>>,
    /// One per event, ended when the batch is settled.
    spans: Vec<tracing::Span>,
}

/// The relay's part of an event's trace: a span from the commit that wrote it to the broker's
/// confirm, whose id the event then carries, so the consumer's span follows the relay's.
/// Events written outside any trace get none (a thousand root spans a batch would be noise).
fn relay_span(event: &mut Event) -> Option<tracing::Span> {
    let parent = event.traceparent.take()?;
    let span = tracing::info_span!(
        "outbox.publish",
        otel.kind = "producer",
        event.id = %event.id,
        event.type = %event.event_type,
    );
    telemetry::continue_trace(&span, &parent);
    event.traceparent = Some(telemetry::traceparent_of(&span).unwrap_or(parent));
    Some(span)
}

/// Logs a failure and waits: new rows do not cut the backoff short, since the broker or the
/// database is what is down.
async fn fail(error: RelayError, backoff: &mut Duration, shutdown: &CancellationToken) {
    tracing::warn!(%error, ?backoff, "outbox relay could not publish; will retry");
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(Duration::from_secs(5));
}
