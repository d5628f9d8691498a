//! Delivery receipts: `sent` → `delivered` (or `failed`) for the notifications providers know
//! by the receipts' message ids, with their events. Receipts arriving together share one
//! transaction. An SMSC may answer before the send's outcome is committed, so a receipt that
//! finds no `sent` notification is tried again, ever further apart, for about a minute.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::SOURCE;
use crate::channels::smpp::Receipt;
use crate::dispatcher::{delivered_event, failed_event};
use crate::domain::Channel;
use crate::state::Dispatch;
use crate::store;

/// The first wait before a receipt that matched nothing is tried again; it doubles each time.
const FIRST_WAIT: Duration = Duration::from_millis(250);
/// Tries of a receipt that matches nothing (0.25 s … 32 s apart: about a minute in all). The
/// receipts of a long message's later parts never match: only the first part's id is kept.
const TRIES: u32 = 8;
const BATCH: usize = 256;

struct Waiting {
    receipt: Receipt,
    tries: u32,
    due: Instant,
}

pub async fn run(state: Arc<Dispatch>, mut incoming: mpsc::UnboundedReceiver<Receipt>, shutdown: CancellationToken) {
    let mut waiting: Vec<Waiting> = Vec::new();
    let mut arrived = Vec::with_capacity(BATCH);
    loop {
        let next_due = waiting.iter().map(|w| w.due).min();
        tokio::select! {
            () = shutdown.cancelled() => return,
            n = incoming.recv_many(&mut arrived, BATCH) => if n == 0 { return },
            () = sleep_until(next_due), if next_due.is_some() => {}
        }
        let now = Instant::now();
        let (mut due, later): (Vec<_>, Vec<_>) = waiting.drain(..).partition(|w| w.due <= now);
        waiting = later;
        // One statement binds every id: a backlog goes a batch at a time.
        if due.len() > BATCH {
            waiting.extend(due.split_off(BATCH));
        }
        let batch: Vec<Waiting> = arrived
            .drain(..)
            .filter(|r| r.delivered() || r.failed())
            .map(|receipt| Waiting {
                receipt,
                tries: 0,
                due: now,
            })
            .chain(due)
            .collect();
        if batch.is_empty() {
            continue;
        }
        let matched = record(&state, &batch).await.unwrap_or_else(|error| {
            tracing::warn!(%error, receipts = batch.len(), "delivery receipts not recorded");
            Vec::new()
        });
        let unmatched = batch.into_iter().filter(|w| !matched.contains(&w.receipt.message_id));
        waiting.extend(unmatched.filter_map(again));
    }
}

async fn sleep_until(due: Option<Instant>) {
    if let Some(due) = due {
        tokio::time::sleep_until(due).await;
    }
}

/// The receipt to try again later, unless its tries are spent.
fn again(w: Waiting) -> Option<Waiting> {
    let tries = w.tries + 1;
    if tries >= TRIES {
        tracing::info!(message.id = %w.receipt.message_id, "a receipt for no notification sent");
        return None;
    }
    Some(Waiting {
        due: Instant::now() + FIRST_WAIT * 2_u32.pow(w.tries),
        tries,
        receipt: w.receipt,
    })
}

/// The message ids that matched a notification sent.
async fn record(state: &Dispatch, batch: &[Waiting]) -> Result<Vec<String>, storage::StorageError> {
    let receipts: Vec<(String, Option<String>)> = batch
        .iter()
        .map(|w| {
            let failure = (!w.receipt.delivered()).then(|| w.receipt.stat.clone());
            (w.receipt.message_id.clone(), failure)
        })
        .collect();
    let matched = state
        .outbox
        .write(move |c, staged| {
            let now = storage::now_millis();
            let matched = store::receipted(c, &receipts, now)?;
            for (row, failure) in &matched {
                let channel = row.channel_used.clone().unwrap_or_default();
                let subject = Some(row.id.clone());
                match failure {
                    None => staged.publish(SOURCE, subject, &delivered_event(row, &channel, now))?,
                    Some(reason) => {
                        staged.publish(
                            SOURCE,
                            subject,
                            &failed_event(row, Channel::from_name(&channel), reason, now),
                        )?;
                    }
                }
            }
            Ok(matched)
        })
        .await?;
    // Counted once committed (the transaction may run twice).
    for (_, failure) in &matched {
        let (status, reason) = match failure {
            None => (store::DELIVERED, ""),
            Some(_) => (store::FAILED, "undelivered"),
        };
        state.metrics.outcomes.with_label_values(&[status, reason]).inc();
    }
    Ok(matched.into_iter().filter_map(|(row, _)| row.external_id).collect())
}
