//! Accepted notifications into the queue: each row is the queue (the dispatcher takes it
//! from there), published as `notification.requested` in the same transaction.
//! Requests accepted at the same time share one transaction ([`GroupCommit`]).

use events::Outbox;
use events::catalogue::NotificationRequested;
use storage::StorageError;

use crate::SOURCE;
use crate::group_commit::GroupCommit;
use crate::store::{self, NotificationRow};

/// Acceptances written together at most.
const BATCH: usize = 64;

/// Queues accepted notifications; cheap to share.
pub struct Intake {
    writes: GroupCommit<Vec<NotificationRow>>,
}

impl Intake {
    /// Starts the writers on the current runtime; they stop when the intake is dropped.
    pub fn start(outbox: Outbox) -> Self {
        let writes = GroupCommit::start(BATCH, move |acceptances: Vec<Vec<NotificationRow>>| {
            let outbox = outbox.clone();
            async move { write(&outbox, acceptances.into_iter().flatten().collect()).await }
        });
        Self { writes }
    }

    /// Queues `rows` with their `notification.requested` events; returns once committed.
    /// Should the shared transaction fail (an `Idempotency-Key` taken meanwhile, say), each
    /// acceptance is written again alone, so each gets its own answer.
    pub async fn accept(&self, rows: Vec<NotificationRow>) -> Result<(), StorageError> {
        self.writes.submit(rows).await
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
