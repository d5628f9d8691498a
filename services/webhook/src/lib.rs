//! Webhooks: platform events delivered to the endpoints applications register, signed to the
//! Standard Webhooks spec, and only about users who authorized the application. Events become
//! messages (`consumers`, `domain::fanout`); each message's attempts are scheduled in the
//! database and made by the `dispatcher`, through the SSRF `guard`.

mod consumers;
mod dispatcher;
pub mod domain;
pub mod guard;
mod http;
mod metrics;
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
use ipnet::IpNet;
use runtime::{BusSettings, DatabaseSettings, Deps, ServiceSettings, StartError, Started};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use settings::{SettingsError, Span, Validate};
use storage::{Database, Migrations};
use utoipa::OpenApi;

pub const NAME: &str = "webhook";
pub const ENV_PREFIX: &str = "WEBHOOK_";
pub const DEFAULTS: &str = include_str!("../config/default.toml");
/// CloudEvents `source` of this service's events.
pub const SOURCE: &str = "/webhook";

pub static MIGRATIONS: Migrations = Migrations {
    postgres: embed_migrations!("migrations"),
    sqlite: embed_migrations!("migrations"),
};

/// `[delivery]`: how attempts are made and retried.
#[derive(Debug, Clone, Deserialize)]
pub struct DeliverySettings {
    pub timeout: Span,
    pub schedule: Vec<Span>,
    pub jitter_percent: u32,
    pub retry_after_max: Span,
    pub disable_after: Span,
    pub poll_interval: Span,
    pub lease: Span,
    pub batch: i64,
    pub max_in_flight: usize,
    pub max_in_flight_failing: usize,
    pub start_in_flight_per_endpoint: i64,
    pub max_in_flight_per_endpoint: i64,
    pub fast_answer: Span,
    pub response_body_bytes: usize,
}

/// `[webhook]`: secrets, retention, limits.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookSettings {
    /// Seals endpoints' signing secrets and `v1a` secret keys at rest (16+ characters).
    pub secrets_key: SecretString,
    pub rotation_overlap: Span,
    pub retention: Span,
    pub recover_window: Span,
    pub max_endpoints_per_application: i64,
}

/// `[guard]`: where endpoints may point.
#[derive(Debug, Clone, Deserialize)]
pub struct GuardSettings {
    pub allowed_networks: Vec<IpNet>,
    pub require_https: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: HttpSettings,
    pub bus: BusSettings,
    pub database: DatabaseSettings,
    pub identity: IdentitySettings,
    pub cache: CacheSettings,
    pub delivery: DeliverySettings,
    pub webhook: WebhookSettings,
    pub guard: GuardSettings,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.http.validate("http")?;
        self.bus.validate()?;
        self.database.validate()?;
        self.identity.validate()?;
        let d = &self.delivery;
        if d.schedule.is_empty() || d.schedule.len() > 50 {
            return Err(settings::rule("delivery.schedule", "1 to 50 attempts"));
        }
        if d.lease <= d.timeout {
            return Err(settings::rule("delivery.lease", "must be longer than delivery.timeout"));
        }
        if d.timeout.0.is_zero() || d.poll_interval.0.is_zero() {
            return Err(settings::rule(
                "delivery.timeout",
                "timeout and poll_interval must be more than 0",
            ));
        }
        if d.batch < 1 || d.max_in_flight < 1 || d.max_in_flight_failing < 1 || d.start_in_flight_per_endpoint < 1 {
            return Err(settings::rule(
                "delivery.batch",
                "batch and in-flight limits must be at least 1",
            ));
        }
        if d.max_in_flight_per_endpoint < d.start_in_flight_per_endpoint
            || d.max_in_flight_per_endpoint > i64::from(i32::MAX)
        {
            return Err(settings::rule(
                "delivery.max_in_flight_per_endpoint",
                "at least delivery.start_in_flight_per_endpoint",
            ));
        }
        if d.jitter_percent > 100 {
            return Err(settings::rule("delivery.jitter_percent", "0 to 100"));
        }
        if self.webhook.secrets_key.expose_secret().chars().count() < 16 {
            return Err(settings::rule("webhook.secrets_key", "at least 16 characters"));
        }
        if self.webhook.max_endpoints_per_application < 1 {
            return Err(settings::rule("webhook.max_endpoints_per_application", "at least 1"));
        }
        Ok(())
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

#[derive(OpenApi)]
#[openapi(
    info(title = "Partner API platform: webhooks", description = "Endpoints that receive platform events, signed to the Standard Webhooks spec (https://www.standardwebhooks.com), with retries, a delivery log and replay."),
    paths(
        http::event_types::list,
        http::endpoints::create, http::endpoints::list, http::endpoints::show, http::endpoints::update, http::endpoints::delete,
        http::secrets::show, http::secrets::rotate,
        http::secrets::public_key, http::secrets::make_key_pair, http::secrets::delete_key_pair,
        http::messages::attempts, http::messages::test, http::messages::resend, http::messages::recover,
    ),
    tags((name = "webhooks", description = "Receiving platform events")),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

const MIGRATION_SETS: [&Migrations; 2] = [&events::MIGRATIONS, &MIGRATIONS];

pub async fn start(settings: Settings, deps: Deps) -> Result<Started, StartError> {
    let db = runtime::database(&settings.database, &MIGRATION_SETS).await?;
    let (outbox, relay) = runtime::outbox_relay(&db, &deps);
    let guard = Arc::new(guard::Guard::new(&settings.guard, Arc::new(guard::SystemResolver)));
    if !settings.guard.allowed_networks.is_empty() {
        tracing::warn!(networks = ?settings.guard.allowed_networks, "webhook endpoints may point to these non-public networks (guard.allowed_networks; the chart allows none)");
    }
    let redis = settings.cache.redis().map_err(std::io::Error::other)?;
    let state = Arc::new(state::Webhooks::new(
        db.clone(),
        outbox,
        &settings,
        guard,
        cache::rates(redis),
    )?);
    let consumer = deps
        .bus
        .subscribe(
            // Under a backlog, events are taken in a hundred to a transaction.
            Subscription {
                batch: 128,
                ..Subscription::new(NAME, &consumers::BINDINGS)
            },
            Arc::new(consumers::Events(state.clone())),
            deps.shutdown.clone(),
        )
        .await?;
    let dispatcher = tokio::spawn(dispatcher::run(state.clone(), deps.shutdown.clone()));
    let purge = state.clone();
    let retention = runtime::every(std::time::Duration::from_secs(600), deps.shutdown.clone(), move || {
        let state = purge.clone();
        async move { state.purge_expired().await }
    });
    let sampled = state.clone();
    // The backlog is counted beside the dispatcher, never in its way.
    let sampling = runtime::every(std::time::Duration::from_secs(5), deps.shutdown.clone(), move || {
        let state = sampled.clone();
        async move { dispatcher::sample(&state).await }
    });
    let metrics = state.metrics.collectors();
    let data = web::Data::from(state);
    let identity = web::Data::new(settings.identity.clone());
    let service = Service {
        name: NAME,
        openapi: http_kit::openapi::complete(ApiDoc::openapi()),
        readiness: runtime::readiness(&db, &deps),
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
        tasks: vec![relay, consumer, dispatcher, retention, sampling],
    })
}

/// Opens and migrates the database, for `webhook migrate` (a Helm hook in Kubernetes).
pub async fn migrate(settings: &Settings) -> Result<Database, StartError> {
    Ok(runtime::database(&settings.database, &MIGRATION_SETS).await?)
}
