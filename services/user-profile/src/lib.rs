//! Users' profiles: created when auth publishes `user.registered`, read through seed 003's
//! `GET /api/get_user_info` and `/users/…`, changed by their owner (each change published as
//! `user.updated` through the outbox), deleted with `user.deleted`. Seed 000's sports list and
//! ISO 3166-1 codes bound what a profile may say.

mod consumers;
pub mod domain;
mod http;
mod state;
pub mod store;
mod views;

use std::sync::Arc;

use actix_web::web;
use diesel_migrations::embed_migrations;
use events::catalogue::UserRegistered;
use events::{EventPayload, Subscription};
use http_kit::openapi::BearerScheme;
use http_kit::server::{self, HttpSettings, Service};
use identity::IdentitySettings;
use runtime::{BusSettings, DatabaseSettings, Deps, ServiceSettings, StartError, Started};
use serde::Deserialize;
use settings::{SettingsError, Validate};
use storage::{Database, Migrations};
use utoipa::OpenApi;

pub const NAME: &str = "user-profile";
pub const ENV_PREFIX: &str = "USER_PROFILE_";
pub const DEFAULTS: &str = include_str!("../config/default.toml");
/// CloudEvents `source` of this service's events.
pub const SOURCE: &str = "/user-profile";

pub static MIGRATIONS: Migrations = Migrations {
    postgres: embed_migrations!("migrations"),
    sqlite: embed_migrations!("migrations"),
};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: HttpSettings,
    pub bus: BusSettings,
    pub database: DatabaseSettings,
    pub identity: IdentitySettings,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.http.validate("http")?;
        self.bus.validate()?;
        self.database.validate()?;
        self.identity.validate()
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
    info(title = "Partner API platform: user profiles", description = "Profiles, seed 003's get_user_info, seed 000's sports list."),
    paths(http::profiles::user_info, http::profiles::me, http::profiles::update_me, http::profiles::delete_me, http::profiles::public_profile, http::sports::sports),
    tags((name = "profiles"), (name = "seed", description = "Seed 003's endpoint, exact shape")),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

/// The document, with the profile patch described as [`domain::ProfilePatch::parse`] reads it.
fn document() -> serde_json::Value {
    let mut doc = http_kit::openapi::complete(ApiDoc::openapi());
    // Seed 003's clients send the token in the query instead of a bearer header.
    doc["components"]["securitySchemes"]["accessTokenQuery"] = serde_json::json!({
        "type": "apiKey", "in": "query", "name": "access_token",
        "description": "The access token as `?access_token=` (seed 003's legacy path only)"
    });
    doc["components"]["schemas"]["ProfilePatch"] = domain::ProfilePatch::schema();
    doc["paths"]["/users/me"]["patch"]["requestBody"]["content"]["application/merge-patch+json"]["schema"] =
        serde_json::json!({"$ref": "#/components/schemas/ProfilePatch"});
    doc
}

const MIGRATION_SETS: [&Migrations; 2] = [&events::MIGRATIONS, &MIGRATIONS];

pub async fn start(settings: Settings, deps: Deps) -> Result<Started, StartError> {
    let db = runtime::database(&settings.database, &MIGRATION_SETS).await?;
    let (outbox, relay) = runtime::outbox_relay(&db, &deps);
    let state = Arc::new(state::Profiles {
        store: store::Store::new(db.clone()),
        outbox,
    });
    let consumer = deps
        .bus
        .subscribe(
            Subscription::new(NAME, &[UserRegistered::TYPE, events::catalogue::UserVerified::TYPE]),
            Arc::new(consumers::Registrations(state.clone())),
            deps.shutdown.clone(),
        )
        .await?;
    let data = web::Data::from(state);
    let identity = web::Data::new(settings.identity.clone());
    let service = Service {
        name: NAME,
        openapi: document(),
        readiness: runtime::readiness(&db, &deps),
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
        tasks: vec![relay, consumer],
    })
}

/// Opens and migrates the database, for `user-profile migrate` (a Helm hook in Kubernetes).
pub async fn migrate(settings: &Settings) -> Result<Database, StartError> {
    Ok(runtime::database(&settings.database, &MIGRATION_SETS).await?)
}
