//! One Redis connection per process, shared by every cache kind. Each call is bounded in time,
//! and after a failure calls fail at once for a moment instead of queueing on a dead server:
//! callers then degrade (the gateway to its in-process cache) without slowing every request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::CacheError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a failed Redis is left alone before it is tried again.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_millis(500);

pub struct Redis {
    client: redis::Client,
    connection: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
    prefix: String,
    /// Milliseconds since `epoch` before which calls fail without trying.
    paused_until: AtomicU64,
    epoch: Instant,
    timeout: Duration,
}

fn unavailable(error: impl std::fmt::Display) -> CacheError {
    CacheError::Unavailable(error.to_string())
}

impl Redis {
    /// A `rediss://` URL speaks TLS, verifying the server's certificate against `cas`.
    pub fn new(url: &str, cas: &settings::TrustedCas, prefix: &str, timeout: Duration) -> Result<Self, CacheError> {
        let client = if url.starts_with("rediss://") {
            // Redis builds its TLS configuration from rustls's process-wide provider; the
            // workspace builds rustls with ring only, so that one is set here explicitly.
            let _already_set = rustls::crypto::ring::default_provider().install_default();
            let certificates = redis::TlsCertificates {
                client_tls: None,
                root_cert: cas.pem().map(|pem| pem.as_bytes().to_vec()),
            };
            redis::Client::build_with_tls(url, certificates)
        } else {
            redis::Client::open(url)
        };
        Ok(Self {
            client: client.map_err(unavailable)?,
            connection: tokio::sync::OnceCell::new(),
            prefix: prefix.to_owned(),
            paused_until: AtomicU64::new(0),
            epoch: Instant::now(),
            timeout,
        })
    }

    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    async fn connection(&self) -> Result<redis::aio::ConnectionManager, CacheError> {
        self.connection
            .get_or_try_init(|| async {
                // No retry inside the manager: its back-off would hide why the server refused
                // (a certificate) behind the call timeout. Calls that follow try again, after
                // the pause below, and a lost connection is re-made on the next call.
                let config = redis::aio::ConnectionManagerConfig::new().set_number_of_retries(0);
                let manager = redis::aio::ConnectionManager::new_with_config(self.client.clone(), config);
                tokio::time::timeout(CONNECT_TIMEOUT, manager)
                    .await
                    .map_err(|_| CacheError::Unavailable("no answer from Redis".into()))?
                    .map_err(unavailable)
            })
            .await
            .cloned()
    }

    /// Runs `work` on the shared connection within the call timeout.
    pub async fn call<T, F, Fut>(&self, work: F) -> Result<T, CacheError>
    where
        F: FnOnce(redis::aio::ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if self.elapsed_ms() < self.paused_until.load(Ordering::Relaxed) {
            return Err(CacheError::Unavailable("Redis failed a moment ago".into()));
        }
        let outcome = tokio::time::timeout(self.timeout, async {
            let connection = self.connection().await?;
            work(connection).await.map_err(unavailable)
        })
        .await
        .unwrap_or_else(|_| {
            Err(CacheError::Unavailable(format!(
                "no answer from Redis within {:?}",
                self.timeout
            )))
        });
        if outcome.is_err() {
            let pause = u64::try_from(PAUSE_AFTER_FAILURE.as_millis()).unwrap_or(u64::MAX);
            self.paused_until.store(self.elapsed_ms() + pause, Ordering::Relaxed);
        }
        outcome
    }

    pub async fn ping(&self) -> Result<(), CacheError> {
        // The probe itself ignores the pause, so readiness sees Redis come back at once.
        let connection = tokio::time::timeout(self.timeout, self.connection())
            .await
            .map_err(|_| CacheError::Unavailable("no answer from Redis".into()))??;
        let mut connection = connection;
        tokio::time::timeout(self.timeout, redis::cmd("PING").query_async::<String>(&mut connection))
            .await
            .map_err(|_| CacheError::Unavailable("no answer from Redis".into()))?
            .map(drop)
            .map_err(unavailable)?;
        self.paused_until.store(0, Ordering::Relaxed);
        Ok(())
    }
}
