//! Serving a service: the kit's middleware, extractors and routes around the service's own,
//! bound to its address, stopped gracefully by a cancellation token.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::observe::{Metrics, observe};
use crate::{Readiness, extract, health};

/// `[http]` in every service's configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    pub host: String,
    /// 0 picks a free port (tests).
    pub port: u16,
    /// Largest request body accepted, in bytes; larger ones answer 413.
    pub body_limit: usize,
    /// Time in-flight requests get to finish after shutdown begins.
    pub shutdown_grace: settings::Span,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// After SIGTERM, how long a standalone service keeps serving (and consuming) while it
    /// answers not-ready, so that whoever routes to it (a gateway's checks, Kubernetes'
    /// endpoints) stops sending first. Read by `runtime::main`.
    #[serde(default)]
    pub drain_delay: settings::Span,
}

impl HttpSettings {
    pub fn validate(&self, prefix: &str) -> Result<(), settings::SettingsError> {
        if self.body_limit == 0 {
            return Err(settings::rule(&format!("{prefix}.body_limit"), "must be more than 0"));
        }
        if self.host.parse::<std::net::IpAddr>().is_err() && self.host != "localhost" {
            return Err(settings::rule(
                &format!("{prefix}.host"),
                format!("`{}` is not an IP address", self.host),
            ));
        }
        Ok(())
    }
}

/// What a service brings to the kit.
pub struct Service {
    pub name: &'static str,
    /// The service's document, completed by [`crate::openapi::complete`].
    pub openapi: serde_json::Value,
    pub readiness: Readiness,
    /// Registers the service's routes and its own app data.
    pub routes: Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>,
    /// The service's own metric families, exported at `/metrics` beside the HTTP ones.
    pub metrics: Vec<Box<dyn prometheus::core::Collector>>,
}

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    pub readiness: Readiness,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Waits until the server has stopped (after the shutdown token fired).
    pub async fn stopped(self) -> std::io::Result<()> {
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// Binds and starts serving; on `shutdown` the service turns not-ready, stops accepting, and
/// gives in-flight requests the grace period to finish.
pub fn start(service: Service, settings: &HttpSettings, shutdown: CancellationToken) -> std::io::Result<Running> {
    let metrics = Metrics::new(service.name).map_err(std::io::Error::other)?;
    for collector in service.metrics {
        metrics.registry.register(collector).map_err(std::io::Error::other)?;
    }
    let metrics = web::Data::new(metrics);
    let readiness = web::Data::new(service.readiness.clone());
    let document = serde_json::to_vec(&service.openapi).map_err(std::io::Error::other)?;
    let document = web::Bytes::from(document);
    let routes = service.routes;
    let limit = settings.body_limit;

    let server = HttpServer::new(move || {
        let document = document.clone();
        let routes = routes.clone();
        App::new()
            .app_data(metrics.clone())
            .app_data(readiness.clone())
            .app_data(extract::json_config(limit))
            .app_data(extract::form_config(limit))
            .app_data(extract::payload_config(limit))
            .app_data(extract::query_config())
            .app_data(extract::path_config())
            .wrap(extract::catch_all())
            .wrap(from_fn(observe))
            .service(crate::Endpoint::new("/healthz").get(health::healthz).build())
            .service(crate::Endpoint::new("/readyz").get(health::readyz).build())
            .service(crate::Endpoint::new("/metrics").get(health::metrics).build())
            // Before the service's routes, so a service (the gateway) may set its own default.
            .default_service(web::to(extract::not_found))
            .configure(|cfg| routes(cfg))
            // After them, so a service (the gateway) may serve a document of its own there.
            .service(
                crate::Endpoint::new("/openapi.json")
                    .get(move || {
                        let document = document.clone();
                        async move { HttpResponse::Ok().content_type("application/json").body(document) }
                    })
                    .build(),
            )
    })
    .disable_signals()
    .shutdown_timeout(settings.shutdown_grace.0.as_secs());
    let server = if settings.workers > 0 {
        server.workers(settings.workers)
    } else {
        server
    };
    let server = server.bind((settings.host.as_str(), settings.port))?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other("bound to no address"))?;
    let server = server.run();
    let handle = server.handle();
    let readiness = service.readiness;
    let draining = readiness.clone();
    let name = service.name;
    tokio::spawn(async move {
        shutdown.cancelled().await;
        draining.start_draining();
        tracing::info!(service = name, "shutting down: finishing in-flight requests");
        handle.stop(true).await;
    });
    tracing::info!(service = name, %addr, "listening");
    Ok(Running {
        addr,
        readiness,
        task: tokio::spawn(server),
    })
}

/// Waits for SIGTERM or Ctrl-C, then cancels `shutdown`.
pub async fn shutdown_on_signal(shutdown: CancellationToken) {
    signalled().await;
    shutdown.cancel();
}

/// Returns when SIGTERM or Ctrl-C arrives.
pub async fn signalled() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}
