//! Embedded mode's bus: RabbitMQ's semantics (a durable queue per consumer, topic bindings,
//! ack, delayed retry, parking) kept in an SQLite file, so a crash loses no event the outbox
//! handed over: what a consumer had not acknowledged is delivered again at the next start.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use diesel::sql_types::{BigInt, Bool, Integer, Text};
use diesel::{QueryableByName, RunQueryDsl};
use diesel_migrations::embed_migrations;
use storage::{AnyConnection, Database, Migrations, StorageError};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusError, Delivery, Handler, Subscription, handle_all_guarded};
use crate::{Event, topic_matches};

/// The queue tables; a database of their own (`data/bus.db` in embedded mode).
static BUS_MIGRATIONS: Migrations = Migrations {
    postgres: embed_migrations!("migrations-bus"),
    sqlite: embed_migrations!("migrations-bus"),
};

/// How long an idle consumer sleeps before looking again without being woken (a retry whose
/// delay ran out wakes nobody).
const IDLE_POLL: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct SqliteBus {
    db: Database,
    /// Every queue and its bindings, read at open and kept as consumers subscribe: one process
    /// owns the file.
    queues: Arc<Mutex<HashMap<String, Vec<String>>>>,
    wakers: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
    running: Arc<Mutex<HashSet<String>>>,
    /// Messages published before this moment may have been delivered before a crash.
    opened_at: i64,
}

impl SqliteBus {
    /// Opens the bus kept in `db`, creating its tables; queues of replicas of an earlier run
    /// are dropped with what waited in them (nobody will consume them again).
    pub async fn open(db: Database) -> Result<Self, BusError> {
        db.migrate(&[&BUS_MIGRATIONS]).await.map_err(unavailable)?;
        let queues = db
            .transaction(|c| {
                diesel::sql_query(
                    "DELETE FROM bus_messages WHERE queue IN (SELECT name FROM bus_queues WHERE per_replica)",
                )
                .execute(c)?;
                diesel::sql_query("DELETE FROM bus_queues WHERE per_replica").execute(c)?;
                Ok(diesel::sql_query("SELECT name, bindings FROM bus_queues").load::<QueueRow>(c)?)
            })
            .await
            .map_err(unavailable)?;
        let queues = queues
            .into_iter()
            .map(|q| (q.name, serde_json::from_str(&q.bindings).unwrap_or_default()))
            .collect();
        Ok(Self {
            db,
            queues: Arc::new(Mutex::new(queues)),
            wakers: Arc::default(),
            running: Arc::default(),
            opened_at: storage::now_millis(),
        })
    }

    fn waker(&self, queue: &str) -> Arc<Notify> {
        lock(&self.wakers).entry(queue.to_owned()).or_default().clone()
    }

    /// The queues whose bindings match each event, as (queue, event) rows to insert.
    fn route(&self, events: &[Event]) -> Vec<(String, Event)> {
        let queues = lock(&self.queues);
        events
            .iter()
            .flat_map(|event| {
                queues
                    .iter()
                    .filter(|(_, bindings)| bindings.iter().any(|b| topic_matches(b, &event.event_type)))
                    .map(|(queue, _)| (queue.clone(), event.clone()))
            })
            .collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unavailable(error: StorageError) -> BusError {
    BusError::Unavailable(format!("bus database: {error}"))
}

#[async_trait]
impl Bus for SqliteBus {
    /// Confirmed once every copy is committed to its queue's table.
    async fn publish(&self, events: &[Event]) -> Result<(), BusError> {
        let rows = self.route(events);
        if rows.is_empty() {
            return Ok(());
        }
        let woken: HashSet<String> = rows.iter().map(|(queue, _)| queue.clone()).collect();
        let rows = Arc::new(rows);
        self.db
            .transaction(move |c| {
                let now = storage::now_millis();
                for (queue, event) in rows.iter() {
                    insert(c, queue, event, now)?;
                }
                Ok(())
            })
            .await
            .map_err(unavailable)?;
        for queue in woken {
            self.waker(&queue).notify_one();
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        subscription: Subscription,
        handler: Arc<dyn Handler>,
        shutdown: CancellationToken,
    ) -> Result<JoinHandle<()>, BusError> {
        let name = subscription.consumer.clone();
        if !lock(&self.running).insert(name.clone()) {
            return Err(BusError::Protocol(format!("consumer {name} is already running")));
        }
        let declared = declare(&self.db, &subscription).await;
        if let Err(error) = declared {
            lock(&self.running).remove(&name);
            return Err(error);
        }
        lock(&self.queues).insert(name.clone(), subscription.bindings.clone());
        let consumer = Consumer {
            bus: self.clone(),
            wake: self.waker(&name),
            subscription,
            handler,
        };
        Ok(tokio::spawn(consumer.run(shutdown)))
    }

    async fn take_parked(&self, consumer: &str, max: usize) -> Result<Vec<Event>, BusError> {
        let (queue, max) = (consumer.to_owned(), i64::try_from(max).unwrap_or(i64::MAX));
        let rows = self
            .db
            .transaction(move |c| {
                let rows = diesel::sql_query(
                    "SELECT event_id, event, attempt, published_at FROM bus_messages \
                     WHERE queue = $1 AND parked ORDER BY ready_at, event_id LIMIT $2",
                )
                .bind::<Text, _>(&queue)
                .bind::<BigInt, _>(max)
                .load::<MessageRow>(c)?;
                for row in &rows {
                    remove(c, &queue, &row.event_id)?;
                }
                Ok(rows)
            })
            .await
            .map_err(unavailable)?;
        Ok(rows
            .iter()
            .filter_map(|row| Event::from_json(row.event.as_bytes()).ok())
            .collect())
    }

    async fn ping(&self) -> Result<(), BusError> {
        self.db.ping().await.map_err(unavailable)
    }
}

async fn declare(db: &Database, subscription: &Subscription) -> Result<(), BusError> {
    let name = subscription.consumer.clone();
    let bindings = serde_json::to_string(&subscription.bindings).unwrap_or_else(|_| "[]".to_owned());
    let per_replica = subscription.expires.is_some();
    db.run(move |c| {
        Ok(diesel::sql_query(
            "INSERT INTO bus_queues (name, bindings, per_replica) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET bindings = excluded.bindings",
        )
        .bind::<Text, _>(&name)
        .bind::<Text, _>(&bindings)
        .bind::<Bool, _>(per_replica)
        .execute(c)?)
    })
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// A copy published again (the outbox relay after a crash) is kept once.
fn insert(c: &mut AnyConnection, queue: &str, event: &Event, now: i64) -> diesel::QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO bus_messages (queue, event_id, event, attempt, published_at, ready_at, parked) \
         VALUES ($1, $2, $3, 1, $4, $4, FALSE) ON CONFLICT DO NOTHING",
    )
    .bind::<Text, _>(queue)
    .bind::<Text, _>(event.id.to_string())
    .bind::<Text, _>(String::from_utf8_lossy(&event.to_json()))
    .bind::<BigInt, _>(now)
    .execute(c)
}

fn remove(c: &mut AnyConnection, queue: &str, event_id: &str) -> diesel::QueryResult<usize> {
    diesel::sql_query("DELETE FROM bus_messages WHERE queue = $1 AND event_id = $2")
        .bind::<Text, _>(queue)
        .bind::<Text, _>(event_id)
        .execute(c)
}

#[derive(QueryableByName)]
struct QueueRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    bindings: String,
}

#[derive(QueryableByName)]
struct MessageRow {
    #[diesel(sql_type = Text)]
    event_id: String,
    #[diesel(sql_type = Text)]
    event: String,
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(sql_type = BigInt)]
    published_at: i64,
}

#[derive(QueryableByName)]
struct NextReady {
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    ready_at: Option<i64>,
}

/// What became of one delivery, written back with the rest of its batch.
enum Outcome {
    Handled,
    Retry { attempt: i32, ready_at: i64 },
    Parked,
}

struct Consumer {
    bus: SqliteBus,
    wake: Arc<Notify>,
    subscription: Subscription,
    handler: Arc<dyn Handler>,
}

impl Consumer {
    async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(50);
        while !shutdown.is_cancelled() {
            match self.round(&shutdown).await {
                Ok(Some(handled)) if handled > 0 => backoff = Duration::from_millis(50),
                Ok(idle) => {
                    let nap = match idle {
                        Some(_) => IDLE_POLL,
                        None => self.until_next_ready().await,
                    };
                    tokio::select! {
                        () = shutdown.cancelled() => {}
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(nap) => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(consumer = %self.subscription.consumer, %error, ?backoff, "bus database unavailable; will retry");
                    tokio::select! {
                        () = shutdown.cancelled() => {}
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        lock(&self.bus.running).remove(&self.subscription.consumer);
    }

    /// Handles the ready messages, up to the prefetch, and records their outcomes; `None`
    /// when nothing was ready.
    async fn round(&self, shutdown: &CancellationToken) -> Result<Option<usize>, StorageError> {
        let batch = self.ready().await?;
        if batch.is_empty() {
            return Ok(None);
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        for rows in batch.chunks(self.subscription.batch.max(1)) {
            // The rest stay in the table, delivered at the next start.
            if shutdown.is_cancelled() {
                break;
            }
            outcomes.extend(self.deliver(rows).await);
        }
        let handled = outcomes.len();
        self.settle(outcomes).await?;
        Ok(Some(handled))
    }

    async fn ready(&self) -> Result<Vec<MessageRow>, StorageError> {
        let queue = self.subscription.consumer.clone();
        let limit = i64::from(self.subscription.prefetch.max(1));
        self.bus
            .db
            .run(move |c| {
                Ok(diesel::sql_query(
                    "SELECT event_id, event, attempt, published_at FROM bus_messages \
                     WHERE queue = $1 AND NOT parked AND ready_at <= $2 ORDER BY ready_at, event_id LIMIT $3",
                )
                .bind::<Text, _>(&queue)
                .bind::<BigInt, _>(storage::now_millis())
                .bind::<BigInt, _>(limit)
                .load(c)?)
            })
            .await
    }

    /// How long until a retry waiting in the queue is due (the idle poll at most).
    async fn until_next_ready(&self) -> Duration {
        let queue = self.subscription.consumer.clone();
        let next = self
            .bus
            .db
            .run(move |c| {
                Ok(diesel::sql_query(
                    "SELECT MIN(ready_at) AS ready_at FROM bus_messages WHERE queue = $1 AND NOT parked",
                )
                .bind::<Text, _>(&queue)
                .get_result::<NextReady>(c)?)
            })
            .await;
        let wait = next.ok().and_then(|n| n.ready_at).map_or(IDLE_POLL, |at| {
            Duration::from_millis(u64::try_from(at - storage::now_millis()).unwrap_or(0))
        });
        wait.min(IDLE_POLL)
    }

    /// Hands `rows` to the handler together; what became of each.
    async fn deliver(&self, rows: &[MessageRow]) -> Vec<(String, Outcome)> {
        let mut failures = Vec::new();
        let mut readable = Vec::with_capacity(rows.len());
        for row in rows {
            let attempt = u32::try_from(row.attempt).unwrap_or(1);
            match Event::from_json(row.event.as_bytes()) {
                Ok(event) => readable.push((
                    row,
                    Delivery {
                        event,
                        attempt,
                        redelivered: attempt > 1 || row.published_at < self.bus.opened_at,
                    },
                )),
                Err(error) => failures.push((row, format!("unreadable event: {error}"), None)),
            }
        }
        let (handed, deliveries): (Vec<&MessageRow>, Vec<Delivery>) = readable.into_iter().unzip();
        let results = handle_all_guarded(self.handler.as_ref(), deliveries).await;
        let mut outcomes = Vec::with_capacity(rows.len());
        for (row, result) in handed.into_iter().zip(results) {
            match result {
                Ok(()) => outcomes.push((row.event_id.clone(), Outcome::Handled)),
                Err(error) => {
                    let attempt = u32::try_from(row.attempt).unwrap_or(1);
                    failures.push((row, error.0, self.subscription.retry.delay_after(attempt)));
                }
            }
        }
        outcomes.extend(
            failures
                .into_iter()
                .map(|(row, error, delay)| (row.event_id.clone(), self.failed(row, &error, delay))),
        );
        outcomes
    }

    fn failed(&self, row: &MessageRow, error: &str, delay: Option<Duration>) -> Outcome {
        let consumer = &self.subscription.consumer;
        let attempt = row.attempt;
        match delay {
            Some(delay) => {
                tracing::warn!(%consumer, event.id = %row.event_id, attempt, %error, ?delay, "event handling failed; retrying later");
                Outcome::Retry {
                    attempt: row.attempt + 1,
                    ready_at: storage::now_millis() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX),
                }
            }
            None => {
                tracing::error!(%consumer, event.id = %row.event_id, attempt, %error, "event handling failed for the last time; parked");
                Outcome::Parked
            }
        }
    }

    async fn settle(&self, outcomes: Vec<(String, Outcome)>) -> Result<(), StorageError> {
        let queue = self.subscription.consumer.clone();
        let outcomes = Arc::new(outcomes);
        self.bus
            .db
            .transaction(move |c| {
                for (event_id, outcome) in outcomes.iter() {
                    match outcome {
                        Outcome::Handled => remove(c, &queue, event_id)?,
                        Outcome::Retry { attempt, ready_at } => diesel::sql_query(
                            "UPDATE bus_messages SET attempt = $1, ready_at = $2 WHERE queue = $3 AND event_id = $4",
                        )
                        .bind::<Integer, _>(attempt)
                        .bind::<BigInt, _>(ready_at)
                        .bind::<Text, _>(&queue)
                        .bind::<Text, _>(event_id)
                        .execute(c)?,
                        Outcome::Parked => diesel::sql_query(
                            "UPDATE bus_messages SET parked = TRUE WHERE queue = $1 AND event_id = $2",
                        )
                        .bind::<Text, _>(&queue)
                        .bind::<Text, _>(event_id)
                        .execute(c)?,
                    };
                }
                Ok(())
            })
            .await
    }
}
