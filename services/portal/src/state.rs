//! What every handler shares: the database, the platform's API through the gateway, and the
//! portal's OAuth2 client.

use std::time::Duration;

use storage::Database;

use crate::Settings;
use crate::api::Api;
use crate::sign_in::OAuth;
use crate::store::Store;

/// Usage is kept this many days (the portal shows the last 30).
const USAGE_KEPT_DAYS: i64 = 90;

pub struct Portal {
    pub store: Store,
    pub api: Api,
    pub oauth: OAuth,
    pub session_ttl: Duration,
    /// Cookies are `Secure` unless the portal is reached over plain http (loopback, make run).
    pub secure_cookies: bool,
    /// Striped locks that make one session's token refreshes take turns (in this replica;
    /// see `sessions`).
    pub refresh_locks: Vec<tokio::sync::Mutex<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("portal URL: {0}")]
    Url(#[from] url::ParseError),
}

impl Portal {
    pub fn new(db: Database, settings: &Settings) -> Result<Self, SetupError> {
        // No redirects: a token endpoint that redirects is an attack (the oauth2 crate's advice).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.portal.call_timeout.0)
            .build()?;
        Ok(Self {
            api: Api::new(http.clone(), settings.portal.gateway_url.clone()),
            oauth: OAuth::new(http, settings)?,
            session_ttl: settings.portal.session_ttl.0,
            secure_cookies: settings.portal.public_url.scheme() == "https",
            refresh_locks: (0..64).map(|_| tokio::sync::Mutex::new(())).collect(),
            store: Store::new(db),
        })
    }

    pub async fn purge_expired(&self) {
        let now = storage::now_millis();
        let keep_from = crate::views::usage::day_string(now / 86_400_000 - USAGE_KEPT_DAYS);
        let purged = self.store.purge(now, keep_from).await;
        match purged {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "purged expired sessions, sign-ins and old usage"),
            Err(error) => tracing::warn!(%error, "purging sessions failed"),
        }
    }
}
