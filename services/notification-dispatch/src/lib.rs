//! Notification dispatch: seed 004's `POST /Services`, through which service providers notify
//! the users who authorized them. A request is parsed and checked at the edge
//! (`domain::request`), accepted with its event in one transaction, queued by its consumer
//! (`consumers`) and sent by the `dispatcher` through the channels' providers (`channels`),
//! with the user's preferences (`domain::preferences`) deciding when and how.

pub mod channels;
mod consumers;
mod destination;
mod dispatcher;
pub mod domain;
mod group_commit;
mod http;
mod metrics;
mod receipts;
mod state;
pub mod store;
mod views;

use std::sync::Arc;

use actix_web::web;
use cache::CacheSettings;
use diesel_migrations::embed_migrations;
use events::Subscription;
use http_kit::openapi::BearerScheme;
use http_kit::server::{self, HttpSettings, Service};
use identity::IdentitySettings;
use runtime::{BusSettings, DatabaseSettings, Deps, ServiceSettings, StartError, Started};
use serde::Deserialize;
use settings::{SettingsError, Span, Validate};
use storage::{Database, Migrations};
use utoipa::OpenApi;

pub use channels::ChannelsSettings;

pub const NAME: &str = "notification-dispatch";
pub const ENV_PREFIX: &str = "NOTIFICATION_DISPATCH_";
pub const DEFAULTS: &str = include_str!("../config/default.toml");
/// CloudEvents `source` of this service's events.
pub const SOURCE: &str = "/notification-dispatch";

pub static MIGRATIONS: Migrations = Migrations {
    postgres: embed_migrations!("migrations"),
    sqlite: embed_migrations!("migrations"),
};

/// `[notifications]`: what a request may carry and how long it is kept.
#[derive(Debug, Clone, Deserialize)]
pub struct NotificationSettings {
    pub picture_max_bytes: usize,
    pub retention: Span,
    pub max_services_per_provider: i64,
}

/// `[dispatch]`: how notifications are tried and retried.
#[derive(Debug, Clone, Deserialize)]
pub struct DispatchSettings {
    pub schedule: Vec<Span>,
    pub jitter_percent: u32,
    pub send_timeout: Span,
    pub lease: Span,
    pub poll_interval: Span,
    pub batch: i64,
    pub max_in_flight: usize,
    pub breaker_failures: u32,
    pub breaker_cooldown: Span,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: HttpSettings,
    pub bus: BusSettings,
    pub database: DatabaseSettings,
    pub identity: IdentitySettings,
    pub cache: CacheSettings,
    pub notifications: NotificationSettings,
    pub dispatch: DispatchSettings,
    pub channels: ChannelsSettings,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.http.validate("http")?;
        self.bus.validate()?;
        self.database.validate()?;
        self.identity.validate()?;
        let d = &self.dispatch;
        if d.schedule.is_empty() || d.schedule.len() > 50 {
            return Err(settings::rule("dispatch.schedule", "1 to 50 tries"));
        }
        if d.send_timeout.0.is_zero() || d.poll_interval.0.is_zero() {
            return Err(settings::rule(
                "dispatch.send_timeout",
                "send_timeout and poll_interval must be more than 0",
            ));
        }
        if d.lease <= d.send_timeout {
            return Err(settings::rule(
                "dispatch.lease",
                "must be longer than dispatch.send_timeout",
            ));
        }
        if d.batch < 1 || d.max_in_flight < 1 || d.breaker_failures < 1 {
            return Err(settings::rule(
                "dispatch.batch",
                "batch, max_in_flight and breaker_failures must be at least 1",
            ));
        }
        if d.jitter_percent > 100 {
            return Err(settings::rule("dispatch.jitter_percent", "0 to 100"));
        }
        if self.notifications.max_services_per_provider < 1 {
            return Err(settings::rule("notifications.max_services_per_provider", "at least 1"));
        }
        self.channels.validate()
    }
}

impl ServiceSettings for Settings {
    fn bus(&self) -> &BusSettings {
        &self.bus
    }

    fn http(&self) -> &HttpSettings {
        &self.http
    }
}

/// The document, with what the preferences' parser takes.
fn document() -> serde_json::Value {
    let mut doc = http_kit::openapi::complete(ApiDoc::openapi());
    for (schema, property, keywords) in domain::preferences::PreferencesDocument::keywords() {
        http_kit::openapi::describe(&mut doc, schema, property, keywords);
    }
    doc
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Partner API platform: notifications", description = "Seed 004's services API: service providers notify the users who authorized them by SMS, push, SAT, e-mail or the in-app inbox; users choose how and when."),
    paths(
        http::providers::create, http::providers::find, http::providers::show,
        http::provider_services::create, http::provider_services::list, http::provider_services::rotate, http::provider_services::recent,
        http::send::send, http::send::status,
        http::preferences::show, http::preferences::replace,
        http::devices::register, http::devices::list, http::devices::remove,
        http::inbox::list, http::inbox::mark_read,
    ),
    tags((name = "services", description = "Seed 004: notifying users, for service providers"),
         (name = "notifications", description = "A user's notification preferences, devices and inbox")),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

const MIGRATION_SETS: [&Migrations; 2] = [&events::MIGRATIONS, &MIGRATIONS];

pub async fn start(settings: Settings, deps: Deps) -> Result<Started, StartError> {
    let db = runtime::database(&settings.database, &MIGRATION_SETS).await?;
    let (outbox, relay) = runtime::outbox_relay(&db, &deps);
    let redis = settings.cache.redis().map_err(std::io::Error::other)?;
    let (receipts, receipts_in) = tokio::sync::mpsc::unbounded_channel();
    let senders =
        channels::Senders::build(&settings.channels, &settings.dispatch, &receipts).map_err(std::io::Error::other)?;
    for line in senders.describe() {
        tracing::info!("{line}");
    }
    let state = Arc::new(state::Dispatch::new(
        db.clone(),
        outbox,
        &settings,
        senders,
        cache::rates(redis),
    )?);
    let consumer = deps
        .bus
        .subscribe(
            Subscription::new(NAME, &consumers::BINDINGS),
            Arc::new(consumers::Events(state.clone())),
            deps.shutdown.clone(),
        )
        .await?;
    let dispatcher = tokio::spawn(dispatcher::run(state.clone(), deps.shutdown.clone()));
    let receipts = tokio::spawn(receipts::run(state.clone(), receipts_in, deps.shutdown.clone()));
    let purge = state.clone();
    let retention = runtime::every(std::time::Duration::from_secs(600), deps.shutdown.clone(), move || {
        let state = purge.clone();
        async move { state.purge_expired().await }
    });
    let metrics = state.metrics.collectors();
    let state_for_checks = state.clone();
    let data = web::Data::from(state);
    let identity = web::Data::new(settings.identity.clone());
    let service = Service {
        name: NAME,
        openapi: document(),
        readiness: providers_reachable(runtime::readiness(&db, &deps), &state_for_checks),
        routes: Arc::new(move |cfg| {
            cfg.app_data(data.clone()).app_data(identity.clone());
            http::routes(cfg);
        }),
        metrics: std::iter::once(runtime::statement_metrics(&db))
            .chain(metrics)
            .collect(),
    };
    let http = server::start(service, &settings.http, deps.shutdown.clone())?;
    Ok(Started {
        name: NAME,
        http,
        tasks: vec![relay, consumer, dispatcher, receipts, retention],
    })
}

/// `/readyz` reports each channel provider; one that cannot be reached degrades the service
/// (notifications wait, retry and fail over) but leaves it ready: accepting is what it is for.
fn providers_reachable(readiness: http_kit::Readiness, state: &Arc<state::Dispatch>) -> http_kit::Readiness {
    state.senders.all().fold(readiness, |readiness, provider| {
        let name = format!("provider {}", provider.name);
        let provider = provider.clone();
        let check = remembered(
            move || {
                let provider = provider.clone();
                async move { provider.sender.check().await }
            },
            REACHABLE_FOR,
            UNREACHABLE_FOR,
        );
        readiness.degradable(&name, check)
    })
}

/// How long a provider's answer stands. Probes come every few seconds from each kubelet and
/// gateway, and a provider's check can be a whole session (SMTP: connect, EHLO, NOOP, QUIT);
/// a failure stands less long, so a provider back up is seen soon.
const REACHABLE_FOR: std::time::Duration = std::time::Duration::from_secs(30);
const UNREACHABLE_FOR: std::time::Duration = std::time::Duration::from_secs(5);

type Outcome = Result<(), String>;

/// `check`, asked again only once its last answer is older than it stands: `ok_for` for a
/// success, `failed_for` for a failure.
fn remembered<F, Fut>(
    check: F,
    ok_for: std::time::Duration,
    failed_for: std::time::Duration,
) -> impl Fn() -> futures_util::future::BoxFuture<'static, Outcome> + Send + Sync + 'static
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Outcome> + Send + 'static,
{
    let last: Arc<std::sync::Mutex<Option<(std::time::Instant, Outcome)>>> = Arc::default();
    let check = Arc::new(check);
    move || {
        let (last, check) = (last.clone(), check.clone());
        Box::pin(async move {
            let known = last.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            if let Some((at, outcome)) = known {
                let stands = if outcome.is_ok() { ok_for } else { failed_for };
                if at.elapsed() < stands {
                    return outcome;
                }
            }
            let outcome = check().await;
            *last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((std::time::Instant::now(), outcome.clone()));
            outcome
        })
    }
}

/// Opens and migrates the database, for `notification-dispatch migrate` (a Helm hook).
pub async fn migrate(settings: &Settings) -> Result<Database, StartError> {
    Ok(runtime::database(&settings.database, &MIGRATION_SETS).await?)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_providers_answer_is_remembered_not_asked_per_probe() {
        let asked = Arc::new(AtomicUsize::new(0));
        let counted = asked.clone();
        let failed_for = std::time::Duration::from_millis(50);
        let check = remembered(
            move || {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                async move { if n == 0 { Err("down".to_owned()) } else { Ok(()) } }
            },
            REACHABLE_FOR,
            failed_for,
        );
        assert_eq!(check().await, Err("down".to_owned()));
        assert_eq!(check().await, Err("down".to_owned()), "a failure stands a while");
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        tokio::time::sleep(failed_for).await;
        assert_eq!(check().await, Ok(()), "asked again once the failure is old");
        assert_eq!(check().await, Ok(()));
        assert_eq!(asked.load(Ordering::SeqCst), 2);
    }
}
