//! Accepted notifications into the queue: each row is the queue (the dispatcher takes it
//! from there), published as `notification.requested` in the same transaction.
//!
//! Requests accepted at the same time share one transaction (a group commit): a writer takes
//! every acceptance waiting when it starts, so under load a handful of statements carries many
//! requests, and alone a request waits for nothing but its own write.

use std::sync::Arc;

use events::Outbox;
use events::catalogue::NotificationRequested;
use storage::StorageError;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::SOURCE;
use crate::store::{self, NotificationRow};

/// Acceptances written together at most.
const BATCH: usize = 64;
/// Transactions in flight at once: one fills while the other commits.
const WRITERS: usize = 2;

struct Acceptance {
    rows: Vec<NotificationRow>,
    done: oneshot::Sender<Result<(), StorageError>>,
}

/// Queues accepted notifications; cheap to share.
pub struct Intake {
    waiting: mpsc::Sender<Acceptance>,
}

impl Intake {
    /// Starts the writers on the current runtime; they stop when the intake is dropped.
    pub fn start(outbox: Outbox) -> Self {
        let (waiting, taken) = mpsc::channel(BATCH * WRITERS * 4);
        let taken = Arc::new(Mutex::new(taken));
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(outbox.clone(), taken.clone()));
        }
        Self { waiting }
    }

    /// Queues `rows` with their `notification.requested` events; returns once committed.
    pub async fn accept(&self, rows: Vec<NotificationRow>) -> Result<(), StorageError> {
        let (done, answer) = oneshot::channel();
        let stopped = || StorageError::Open("the intake has stopped".to_owned());
        self.waiting
            .send(Acceptance { rows, done })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn write_batches(outbox: Outbox, taken: Arc<Mutex<mpsc::Receiver<Acceptance>>>) {
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        if taken.lock().await.recv_many(&mut batch, BATCH).await == 0 {
            return;
        }
        write_batch(&outbox, batch).await;
    }
}

/// Writes the batch in one transaction; should it fail (an `Idempotency-Key` taken meanwhile,
/// say), each acceptance alone, so each gets its own answer.
async fn write_batch(outbox: &Outbox, batch: Vec<Acceptance>) {
    if batch.len() > 1 {
        let rows: Vec<NotificationRow> = batch.iter().flat_map(|a| a.rows.iter().cloned()).collect();
        if write(outbox, rows).await.is_ok() {
            for acceptance in batch {
                let _ = acceptance.done.send(Ok(()));
            }
            return;
        }
    }
    for acceptance in batch {
        let written = write(outbox, acceptance.rows).await;
        let _ = acceptance.done.send(written);
    }
}

async fn write(outbox: &Outbox, rows: Vec<NotificationRow>) -> Result<(), StorageError> {
    outbox
        .write(move |c, staged| {
            store::insert_notifications(c, &rows)?;
            for row in &rows {
                let requested = NotificationRequested {
                    notification_id: row.id.clone(),
                    provider_id: row.provider_id,
                    service_id: row.service_id,
                    client_id: row.client_id.clone(),
                    user_id: row.user_id.clone(),
                    channel: row.channel.clone(),
                    requested_at: row.created_at,
                };
                staged.publish(SOURCE, Some(row.id.clone()), &requested)?;
            }
            Ok(())
        })
        .await
}
