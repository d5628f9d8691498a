//! What every handler, consumer and the dispatcher of the webhook service share.

use std::sync::Arc;

use cache::RateLimiter;
use events::Outbox;
use secrecy::ExposeSecret;
use storage::Database;

use crate::dispatcher::Wake;
use crate::domain::sealing::Sealer;
use crate::guard::{Guard, Guarded};
use crate::metrics::WebhookMetrics;
use crate::store::Store;
use crate::{DeliverySettings, Settings, WebhookSettings};

pub struct Webhooks {
    pub store: Store,
    /// Writes that publish events (`webhook.endpoint.disabled`).
    pub outbox: Outbox,
    pub delivery: DeliverySettings,
    pub settings: WebhookSettings,
    pub guard: Arc<Guard>,
    /// Seals signing secrets at rest.
    pub sealer: Arc<Sealer>,
    /// Endpoints' rate limits, shared by replicas through Redis.
    pub rates: Arc<dyn RateLimiter>,
    /// Wakes the dispatcher when deliveries were made due.
    pub wake: Arc<Wake>,
    pub metrics: WebhookMetrics,
    /// Clients that connect only where the guard admits and follow no redirect: one for https
    /// URLs, one for plain http (which may be held to the allow-list).
    pub https: reqwest::Client,
    pub plain: reqwest::Client,
}

fn client(settings: &DeliverySettings, guard: &Arc<Guard>, https: bool) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout.0)
        .connect_timeout(settings.timeout.0.min(std::time::Duration::from_secs(10)))
        .user_agent(concat!("partner-platform-webhooks/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(Guarded {
            guard: guard.clone(),
            https,
        }))
        .build()
}

impl Webhooks {
    pub fn new(
        db: Database,
        outbox: Outbox,
        settings: &Settings,
        guard: Arc<Guard>,
        rates: Arc<dyn RateLimiter>,
    ) -> Result<Self, std::io::Error> {
        Ok(Self {
            https: client(&settings.delivery, &guard, true).map_err(std::io::Error::other)?,
            plain: client(&settings.delivery, &guard, false).map_err(std::io::Error::other)?,
            store: Store::new(db),
            outbox,
            delivery: settings.delivery.clone(),
            settings: settings.webhook.clone(),
            guard,
            sealer: Arc::new(Sealer::new(settings.webhook.secrets_key.expose_secret()).map_err(std::io::Error::other)?),
            rates,
            wake: Arc::new(Wake::default()),
            metrics: WebhookMetrics::new().map_err(std::io::Error::other)?,
        })
    }

    /// Deletes messages past retention, with their deliveries and attempts.
    pub async fn purge_expired(&self) {
        let before = storage::now_millis() - self.settings.retention.millis();
        match self.store.purge(before).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "messages past retention deleted"),
            Err(error) => tracing::warn!(%error, "messages past retention not deleted"),
        }
    }
}
