//! Accepted notifications into the queue: each row is the queue (the dispatcher takes it
//! from there), published as `notification.requested` in the same transaction.

use events::Outbox;
use events::catalogue::NotificationRequested;
use storage::StorageError;

use crate::SOURCE;
use crate::store::{self, NotificationRow};

/// Queues `rows` with their `notification.requested` events in one transaction.
pub async fn accept(outbox: &Outbox, rows: Vec<NotificationRow>) -> Result<(), StorageError> {
    outbox
        .write(move |c, staged| {
            for row in &rows {
                store::insert_notification(c, row)?;
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
