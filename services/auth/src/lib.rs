//! The OAuth2 authorization server: users, applications (clients), grants, access tokens
//! (RFC 9068 JWTs signed with keys kept in the database and published as a JWKS), refresh
//! tokens, revocation, metadata, and seed 002's login and revoke endpoints.

mod bearer;
mod client_auth;
mod client_cache;
mod consumers;
pub mod crypto;
pub mod domain;
mod http;
pub mod keys;
mod limiter;
mod passwords;
mod state;
pub mod store;
mod views;

use settings::Span;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use diesel_migrations::embed_migrations;
use http_kit::openapi::BearerScheme;
use http_kit::server::{self, HttpSettings, Service};
use runtime::{BusSettings, DatabaseSettings, Deps, ServiceSettings, Started};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use settings::{SettingsError, Validate};
use storage::{Database, Migrations};
use tokio::task::JoinHandle;
use utoipa::OpenApi;

use crate::domain::users::Verify;

pub use limiter::LimitSettings;
pub use state::AppState;

pub const NAME: &str = "auth";
pub const ENV_PREFIX: &str = "AUTH_";
pub const DEFAULTS: &str = include_str!("../config/default.toml");

// The SQL is portable so far, so both dialects read one directory; a migration that needs
// dialect-specific SQL splits them.
pub static MIGRATIONS: Migrations = Migrations {
    postgres: embed_migrations!("migrations"),
    sqlite: embed_migrations!("migrations"),
};

#[derive(Debug, Clone, Deserialize)]
pub struct OAuthSettings {
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl: Span,
    pub refresh_token_ttl: Span,
    pub signing_algorithm: keys::SigningAlgorithm,
    pub scopes: Vec<String>,
    pub legacy_client_id: ids::ClientId,
    pub legacy_scopes: Vec<String>,
    /// Scopes only users with the admin role get in their tokens.
    pub admin_scopes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BootstrapSettings {
    pub admin_username: String,
    pub admin_password: SecretString,
    pub admin_email: String,
    /// The gateway's client (scope `introspect`), kept in line with these settings at start.
    #[serde(deserialize_with = "ids::empty_is_none")]
    pub gateway_client_id: Option<ids::ClientId>,
    pub gateway_client_secret: SecretString,
    /// The developer portal's client: first-party (consent implied), authorization code with
    /// PKCE and refresh tokens, kept in line with these settings at start.
    #[serde(deserialize_with = "ids::empty_is_none")]
    pub portal_client_id: Option<ids::ClientId>,
    pub portal_client_secret: SecretString,
    pub portal_redirect_uris: Vec<String>,
    pub portal_scopes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: HttpSettings,
    pub bus: BusSettings,
    pub database: DatabaseSettings,
    pub cache: cache::CacheSettings,
    pub limits: LimitSettings,
    pub oauth: OAuthSettings,
    pub bootstrap: BootstrapSettings,
    /// The gateway's identity-header key: auth believes the client address the gateway signs
    /// (and introspection signs again) only with it.
    pub identity: identity::IdentitySettings,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.http.validate("http")?;
        self.bus.validate()?;
        self.database.validate()?;
        self.cache.validate()?;
        self.limits.validate()?;
        self.identity.validate()?;
        let platform = self.oauth.validate()?;
        self.bootstrap.validate(&platform)
    }
}

impl OAuthSettings {
    /// The issuer, the token lifetimes and the scope lists; returns the platform's scopes.
    fn validate(&self) -> Result<domain::Scopes, SettingsError> {
        if settings::http_url("oauth.issuer", &self.issuer).map_or(true, |u| u.query().is_some()) {
            return Err(settings::rule("oauth.issuer", "must be an http(s) URL without query"));
        }
        if !(60..=86_400).contains(&self.access_token_ttl.secs()) {
            return Err(settings::rule("oauth.access_token_ttl", "must be between 60 and 86400"));
        }
        if self.refresh_token_ttl < self.access_token_ttl {
            return Err(settings::rule(
                "oauth.refresh_token_ttl",
                "must be at least the access token lifetime",
            ));
        }
        let platform = domain::Scopes::from_list(&self.scopes).map_err(|e| settings::rule("oauth.scopes", e.reason))?;
        scopes_within("oauth.legacy_scopes", &self.legacy_scopes, &platform)?;
        scopes_within("oauth.admin_scopes", &self.admin_scopes, &platform)?;
        Ok(platform)
    }
}

/// The scopes `key` lists, every one of them among the platform's.
fn scopes_within(key: &str, list: &[String], platform: &domain::Scopes) -> Result<(), SettingsError> {
    let scopes = domain::Scopes::from_list(list).map_err(|e| settings::rule(key, e.reason))?;
    if !scopes.is_subset(platform) {
        return Err(settings::rule(key, "must be within oauth.scopes"));
    }
    Ok(())
}

impl BootstrapSettings {
    /// The platform clients' settings (when their ids are set) and the administrator's.
    fn validate(&self, platform: &domain::Scopes) -> Result<(), SettingsError> {
        if self.gateway_client_id.is_some() && self.gateway_client_secret.expose_secret().len() < 16 {
            return Err(settings::rule(
                "bootstrap.gateway_client_secret",
                "must be at least 16 characters when bootstrap.gateway_client_id is set",
            ));
        }
        if self.portal_client_id.is_some() {
            self.validate_portal(platform)?;
        }
        if self.admin_username.is_empty() != self.admin_password.expose_secret().is_empty() {
            return Err(settings::rule(
                "bootstrap.admin_password",
                "set both the admin username and password, or neither",
            ));
        }
        Ok(())
    }

    fn validate_portal(&self, platform: &domain::Scopes) -> Result<(), SettingsError> {
        if self.portal_client_secret.expose_secret().len() < 16 {
            return Err(settings::rule(
                "bootstrap.portal_client_secret",
                "must be at least 16 characters when bootstrap.portal_client_id is set",
            ));
        }
        for uri in &self.portal_redirect_uris {
            domain::RedirectUri::parse(uri).map_err(|e| settings::rule("bootstrap.portal_redirect_uris", e.reason))?;
        }
        scopes_within("bootstrap.portal_scopes", &self.portal_scopes, platform)
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

/// Settings from the defaults file and the environment, including the documented
/// `BOOTSTRAP_ADMIN_USERNAME` / `BOOTSTRAP_ADMIN_PASSWORD` variables.
pub fn load_settings() -> Result<Settings, SettingsError> {
    let mut figment = settings::figment(DEFAULTS, ENV_PREFIX)?;
    for (var, key) in [
        ("BOOTSTRAP_ADMIN_USERNAME", "bootstrap.admin_username"),
        ("BOOTSTRAP_ADMIN_PASSWORD", "bootstrap.admin_password"),
    ] {
        if let Ok(value) = std::env::var(var) {
            figment = figment.merge((key, value));
        }
    }
    settings::extract(figment, ENV_PREFIX)
}

/// The document; an application's scopes are the platform's (`[oauth] scopes`).
fn document(scopes: &[String]) -> serde_json::Value {
    let mut doc = http_kit::openapi::complete(ApiDoc::openapi());
    doc["components"]["schemas"]["Scope"]["enum"] = serde_json::json!(scopes);
    let networks = serde_json::json!({"items": {"type": "string", "pattern": domain::AllowedNetworks::ENTRY_PATTERN}});
    for schema in ["NewApplication", "ApplicationChange"] {
        http_kit::openapi::describe(&mut doc, schema, "allowed_networks", networks.clone());
    }
    doc
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Partner API platform: auth", description = "OAuth2 authorization server: users, applications, tokens, revocation, metadata, and seed 002's endpoints."),
    paths(
        http::token::token, http::token::revoke, http::metadata::metadata, http::metadata::jwks,
        http::users::register, http::users::me, http::users::set_roles, http::consents::list, http::consents::withdraw,
        http::role_requests::ask, http::role_requests::mine, http::role_requests::pending, http::role_requests::decide,
        http::applications::create, http::applications::list, http::applications::show,
        http::applications::rotate_secret, http::applications::change, http::applications::delete, http::applications::register,
        http::seed::login, http::seed::revoke, http::token::seed_authorize,
    ),
    tags((name = "oauth2", description = "RFC 6749, 7009, 7591, 8414"), (name = "users"), (name = "applications"), (name = "seed", description = "Seed 002's endpoints, exact shapes")),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

fn oauth_form() -> web::FormConfig {
    web::FormConfig::default()
        .limit(16 * 1024)
        .error_handler(|e, _| http_kit::OAuthError::invalid_request(e.to_string()).into())
}

/// Creates what must exist: the bootstrap administrator (when configured), the platform's own
/// clients, and the legacy first-party client behind seed 002's `POST /oauth`.
async fn bootstrap(state: &AppState, settings: &Settings) -> Result<(), http_kit::ApiError> {
    let b = &settings.bootstrap;
    if !b.admin_username.is_empty() {
        bootstrap_admin(state, b).await?;
    }
    for client in platform_clients(b) {
        platform_client(state, client).await?;
    }
    legacy_client(state, &settings.oauth).await
}

async fn bootstrap_admin(state: &AppState, b: &BootstrapSettings) -> Result<(), http_kit::ApiError> {
    if state.store.user_by_username(b.admin_username.clone()).await?.is_some() {
        return Ok(());
    }
    let username = domain::Username::parse(&b.admin_username)?;
    let email = domain::Email::parse(&b.admin_email)?;
    let roles = BTreeSet::from([domain::Role::Admin, domain::Role::RegistrationPlatform]);
    let user = http::users::create_user(state, username, email, &b.admin_password, roles, Verify::No).await?;
    tracing::info!(user.id = %user.id, "bootstrap administrator created");
    Ok(())
}

async fn legacy_client(state: &AppState, oauth: &OAuthSettings) -> Result<(), http_kit::ApiError> {
    if state.store.client(oauth.legacy_client_id.to_string()).await?.is_some() {
        return Ok(());
    }
    let now = storage::now_millis();
    let row = store::ClientRow {
        id: oauth.legacy_client_id.clone(),
        secret_hash: None,
        name: "Legacy blog login (seed 002)".to_owned(),
        owner_id: store::platform_owner(),
        redirect_uris: String::new(),
        grant_types: "password refresh_token".to_owned(),
        scopes: oauth.legacy_scopes.join(" "),
        created_at: now,
        secret_rotated_at: now,
        allowed_networks: String::new(),
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        first_party: true,
    };
    Ok(state.store.insert_client(row).await?)
}

/// The platform's own clients, as configured: the gateway's (introspects every token) and the
/// developer portal's (signs people in).
fn platform_clients(b: &BootstrapSettings) -> Vec<store::ClientRow> {
    let now = storage::now_millis();
    let row = |id: &ids::ClientId, secret: &SecretString, name: &str| store::ClientRow {
        id: id.clone(),
        secret_hash: Some(crypto::sha256_hex(secret.expose_secret())),
        name: name.to_owned(),
        owner_id: store::platform_owner(),
        redirect_uris: String::new(),
        grant_types: "client_credentials".to_owned(),
        scopes: "introspect".to_owned(),
        created_at: now,
        secret_rotated_at: now,
        allowed_networks: String::new(),
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        first_party: false,
    };
    let mut clients = Vec::new();
    if let Some(id) = &b.gateway_client_id {
        clients.push(row(id, &b.gateway_client_secret, "Platform gateway"));
    }
    if let Some(id) = &b.portal_client_id {
        clients.push(store::ClientRow {
            redirect_uris: b.portal_redirect_uris.join("\n"),
            grant_types: "authorization_code refresh_token".to_owned(),
            scopes: b.portal_scopes.join(" "),
            first_party: true,
            ..row(id, &b.portal_client_secret, "Developer portal")
        });
    }
    clients
}

/// Creates a platform client, or brings it in line with its settings when they changed (so
/// rotating its secret is a configuration change and a restart).
async fn platform_client(state: &AppState, row: store::ClientRow) -> Result<(), http_kit::ApiError> {
    // Read, then write in a statement of its own: on SQLite a transaction that starts reading
    // cannot wait for another writer to finish (it fails with "database is locked").
    let existing = state.store.client(row.id.to_string()).await?;
    let unchanged = |e: &store::ClientRow| {
        (
            &e.secret_hash,
            &e.redirect_uris,
            &e.scopes,
            &e.grant_types,
            e.first_party,
        ) == (
            &row.secret_hash,
            &row.redirect_uris,
            &row.scopes,
            &row.grant_types,
            row.first_party,
        )
    };
    match existing {
        Some(existing) if unchanged(&existing) => {}
        Some(_) => {
            let id = row.id.clone();
            state.store.set_platform_client(row).await?;
            state.clients.evict(&id);
        }
        None => state.store.insert_client(row).await?,
    }
    Ok(())
}

/// Purges what has expired and re-reads signing keys (another replica may have rotated them).
async fn housekeeping(state: Arc<AppState>, keep_ms: i64) {
    match state.store.purge_expired(storage::now_millis(), keep_ms).await {
        Ok(0) => {}
        Ok(rows) => tracing::info!(rows, "purged expired tokens, revocations and keys"),
        Err(error) => tracing::warn!(%error, "housekeeping failed"),
    }
    if let Err(error) = state.keys.reload(&state.store).await {
        tracing::warn!(%error, "signing keys not reloaded");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error("cache: {0}")]
    Cache(String),
    #[error(transparent)]
    Bus(#[from] events::BusError),
    #[error("bootstrap failed: {0}")]
    Bootstrap(http_kit::ApiError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Opens the database (migrating it), loads keys, bootstraps, and serves.
pub async fn start(settings: Settings, deps: Deps) -> Result<Started, StartError> {
    let db = migrate(&settings).await?;
    let keys = Arc::new(load_keys(&db, &settings.oauth).await?);
    let (outbox, relay) = runtime::outbox_relay(&db, &deps);
    let redis = settings.cache.redis().map_err(|e| StartError::Cache(e.to_string()))?;
    let counters = cache::counters(redis);
    let state = Arc::new(app_state(&settings, &db, keys, outbox, counters.clone()));
    bootstrap(&state, &settings).await.map_err(StartError::Bootstrap)?;
    let [deletions, client_changes] = consume(&state, &deps).await?;
    let http = server::start(
        service(&settings, &db, &deps, &state, counters),
        &settings.http,
        deps.shutdown.clone(),
    )?;
    let keep_ms = settings.oauth.access_token_ttl.millis();
    let jobs = runtime::every(Duration::from_secs(60), deps.shutdown.clone(), move || {
        housekeeping(state.clone(), keep_ms)
    });
    Ok(Started {
        name: NAME,
        http,
        tasks: vec![relay, deletions, client_changes, jobs],
    })
}

/// The signing keys; a retired one verifies as long as an access token lives.
async fn load_keys(db: &Database, oauth: &OAuthSettings) -> Result<keys::KeyRing, keys::KeyError> {
    keys::KeyRing::load(
        db,
        &oauth.issuer,
        &oauth.audience,
        oauth.access_token_ttl.millis(),
        oauth.signing_algorithm,
    )
    .await
}

fn app_state(
    settings: &Settings,
    db: &Database,
    keys: Arc<keys::KeyRing>,
    outbox: events::Outbox,
    counters: Arc<dyn cache::Counters>,
) -> AppState {
    AppState {
        store: store::Store::new(db.clone()),
        keys,
        oauth: settings.oauth.clone(),
        platform_scopes: domain::Scopes::from_list(&settings.oauth.scopes).unwrap_or_default(),
        admin_scopes: domain::Scopes::from_list(&settings.oauth.admin_scopes).unwrap_or_default(),
        outbox,
        limiter: limiter::FailureLimiter::new(counters, settings.limits.clone()),
        passwords: passwords::Passwords::new(settings.limits.hashing_queue),
        clients: client_cache::ClientCache::new(Duration::from_secs(5)),
    }
}

/// Subscribes the consumers: `user.deleted` on the service's queue, and `token.revoked` on
/// this replica's own.
async fn consume(state: &Arc<AppState>, deps: &Deps) -> Result<[JoinHandle<()>; 2], events::BusError> {
    let deletions = deps
        .bus
        .subscribe(
            events::Subscription::new(NAME, &consumers::BINDINGS),
            Arc::new(consumers::Deletions(state.clone())),
            deps.shutdown.clone(),
        )
        .await?;
    let client_changes = deps
        .bus
        .subscribe(
            events::Subscription::per_replica(NAME, &consumers::PER_REPLICA),
            Arc::new(consumers::ClientChanges(state.clone())),
            deps.shutdown.clone(),
        )
        .await?;
    Ok([deletions, client_changes])
}

/// What the HTTP server serves: the routes with their shared data, the document, readiness
/// (the database, the bus and the cache) and statement metrics.
fn service(
    settings: &Settings,
    db: &Database,
    deps: &Deps,
    state: &Arc<AppState>,
    counters: Arc<dyn cache::Counters>,
) -> Service {
    let data = web::Data::from(state.clone());
    let identity = web::Data::new(settings.identity.clone());
    Service {
        name: NAME,
        openapi: document(&settings.oauth.scopes),
        readiness: runtime::readiness(db, deps).check("cache", move || {
            let counters = counters.clone();
            async move { counters.ping().await.map_err(|e| e.to_string()) }
        }),
        routes: Arc::new(move |cfg| {
            cfg.app_data(data.clone()).app_data(identity.clone());
            http::routes(cfg);
        }),
        metrics: vec![runtime::statement_metrics(db)],
    }
}

/// `auth rotate-keys`: a new signing key signs from now on; the old one verifies until its
/// tokens expire. Running replicas pick it up within a minute.
pub async fn rotate_keys(settings: &Settings) -> Result<String, StartError> {
    let db = migrate(settings).await?;
    Ok(load_keys(&db, &settings.oauth).await?.rotate(&db).await?)
}

/// For `auth announce-applications`: an `application.registered` for every application, then a
/// `consent.granted` for every consent users gave them (as of when they gave it), through the
/// outbox (the running service's relay publishes them), so that a service deployed later
/// (webhook, notification-dispatch) learns of the applications and consents made before it ran.
/// Consumers take each again as an update, and keep a later change over an older grant:
/// running it twice changes nothing. Returns the applications and consents announced.
pub async fn announce_applications(settings: &Settings) -> Result<(usize, usize), StartError> {
    let db = migrate(settings).await?;
    let outbox = events::Outbox::new(db, std::sync::Arc::new(tokio::sync::Notify::new()));
    Ok(domain::applications::announce_all(&outbox).await?)
}

/// Opens and migrates the database, for `auth migrate` (a Helm hook in Kubernetes).
pub async fn migrate(settings: &Settings) -> Result<Database, StartError> {
    Ok(runtime::database(&settings.database, &[&events::MIGRATIONS, &MIGRATIONS]).await?)
}
