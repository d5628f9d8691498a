//! The parts every service process assembles the same way, so a service crate only says what
//! is its own: typed `[database]` and `[bus]` settings, the bus they select, a migrated
//! database with its outbox relay, and the `main` of a standalone binary.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use events::{Bus, InProcessBus, OutboxRelay, RabbitBus, RabbitSettings, RelaySettings};
use http_kit::server::Running;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use settings::{SettingsError, Validate};
use storage::{Database, Migrations, PoolSettings, StorageError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// `[database]`: where the service keeps its data.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// `sqlite://data/<service>.db` (embedded) or `postgres://user:pass@host/db`.
    pub url: SecretString,
    pub max_connections: u32,
}

impl DatabaseSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        let url = self.url.expose_secret();
        if !["postgres://", "postgresql://", "sqlite:"]
            .iter()
            .any(|p| url.starts_with(p))
        {
            return Err(settings::rule(
                "database.url",
                "must start with postgres:// or sqlite://",
            ));
        }
        if self.max_connections == 0 {
            return Err(settings::rule("database.max_connections", "must be more than 0"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BusKind {
    /// Queues inside this process: embedded mode, one process for every service.
    InProcess,
    Rabbitmq,
}

/// `[bus]`, shared by every service (`PLATFORM_BUS__…`).
#[derive(Debug, Clone, Deserialize)]
pub struct BusSettings {
    pub kind: BusKind,
    pub url: SecretString,
    pub exchange: String,
    /// The CAs an `amqps://` broker's certificate may chain to, besides the system's roots.
    pub tls_ca: settings::TrustedCas,
}

impl BusSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.kind == BusKind::Rabbitmq && !self.url.expose_secret().starts_with("amqp") {
            return Err(settings::rule(
                "bus.url",
                "must be an amqp:// or amqps:// URL when bus.kind = \"rabbitmq\"",
            ));
        }
        if self.exchange.is_empty() {
            return Err(settings::rule("bus.exchange", "must not be empty"));
        }
        Ok(())
    }

    /// The bus these settings select, for a service running alone in its process.
    pub fn connect(&self, service: &str) -> Arc<dyn Bus> {
        match self.kind {
            BusKind::Rabbitmq => Arc::new(RabbitBus::new(RabbitSettings {
                url: self.url.expose_secret().to_owned(),
                exchange: self.exchange.clone(),
                connection_name: service.to_owned(),
                tls_ca: self.tls_ca.pem().map(str::to_owned),
            })),
            BusKind::InProcess => {
                tracing::warn!(
                    service,
                    "bus.kind = \"in-process\" in a standalone process: events stay inside it"
                );
                Arc::new(InProcessBus::new())
            }
        }
    }
}

/// What a service is given to start: the shared bus and the shutdown signal.
#[derive(Clone)]
pub struct Deps {
    pub bus: Arc<dyn Bus>,
    pub shutdown: CancellationToken,
}

/// A started service: its HTTP server and its background tasks (relay, consumers).
pub struct Started {
    pub name: &'static str,
    pub http: Running,
    pub tasks: Vec<JoinHandle<()>>,
}

impl Started {
    /// Waits until the server has finished its in-flight requests and every task has stopped
    /// (consumers settled, outbox drained).
    pub async fn stopped(self) {
        if let Err(error) = self.http.stopped().await {
            tracing::error!(service = self.name, %error, "HTTP server stopped with an error");
        }
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(service = self.name, %error, "background task failed");
            }
        }
    }
}

/// Opens and migrates the service's database.
pub async fn database(
    settings: &DatabaseSettings,
    migrations: &[&'static Migrations],
) -> Result<Database, StorageError> {
    let url = settings.url.expose_secret().to_owned();
    let pool = PoolSettings {
        max_connections: settings.max_connections,
        ..PoolSettings::default()
    };
    // Connecting blocks (it opens the first connection): keep it off the executor.
    let db = tokio::task::spawn_blocking(move || Database::connect(&url, &pool))
        .await
        .map_err(StorageError::Task)??;
    let applied = db.migrate(migrations).await?;
    tracing::info!(backend = ?db.backend(), applied, "database ready");
    Ok(db)
}

/// Starts the outbox relay of `db`; it drains when `deps.shutdown` fires.
pub fn outbox_relay(db: &Database, deps: &Deps) -> (events::Outbox, JoinHandle<()>) {
    let relay = OutboxRelay::new(db.clone(), deps.bus.clone(), RelaySettings::default());
    let outbox = events::Outbox::new(db.clone(), relay.waker());
    (outbox, tokio::spawn(relay.run(deps.shutdown.clone())))
}

/// Runs `job` every `period` (the first time after one period) until `shutdown`: a service's
/// housekeeping (purging what expired, reloading keys).
pub fn every<F, Fut>(period: std::time::Duration, shutdown: CancellationToken, mut job: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => job().await,
            }
        }
    })
}

/// Settings every service has, so the standalone `main` can read them.
pub trait ServiceSettings: serde::de::DeserializeOwned + Validate {
    fn bus(&self) -> &BusSettings;
    fn http(&self) -> &http_kit::HttpSettings;
}

/// `/readyz` checks for a service with a database and the bus.
pub fn readiness(db: &Database, deps: &Deps) -> http_kit::Readiness {
    let (db, bus) = (db.clone(), deps.bus.clone());
    http_kit::Readiness::new()
        .check("database", move || {
            let db = db.clone();
            async move { db.ping().await.map_err(|e| e.to_string()) }
        })
        .check("bus", move || {
            let bus = bus.clone();
            async move { bus.ping().await.map_err(|e| e.to_string()) }
        })
}

/// Telemetry, then settings; a bad configuration exits with status 2 and names the key.
fn prepare<S>(
    name: &str,
    load: impl FnOnce() -> Result<S, SettingsError>,
) -> Result<(telemetry::TelemetryGuard, S), ExitCode> {
    let guard = telemetry::init(name).map_err(|error| {
        eprintln!("{name}: {error}");
        ExitCode::FAILURE
    })?;
    let settings = load().map_err(|error| {
        tracing::error!(%error, "invalid configuration");
        eprintln!("{name}: {error}");
        ExitCode::from(2)
    })?;
    Ok((guard, settings))
}

/// The whole `main` of a standalone service binary: telemetry, settings (a bad key exits with
/// status 2 and names it), the bus, start, then wait for SIGTERM or Ctrl-C and stop in order.
pub async fn main<S, F, Fut, E>(name: &'static str, defaults: &str, prefix: &str, start: F) -> ExitCode
where
    S: ServiceSettings,
    F: FnOnce(S, Deps) -> Fut,
    Fut: Future<Output = Result<Started, E>>,
    E: std::fmt::Display,
{
    main_with(name, || settings::load(defaults, prefix), start).await
}

/// [`main`] with the service's own settings loader.
pub async fn main_with<S, L, F, Fut, E>(name: &'static str, load: L, start: F) -> ExitCode
where
    S: ServiceSettings,
    L: FnOnce() -> Result<S, SettingsError>,
    F: FnOnce(S, Deps) -> Fut,
    Fut: Future<Output = Result<Started, E>>,
    E: std::fmt::Display,
{
    let (_telemetry, settings) = match prepare(name, load) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    let shutdown = CancellationToken::new();
    let drain_delay = settings.http().drain_delay.0;
    let deps = Deps {
        bus: settings.bus().connect(name),
        shutdown: shutdown.clone(),
    };
    let started = match start(settings, deps).await {
        Ok(started) => started,
        Err(error) => {
            tracing::error!(%error, "failed to start");
            // As for a bad configuration: the reason a process exits is on stderr too, where
            // `kubectl logs --previous` and a terminal show it whatever the log format.
            eprintln!("{name}: failed to start: {error}");
            shutdown.cancel();
            return ExitCode::FAILURE;
        }
    };
    http_kit::server::signalled().await;
    // Not ready, but still serving, and consumers and the relay still running, for the drain
    // delay: whoever routes here stops first. Then everything stops, HTTP first.
    if !drain_delay.is_zero() {
        started.http.readiness.start_draining();
        tracing::info!(?drain_delay, "not ready; serving until the drain delay ends");
        tokio::time::sleep(drain_delay).await;
    }
    shutdown.cancel();
    started.stopped().await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// A one-shot subcommand (`migrate`, `rotate-keys`): prints its result, exits 0, or 1 on error.
pub async fn command<S, L, F, Fut, E>(name: &'static str, load: L, run: F) -> ExitCode
where
    L: FnOnce() -> Result<S, SettingsError>,
    F: FnOnce(S) -> Fut,
    Fut: Future<Output = Result<String, E>>,
    E: std::fmt::Display,
{
    let (_telemetry, settings) = match prepare(name, load) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    match run(settings).await {
        Ok(message) => {
            println!("{name}: {message}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{name}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `db_statements_total` on `/metrics`: the statements the service's database pool ran.
/// Against `http_requests_total` it shows how many statements a request costs.
pub fn statement_metrics(db: &Database) -> Box<dyn prometheus::core::Collector> {
    Box::new(Statements {
        db: db.clone(),
        desc: prometheus::core::Collector::desc(&statements_counter())
            .into_iter()
            .cloned()
            .collect(),
    })
}

struct Statements {
    db: Database,
    desc: Vec<prometheus::core::Desc>,
}

fn statements_counter() -> prometheus::IntCounter {
    prometheus::IntCounter::new(
        "db_statements_total",
        "Statements run by the database pool (queries, and the pool's connection checks)",
    )
    .unwrap_or_else(|_| unreachable!("a valid, constant metric name"))
}

impl prometheus::core::Collector for Statements {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.desc.iter().collect()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let counter = statements_counter();
        counter.inc_by(self.db.statements());
        prometheus::core::Collector::collect(&counter)
    }
}

/// Why a service without dependencies of its own failed to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Bus(#[from] events::BusError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
