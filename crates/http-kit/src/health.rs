//! `/healthz` says the process is alive; `/readyz` says it can serve: not draining for
//! shutdown, and every dependency it checks (database, bus, cache) answering in time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::{HttpResponse, web};
use futures_util::future::{BoxFuture, join_all};
use serde::Serialize;
use utoipa::ToSchema;

use crate::observe::Metrics;
use crate::{ApiError, Envelope, ErrorKind};

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

type Check = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The service's readiness: its checks, and whether it is draining for shutdown.
#[derive(Clone, Default)]
pub struct Readiness {
    draining: Arc<AtomicBool>,
    checks: Vec<(String, Check, Required)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Required {
    Yes,
    /// The service still serves without it, worse: reported, but the service stays ready.
    Degrades,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a dependency check; it fails by returning an error or by taking over two seconds.
    pub fn check<F, Fut>(mut self, name: &str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks
            .push((name.to_owned(), Arc::new(move || Box::pin(check())), Required::Yes));
        self
    }

    /// Adds a check of a dependency the service can do without, degraded (the gateway without
    /// Redis): `/readyz` stays 200 and reports `"status": "degraded"` with the error.
    pub fn degradable<F, Fut>(mut self, name: &str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks
            .push((name.to_owned(), Arc::new(move || Box::pin(check())), Required::Degrades));
        self
    }

    /// From now on `/readyz` answers 503, so load balancers stop sending new requests.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    async fn run(&self) -> Vec<CheckResult> {
        join_all(self.checks.iter().map(|(name, check, required)| async move {
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(error),
                Err(_) => Some(format!("no answer within {CHECK_TIMEOUT:?}")),
            };
            CheckResult {
                name: name.clone(),
                ok: outcome.is_none(),
                required: *required == Required::Yes,
                error: outcome,
            }
        }))
        .await
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResult {
    pub name: String,
    pub ok: bool,
    /// False for a dependency the service can serve without (degraded).
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    pub status: &'static str,
    pub checks: Vec<CheckResult>,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive")))]
pub async fn healthz() -> Envelope<Status> {
    Envelope::ok(Status {
        status: "alive",
        checks: Vec::new(),
    })
}

/// The service can serve: not draining, and its dependencies answer.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready"),
    (status = 503, description = "Draining, or a dependency is down", body = crate::ErrorBody),
))]
pub async fn readyz(readiness: web::Data<Readiness>) -> Result<Envelope<Status>, ApiError> {
    if readiness.is_draining() {
        return Err(ApiError::new(ErrorKind::Unavailable)
            .code("draining")
            .debug("shutting down"));
    }
    let checks = readiness.run().await;
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c.required)
        .filter_map(|c| c.error.as_ref().map(|e| format!("{}: {e}", c.name)))
        .collect();
    if failed.is_empty() {
        let degraded = checks.iter().any(|c| !c.ok);
        Ok(Envelope::ok(Status {
            status: if degraded { "degraded" } else { "ready" },
            checks,
        }))
    } else {
        // Which dependency is down is operational, not secret: say it, so probes are debuggable.
        Err(ApiError::new(ErrorKind::Unavailable)
            .code("not_ready")
            .message("A dependency is unavailable.")
            .more_info(failed.join("; ")))
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}
