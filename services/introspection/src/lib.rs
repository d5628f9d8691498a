//! RFC 7662 token introspection at `/oauth2/introspect` and seed 004's `/mcg/v1/tokeninfo`.
//!
//! Access tokens are verified here, without a call to auth: the signature against auth's JWKS
//! (fetched again when a new key appears), the time claims, and the revocations learnt from
//! `token.revoked` events. Opaque refresh tokens are looked up at auth. Who asks decides what
//! the answer shows (see [`domain::answer`]).

mod callers;
mod consumers;
mod domain;
mod http;
mod state;
mod store;

use std::sync::Arc;
use std::time::Duration;

use settings::Span;

use actix_web::web;
use cache::LocalCache;
use diesel_migrations::embed_migrations;
use events::catalogue::TokenRevoked;
use events::{EventPayload, Subscription};
use http_kit::server::{self, HttpSettings, Service};
use runtime::{BusSettings, DatabaseSettings, Deps, ServiceSettings, Started};
use serde::Deserialize;
use settings::{SettingsError, Validate};
use storage::{Database, Migrations};
use tokens::RemoteKeys;
use utoipa::OpenApi;

use callers::Callers;
pub use domain::answer::Introspection;
use state::Introspector;

pub const NAME: &str = "introspection";
pub const ENV_PREFIX: &str = "INTROSPECTION_";
pub const DEFAULTS: &str = include_str!("../config/default.toml");

pub static MIGRATIONS: Migrations = Migrations {
    postgres: embed_migrations!("migrations"),
    sqlite: embed_migrations!("migrations"),
};

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub url: String,
    pub issuer: String,
    pub jwks_refresh: Span,
    pub timeout: Span,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IntrospectionSettings {
    pub privileged_scope: String,
    pub max_cache: Span,
    pub caller_cache: Span,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: HttpSettings,
    pub bus: BusSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub introspection: IntrospectionSettings,
    /// The gateway's identity-header key: the client address the gateway signs is believed,
    /// and signed again for auth, only with it.
    pub identity: identity::IdentitySettings,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.http.validate("http")?;
        self.bus.validate()?;
        self.database.validate()?;
        self.identity.validate()?;
        settings::http_url("auth.url", &self.auth.url)?;
        settings::http_url("auth.issuer", &self.auth.issuer)?;
        if self.auth.timeout.0.is_zero() {
            return Err(settings::rule("auth.timeout", "must be more than 0"));
        }
        if self.introspection.privileged_scope.is_empty() {
            return Err(settings::rule("introspection.privileged_scope", "must not be empty"));
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
    info(title = "Partner API platform: introspection", description = "RFC 7662 token introspection, and seed 004's tokeninfo."),
    paths(http::introspect::introspect, http::introspect::tokeninfo),
    tags((name = "introspection", description = "RFC 7662"))
)]
struct ApiDoc;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error(transparent)]
    Bus(#[from] events::BusError),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Purges expired revocations, and fetches keys while none could be had.
async fn housekeeping(state: Arc<Introspector>) {
    if let Err(error) = state.revocations.purge().await {
        tracing::warn!(%error, "revocations not purged");
    }
    if !state.keys.loaded()
        && let Err(error) = state.keys.refresh().await
    {
        tracing::warn!(%error, "signing keys still unavailable");
    }
}

pub async fn start(settings: Settings, deps: Deps) -> Result<Started, StartError> {
    let db = runtime::database(&settings.database, &[&MIGRATIONS]).await?;
    let state = introspector(&settings, db.clone()).await?;
    let consumer = deps
        .bus
        .subscribe(
            Subscription::per_replica(NAME, &[TokenRevoked::TYPE]),
            Arc::new(consumers::RevokedHandler(state.clone())),
            deps.shutdown.clone(),
        )
        .await?;
    let readiness = readiness(&db, &deps, state.clone());
    let data = web::Data::from(state.clone());
    let identity = web::Data::new(settings.identity.clone());
    let service = Service {
        name: NAME,
        openapi: http_kit::openapi::complete(ApiDoc::openapi()),
        readiness,
        routes: Arc::new(move |cfg| {
            cfg.app_data(data.clone()).app_data(identity.clone());
            http::routes(cfg);
        }),
        metrics: vec![runtime::statement_metrics(&db)],
    };
    let http = server::start(service, &settings.http, deps.shutdown.clone())?;
    Ok(Started {
        name: NAME,
        http,
        tasks: vec![
            consumer,
            runtime::every(Duration::from_secs(30), deps.shutdown, move || {
                housekeeping(state.clone())
            }),
        ],
    })
}

/// The introspector with auth's signing keys when they can be had: without them it still
/// starts, asks auth in the background and is not ready meanwhile.
async fn introspector(settings: &Settings, db: Database) -> Result<Arc<state::Introspector>, StartError> {
    let client = reqwest::Client::builder().timeout(settings.auth.timeout.0).build()?;
    let keys = RemoteKeys::new(
        &settings.auth.url,
        &settings.auth.issuer,
        client.clone(),
        settings.auth.jwks_refresh.0,
    );
    if let Err(error) = keys.refresh().await {
        tracing::warn!(%error, "signing keys unavailable at start; retrying in the background");
    }
    Ok(Arc::new(state::Introspector {
        keys,
        revocations: store::Revocations::load(db).await?,
        callers: Callers::new(
            &settings.auth.url,
            client.clone(),
            settings.introspection.caller_cache.0,
            settings.identity.secret.clone(),
        ),
        verified: LocalCache::new(100_000),
        lookup_url: format!("{}/internal/v1/token-lookup", settings.auth.url.trim_end_matches('/')),
        client,
        settings: settings.introspection.clone(),
    }))
}

fn readiness(db: &Database, deps: &Deps, state: Arc<state::Introspector>) -> http_kit::Readiness {
    runtime::readiness(db, deps).check("signing_keys", move || {
        let loaded = state.keys.loaded();
        async move {
            if loaded {
                Ok(())
            } else {
                Err("no signing keys from auth".to_owned())
            }
        }
    })
}

/// Opens and migrates the database, for `introspection migrate` (a Helm hook in Kubernetes).
pub async fn migrate(settings: &Settings) -> Result<Database, StartError> {
    Ok(runtime::database(&settings.database, &[&MIGRATIONS]).await?)
}
