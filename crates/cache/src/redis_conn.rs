//! One Redis connection per process, shared by every cache kind. Each call is bounded in time,
//! and after a failure calls fail at once for a moment instead of queueing on a dead server:
//! callers then degrade (the gateway to its in-process cache) without slowing every request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::CacheError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a failed Redis is left alone before it is tried again.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_millis(500);

pub struct Redis {
    client: redis::Client,
    connection: Arc<tokio::sync::OnceCell<ConnectionManager>>,
    /// Why the last attempt to connect failed, told with the timeouts of calls that did not
    /// wait long enough to see it (a refused certificate, say).
    connect_failure: Arc<Mutex<Option<String>>>,
    prefix: String,
    /// Milliseconds since `epoch` before which calls fail without trying.
    paused_until: AtomicU64,
    epoch: Instant,
    timeout: Duration,
}

/// No retry inside the manager: its back-off would hide why the server refused (a
/// certificate) behind the call timeout. Calls that follow try again, after the pause, and a
/// lost connection is re-made on the next call.
async fn connect(client: redis::Client) -> Result<ConnectionManager, CacheError> {
    let config = ConnectionManagerConfig::new().set_number_of_retries(0);
    tokio::time::timeout(CONNECT_TIMEOUT, ConnectionManager::new_with_config(client, config))
        .await
        .map_err(|_| CacheError::Unavailable("no answer from Redis".into()))?
        .map_err(unavailable)
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
            connection: Arc::default(),
            connect_failure: Arc::default(),
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

    /// The shared connection, made on first use. Connecting runs in a task of its own: a TLS
    /// handshake on a loaded machine can outlast one call's timeout, and a connection begun
    /// anew by each call and cancelled with it would never be made.
    async fn connection(&self) -> Result<ConnectionManager, CacheError> {
        if let Some(connection) = self.connection.get() {
            return Ok(connection.clone());
        }
        let (cell, client, failure) = (
            self.connection.clone(),
            self.client.clone(),
            self.connect_failure.clone(),
        );
        let attempt = tokio::spawn(async move {
            let made = cell.get_or_try_init(|| connect(client)).await.cloned();
            *failure.lock().unwrap_or_else(PoisonError::into_inner) = made.as_ref().err().map(ToString::to_string);
            made
        });
        attempt.await.map_err(unavailable)?
    }

    fn no_answer(&self) -> CacheError {
        let failure = self.connect_failure.lock().unwrap_or_else(PoisonError::into_inner);
        CacheError::Unavailable(match failure.as_deref() {
            Some(why) => format!("no answer from Redis within {:?} ({why})", self.timeout),
            None => format!("no answer from Redis within {:?}", self.timeout),
        })
    }

    /// Runs `work` on the shared connection within the call timeout.
    pub async fn call<T, F, Fut>(&self, work: F) -> Result<T, CacheError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
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
        .unwrap_or_else(|_| Err(self.no_answer()));
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
            .map_err(|_| self.no_answer())??;
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
