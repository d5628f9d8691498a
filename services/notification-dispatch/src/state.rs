//! What every handler, consumer and the dispatcher of the notification service share.

use std::sync::Arc;

use cache::RateLimiter;
use events::Outbox;
use storage::Database;
use tokio::sync::Notify;

use crate::channels::Senders;
use crate::dispatcher::{self, Tried};
use crate::domain::queue::Intake;
use crate::group_commit::GroupCommit;
use crate::metrics::DispatchMetrics;
use crate::store::Store;
use crate::{DispatchSettings, NotificationSettings, Settings};

pub struct Dispatch {
    pub store: Store,
    /// Writes that publish events (acceptance, statuses).
    pub outbox: Outbox,
    pub notifications: NotificationSettings,
    pub dispatch: DispatchSettings,
    pub senders: Senders,
    /// Services' and providers' rate limits, shared by replicas through Redis.
    pub rates: Arc<dyn RateLimiter>,
    /// Where accepted notifications are queued, requests at the same time together.
    pub intake: Intake,
    /// Where tries' outcomes are written, those at the same time together.
    pub recorder: GroupCommit<Tried>,
    /// Wakes the dispatcher when notifications were queued.
    pub wake: Arc<Notify>,
    pub metrics: DispatchMetrics,
}

impl Dispatch {
    /// Starts the intake's and the recorder's writers: call it on the runtime.
    pub fn new(
        db: Database,
        outbox: Outbox,
        settings: &Settings,
        senders: Senders,
        rates: Arc<dyn RateLimiter>,
    ) -> Result<Self, std::io::Error> {
        let metrics = DispatchMetrics::new().map_err(std::io::Error::other)?;
        Ok(Self {
            store: Store::new(db),
            intake: Intake::start(outbox.clone()),
            recorder: dispatcher::recorder(outbox.clone(), settings.dispatch.clone(), metrics.clone()),
            outbox,
            notifications: settings.notifications.clone(),
            dispatch: settings.dispatch.clone(),
            senders,
            rates,
            wake: Arc::new(Notify::new()),
            metrics,
        })
    }

    /// Deletes notifications past retention, with their sends and inbox entries.
    pub async fn purge_expired(&self) {
        let before = storage::now_millis() - self.notifications.retention.millis();
        match self.store.purge(before).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "notifications past retention deleted"),
            Err(error) => tracing::warn!(%error, "notifications past retention not deleted"),
        }
    }
}
