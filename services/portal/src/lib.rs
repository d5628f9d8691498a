//! The developer portal: server-rendered pages for partners (their applications, their secrets)
//! and for every user (the applications they authorized). It is a confidential OAuth2 client of
//! auth like any partner's application (`sign_in`), keeps the person's tokens in a server-side
//! `sessions` row, and calls the platform's APIs through the gateway with them (`api`).

mod api;
mod consumers;
mod error;
mod http;
mod sessions;
mod sign_in;
mod state;
pub mod store;
mod views;

use std::sync::Arc;

use actix_web::web;
use diesel_migrations::embed_migrations;
use http_kit::server::{self, HttpSettings, Service};
use runtime::{BusSettings, DatabaseSettings, Deps, ServiceSettings, StartError, Started};
use secrecy::SecretString;
use serde::Deserialize;
use settings::{SettingsError, Span, Validate};
use storage::{Database, Migrations};
use utoipa::OpenApi;

pub const NAME: &str = "portal";
pub const ENV_PREFIX: &str = "PORTAL_";
pub const DEFAULTS: &str = include_str!("../config/default.toml");

pub static MIGRATIONS: Migrations = Migrations {
    postgres: embed_migrations!("migrations"),
    sqlite: embed_migrations!("migrations"),
};

/// `[portal]`: where it is reached and where it calls.
#[derive(Debug, Clone, Deserialize)]
pub struct PortalSettings {
    pub public_url: url::Url,
    pub gateway_url: url::Url,
    pub session_ttl: Span,
    pub call_timeout: Span,
}

/// `[oauth]`: the portal's client at auth.
#[derive(Debug, Clone, Deserialize)]
pub struct OAuthSettings {
    pub client_id: String,
    pub client_secret: SecretString,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: HttpSettings,
    pub bus: BusSettings,
    pub database: DatabaseSettings,
    pub portal: PortalSettings,
    pub oauth: OAuthSettings,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.http.validate("http")?;
        self.bus.validate()?;
        self.database.validate()?;
        let p = &self.portal;
        for (key, url) in [
            ("portal.public_url", &p.public_url),
            ("portal.gateway_url", &p.gateway_url),
        ] {
            if !matches!(url.scheme(), "http" | "https") || url.query().is_some() {
                return Err(settings::rule(key, "must be an http(s) URL without query"));
            }
        }
        if !p.public_url.path().trim_end_matches('/').ends_with("/portal") {
            return Err(settings::rule(
                "portal.public_url",
                "must end with /portal (the gateway's route)",
            ));
        }
        if p.session_ttl.0.as_secs() < 60 || p.call_timeout.0.is_zero() {
            return Err(settings::rule(
                "portal.session_ttl",
                "session_ttl must be at least 1m and call_timeout more than 0",
            ));
        }
        if self.oauth.client_id.is_empty() {
            return Err(settings::rule("oauth.client_id", "must be set"));
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

/// The portal answers HTML, not an API: its document lists no operations.
#[derive(OpenApi)]
#[openapi(info(
    title = "Partner API platform: developer portal",
    description = "Server-rendered pages at /portal; no JSON API."
))]
struct ApiDoc;

const MIGRATION_SETS: [&Migrations; 2] = [&events::MIGRATIONS, &MIGRATIONS];

pub async fn start(settings: Settings, deps: Deps) -> Result<Started, StartError> {
    let db = runtime::database(&settings.database, &MIGRATION_SETS).await?;
    let portal = Arc::new(state::Portal::new(db.clone(), &settings).map_err(std::io::Error::other)?);
    let consumer = deps
        .bus
        .subscribe(
            events::Subscription::new(NAME, &consumers::BINDINGS),
            Arc::new(consumers::UsageReports(portal.clone())),
            deps.shutdown.clone(),
        )
        .await?;
    let purge = portal.clone();
    let housekeeping = runtime::every(std::time::Duration::from_secs(300), deps.shutdown.clone(), move || {
        let portal = purge.clone();
        async move { portal.purge_expired().await }
    });
    let data = web::Data::from(portal);
    let service = Service {
        name: NAME,
        openapi: http_kit::openapi::complete(ApiDoc::openapi()),
        readiness: runtime::readiness(&db, &deps),
        routes: Arc::new(move |cfg| {
            cfg.app_data(data.clone());
            http::routes(cfg);
        }),
        metrics: vec![runtime::statement_metrics(&db)],
    };
    let http = server::start(service, &settings.http, deps.shutdown.clone())?;
    Ok(Started {
        name: NAME,
        http,
        tasks: vec![consumer, housekeeping],
    })
}

/// Opens and migrates the database, for `portal migrate` (a Helm hook in Kubernetes).
pub async fn migrate(settings: &Settings) -> Result<Database, StartError> {
    Ok(runtime::database(&settings.database, &MIGRATION_SETS).await?)
}
