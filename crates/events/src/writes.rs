//! Writes that publish: a service changes its tables and stages the events of that change in
//! one transaction ([`Outbox::write`]), and the relay is woken once it has committed. A
//! consumer does the same, handling each event once ([`Outbox::once`]). No caller enqueues
//! rows or wakes the relay by hand.

use std::sync::Arc;

use storage::{AnyConnection, Database, StorageError};
use tokio::sync::Notify;

use crate::{Event, EventPayload, inbox, outbox};

/// The events a transaction publishes if, and only if, it commits.
#[derive(Default)]
pub struct Staged(Vec<Event>);

impl Staged {
    /// A new event of `payload`, from `source`, about `subject`.
    pub fn publish<P: EventPayload>(
        &mut self,
        source: &str,
        subject: Option<String>,
        payload: &P,
    ) -> Result<(), StorageError> {
        let event = Event::new(source, subject, payload).map_err(|e| StorageError::Open(e.to_string()))?;
        self.0.push(event);
        Ok(())
    }

    fn enqueue(&self, conn: &mut AnyConnection) -> Result<bool, StorageError> {
        outbox::enqueue(conn, &self.0)?;
        Ok(!self.0.is_empty())
    }
}

/// A service's database with its outbox relay's waker.
#[derive(Clone)]
pub struct Outbox {
    db: Database,
    relay: Arc<Notify>,
}

impl Outbox {
    pub fn new(db: Database, relay: Arc<Notify>) -> Self {
        Self { db, relay }
    }

    /// Runs `work` in one transaction, with the events it stages written in the same one; wakes
    /// the relay after the commit when there were any. `work` may run twice (see
    /// [`Database::transaction`]): each run stages its events afresh.
    pub async fn write<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection, &mut Staged) -> Result<T, StorageError> + Send + 'static,
    {
        let (out, published) = self
            .db
            .transaction(move |conn| {
                let mut staged = Staged::default();
                let out = work(conn, &mut staged)?;
                Ok((out, staged.enqueue(conn)?))
            })
            .await?;
        if published {
            self.relay.notify_one();
        }
        Ok(out)
    }

    /// [`Outbox::write`] for a consumer: `work` runs with the record that `consumer` handled
    /// `event_id`, unless it already had (then nothing happens, and `false` comes back).
    pub async fn once<F>(&self, consumer: &'static str, event_id: uuid::Uuid, work: F) -> Result<bool, StorageError>
    where
        F: Fn(&mut AnyConnection, &mut Staged) -> Result<(), StorageError> + Send + 'static,
    {
        self.write(move |conn, staged| {
            if !inbox::first_time(conn, consumer, &event_id)? {
                return Ok(false);
            }
            work(conn, staged)?;
            Ok(true)
        })
        .await
    }

    /// [`Outbox::once`] for events taken together, in one transaction: `work` gets those
    /// `consumer` has not handled yet, in their order, each id once. How many it got.
    pub async fn once_each<F>(
        &self,
        consumer: &'static str,
        events: Arc<[Event]>,
        work: F,
    ) -> Result<usize, StorageError>
    where
        F: Fn(&mut AnyConnection, &mut Staged, &[&Event]) -> Result<(), StorageError> + Send + 'static,
    {
        self.write(move |conn, staged| {
            let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.id).collect();
            let mut fresh = inbox::first_times(conn, consumer, &ids)?;
            let new: Vec<&Event> = events.iter().filter(|e| fresh.remove(&e.id)).collect();
            work(conn, staged, &new)?;
            Ok(new.len())
        })
        .await
    }
}
