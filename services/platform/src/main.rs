//! `make run`: the whole platform in one process. Each service keeps its own port, database
//! file under `./data` and settings (its defaults file, then its environment variables); they
//! share one bus kept in an SQLite file instead of RabbitMQ. Ctrl-C stops them all: in-flight
//! requests finish, consumers settle, outboxes drain.

use std::process::ExitCode;
use std::sync::Arc;

use events::SqliteBus;
use runtime::{Deps, Started};
use serde::Deserialize;
use storage::{Database, PoolSettings};
use tokio_util::sync::CancellationToken;

const DEFAULTS: &str = include_str!("../config/default.toml");
const ENV_PREFIX: &str = "EMBEDDED_";

#[derive(Debug, Deserialize)]
struct EmbeddedSettings {
    bus: BusFile,
}

#[derive(Debug, Deserialize)]
struct BusFile {
    database_url: String,
}

impl settings::Validate for EmbeddedSettings {
    fn validate(&self) -> Result<(), settings::SettingsError> {
        if self.bus.database_url.starts_with("sqlite:") {
            Ok(())
        } else {
            Err(settings::rule("bus.database_url", "must be an sqlite:// URL"))
        }
    }
}

/// The bus every service shares, in the file the settings name.
async fn open_bus() -> Result<(SqliteBus, String), ExitCode> {
    let settings: EmbeddedSettings = settings_or_exit(settings::load(DEFAULTS, ENV_PREFIX))?;
    let url = settings.bus.database_url;
    let db = Database::connect(&url, &PoolSettings::default()).map_err(|e| start_failed("the bus", e))?;
    let bus = SqliteBus::open(db).await.map_err(|e| start_failed("the bus", e))?;
    Ok((bus, url))
}

/// A configuration error names its key; the platform exits with status 2, as each service would.
fn settings_or_exit<S>(loaded: Result<S, settings::SettingsError>) -> Result<S, ExitCode> {
    loaded.map_err(|error| {
        eprintln!("platform: {error}");
        ExitCode::from(2)
    })
}

fn start_failed(service: &str, error: impl std::fmt::Display) -> ExitCode {
    eprintln!("platform: {service} failed to start: {error}");
    ExitCode::FAILURE
}

/// Starts every service. Consumers of auth's events (profiles, blog, webhooks, notifications) start first: an event published while no
/// queue is bound to its routing key reaches nobody (the bootstrap administrator's
/// `user.registered`, on a first start).
async fn start_all(deps: &Deps) -> Result<Vec<Started>, ExitCode> {
    let profile_settings = settings_or_exit(settings::load(user_profile::DEFAULTS, user_profile::ENV_PREFIX))?;
    let profiles = user_profile::start(profile_settings, deps.clone())
        .await
        .map_err(|e| start_failed("user-profile", e))?;
    let blog_settings = settings_or_exit(settings::load(blog::DEFAULTS, blog::ENV_PREFIX))?;
    let blog = blog::start(blog_settings, deps.clone())
        .await
        .map_err(|e| start_failed("blog", e))?;
    let webhook_settings = settings_or_exit(settings::load(webhook::DEFAULTS, webhook::ENV_PREFIX))?;
    let webhooks = webhook::start(webhook_settings, deps.clone())
        .await
        .map_err(|e| start_failed("webhook", e))?;
    let notification_settings = settings_or_exit(settings::load(
        notification_dispatch::DEFAULTS,
        notification_dispatch::ENV_PREFIX,
    ))?;
    let notifications = notification_dispatch::start(notification_settings, deps.clone())
        .await
        .map_err(|e| start_failed("notification-dispatch", e))?;
    let auth_settings = settings_or_exit(auth::load_settings())?;
    let auth = auth::start(auth_settings, deps.clone())
        .await
        .map_err(|e| start_failed("auth", e))?;
    let introspection_settings = settings_or_exit(settings::load(introspection::DEFAULTS, introspection::ENV_PREFIX))?;
    let introspection = introspection::start(introspection_settings, deps.clone())
        .await
        .map_err(|e| start_failed("introspection", e))?;
    let portal_settings = settings_or_exit(settings::load(portal::DEFAULTS, portal::ENV_PREFIX))?;
    let portal = portal::start(portal_settings, deps.clone())
        .await
        .map_err(|e| start_failed("portal", e))?;
    let gateway_settings = settings_or_exit(settings::load(gateway::DEFAULTS, gateway::ENV_PREFIX))?;
    let gateway = gateway::start(gateway_settings, deps.clone())
        .await
        .map_err(|e| start_failed("gateway", e))?;
    Ok(vec![
        auth,
        introspection,
        profiles,
        blog,
        webhooks,
        notifications,
        portal,
        gateway,
    ])
}

#[tokio::main]
async fn main() -> ExitCode {
    let _telemetry = match telemetry::init("platform") {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("platform: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (bus, bus_url) = match open_bus().await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let shutdown = CancellationToken::new();
    let deps = Deps {
        bus: Arc::new(bus),
        shutdown: shutdown.clone(),
    };
    let started = match start_all(&deps).await {
        Ok(started) => started,
        Err(code) => {
            shutdown.cancel();
            return code;
        }
    };
    println!("\nPartner API platform, embedded mode (SQLite under ./data, the bus in {bus_url})");
    for service in &started {
        println!("  {:<22} http://{}", service.name, service.http.addr);
    }
    if let Some(gateway) = started.iter().find(|s| s.name == gateway::NAME) {
        println!("\nGateway: http://{}   (Ctrl-C to stop)", gateway.http.addr);
        println!("Developer portal: http://{}/portal\n", gateway.http.addr);
    }
    http_kit::server::shutdown_on_signal(shutdown).await;
    for service in started {
        service.stopped().await;
    }
    tracing::info!("platform stopped");
    ExitCode::SUCCESS
}
