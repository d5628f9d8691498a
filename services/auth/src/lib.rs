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
use utoipa::OpenApi;

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
        let o = &self.oauth;
        if settings::http_url("oauth.issuer", &o.issuer).map_or(true, |u| u.query().is_some()) {
            return Err(settings::rule("oauth.issuer", "must be an http(s) URL without query"));
        }
        if !(60..=86_400).contains(&o.access_token_ttl.secs()) {
            return Err(settings::rule("oauth.access_token_ttl", "must be between 60 and 86400"));
        }
        if o.refresh_token_ttl < o.access_token_ttl {
            return Err(settings::rule(
                "oauth.refresh_token_ttl",
                "must be at least the access token lifetime",
            ));
        }
        let platform = domain::Scopes::from_list(&o.scopes).map_err(|e| settings::rule("oauth.scopes", e.reason))?;
        let legacy =
            domain::Scopes::from_list(&o.legacy_scopes).map_err(|e| settings::rule("oauth.legacy_scopes", e.reason))?;
        if !legacy.is_subset(&platform) {
            return Err(settings::rule("oauth.legacy_scopes", "must be within oauth.scopes"));
        }
        let admin =
            domain::Scopes::from_list(&o.admin_scopes).map_err(|e| settings::rule("oauth.admin_scopes", e.reason))?;
        if !admin.is_subset(&platform) {
            return Err(settings::rule("oauth.admin_scopes", "must be within oauth.scopes"));
        }
        let b = &self.bootstrap;
        if b.gateway_client_id.is_some() && b.gateway_client_secret.expose_secret().len() < 16 {
            return Err(settings::rule(
                "bootstrap.gateway_client_secret",
                "must be at least 16 characters when bootstrap.gateway_client_id is set",
            ));
        }
        if b.portal_client_id.is_some() {
            if b.portal_client_secret.expose_secret().len() < 16 {
                return Err(settings::rule(
                    "bootstrap.portal_client_secret",
                    "must be at least 16 characters when bootstrap.portal_client_id is set",
                ));
            }
            for uri in &b.portal_redirect_uris {
                domain::RedirectUri::parse(uri)
                    .map_err(|e| settings::rule("bootstrap.portal_redirect_uris", e.reason))?;
            }
            let scopes = domain::Scopes::from_list(&b.portal_scopes)
                .map_err(|e| settings::rule("bootstrap.portal_scopes", e.reason))?;
            if !scopes.is_subset(&platform) {
                return Err(settings::rule("bootstrap.portal_scopes", "must be within oauth.scopes"));
            }
        }
        if b.admin_username.is_empty() != b.admin_password.expose_secret().is_empty() {
            return Err(settings::rule(
                "bootstrap.admin_password",
                "set both the admin username and password, or neither",
            ));
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

/// Creates what must exist: the bootstrap administrator (when configured) and the legacy
/// first-party client behind seed 002's `POST /oauth`.
async fn bootstrap(state: &AppState, settings: &Settings) -> Result<(), http_kit::ApiError> {
    let b = &settings.bootstrap;
    if !b.admin_username.is_empty() {
        let name = b.admin_username.clone();
        let existing = state.db.run(move |c| Ok(store::user_by_username(c, &name)?)).await?;
        if existing.is_none() {
            let username = domain::Username::parse(&b.admin_username)?;
            let email = domain::Email::parse(&b.admin_email)?;
            let roles = BTreeSet::from([domain::Role::Admin, domain::Role::RegistrationPlatform]);
            let user = http::users::create_user(
                state,
                username,
                email,
                &b.admin_password,
                roles,
                http::users::Verify::No,
            )
            .await?;
            tracing::info!(user.id = %user.id, "bootstrap administrator created");
        }
    }
    for client in platform_clients(b) {
        platform_client(state, client).await?;
    }
    let legacy = settings.oauth.legacy_client_id.clone();
    let exists = state
        .db
        .run(move |c| Ok(store::client_by_id(c, &legacy)?))
        .await?
        .is_some();
    if !exists {
        let now = storage::now_millis();
        let row = store::ClientRow {
            id: settings.oauth.legacy_client_id.clone(),
            secret_hash: None,
            name: "Legacy blog login (seed 002)".to_owned(),
            owner_id: store::platform_owner(),
            redirect_uris: String::new(),
            grant_types: "password refresh_token".to_owned(),
            scopes: settings.oauth.legacy_scopes.join(" "),
            created_at: now,
            secret_rotated_at: now,
            allowed_networks: String::new(),
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            first_party: true,
        };
        state.db.run(move |c| Ok(store::insert_client(c, &row)?)).await?;
    }
    Ok(())
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
    let id = row.id.clone();
    let existing = state.db.run(move |c| Ok(store::client_by_id(c, &id)?)).await?;
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
            state.db.run(move |c| Ok(store::set_platform_client(c, &row)?)).await?;
            state.clients.evict(&id);
        }
        None => state.db.run(move |c| Ok(store::insert_client(c, &row)?)).await?,
    }
    Ok(())
}

/// Purges what has expired and re-reads signing keys (another replica may have rotated them).
async fn housekeeping(state: Arc<AppState>, keep_ms: i64) {
    let now = storage::now_millis();
    let purged = state
        .db
        .run(move |c| {
            let tokens = store::purge_expired(c, now)?
                + store::purge_expired_logins(c, now - keep_ms)?
                + store::purge_verifications(c, now)?;
            let keys = store::delete_dead_keys(c, now, keep_ms)?;
            let seen = events::inbox::purge(c, now - 7 * 24 * 3600 * 1000)?;
            Ok(tokens + keys + seen)
        })
        .await;
    match purged {
        Ok(0) => {}
        Ok(rows) => tracing::info!(rows, "purged expired tokens, revocations and keys"),
        Err(error) => tracing::warn!(%error, "housekeeping failed"),
    }
    if let Err(error) = state.keys.reload(&state.db).await {
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
    let db = runtime::database(&settings.database, &[&events::MIGRATIONS, &MIGRATIONS]).await?;
    let keep_ms = settings.oauth.access_token_ttl.millis();
    let keys = Arc::new(
        keys::KeyRing::load(
            &db,
            &settings.oauth.issuer,
            &settings.oauth.audience,
            keep_ms,
            settings.oauth.signing_algorithm,
        )
        .await?,
    );
    let (outbox, relay) = runtime::outbox_relay(&db, &deps);
    let platform_scopes = domain::Scopes::from_list(&settings.oauth.scopes).unwrap_or_default();
    let admin_scopes = domain::Scopes::from_list(&settings.oauth.admin_scopes).unwrap_or_default();
    let redis = settings.cache.redis().map_err(|e| StartError::Cache(e.to_string()))?;
    let counters = cache::counters(redis);
    let state = Arc::new(AppState {
        db: db.clone(),
        keys,
        oauth: settings.oauth.clone(),
        platform_scopes,
        admin_scopes,
        outbox,
        limiter: limiter::FailureLimiter::new(counters.clone(), settings.limits.clone()),
        passwords: passwords::Passwords::new(settings.limits.hashing_queue),
        clients: client_cache::ClientCache::new(Duration::from_secs(5)),
    });
    bootstrap(&state, &settings).await.map_err(StartError::Bootstrap)?;
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
    let data = web::Data::from(state.clone());
    let identity = web::Data::new(settings.identity.clone());
    let service = Service {
        name: NAME,
        openapi: document(&settings.oauth.scopes),
        readiness: runtime::readiness(&db, &deps).check("cache", move || {
            let counters = counters.clone();
            async move { counters.ping().await.map_err(|e| e.to_string()) }
        }),
        routes: Arc::new(move |cfg| {
            cfg.app_data(data.clone()).app_data(identity.clone());
            http::routes(cfg);
        }),
        metrics: vec![runtime::statement_metrics(&db)],
    };
    let http = server::start(service, &settings.http, deps.shutdown.clone())?;
    let jobs = runtime::every(Duration::from_secs(60), deps.shutdown.clone(), move || {
        housekeeping(state.clone(), keep_ms)
    });
    Ok(Started {
        name: NAME,
        http,
        tasks: vec![relay, deletions, client_changes, jobs],
    })
}

/// `auth rotate-keys`: a new signing key signs from now on; the old one verifies until its
/// tokens expire. Running replicas pick it up within a minute.
pub async fn rotate_keys(settings: &Settings) -> Result<String, StartError> {
    let db = runtime::database(&settings.database, &[&events::MIGRATIONS, &MIGRATIONS]).await?;
    let keys = keys::KeyRing::load(
        &db,
        &settings.oauth.issuer,
        &settings.oauth.audience,
        settings.oauth.access_token_ttl.millis(),
        settings.oauth.signing_algorithm,
    )
    .await?;
    Ok(keys.rotate(&db).await?)
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
    Ok(outbox
        .write(|c, events| {
            let clients = store::all_clients(c)?;
            for client in &clients {
                let registered = http::applications::registered(client);
                events.publish(state::SOURCE, Some(client.id.to_string()), &registered)?;
            }
            let consents = store::all_consents(c)?;
            for (user, client, scope, granted_at) in &consents {
                let granted = events::catalogue::ConsentGranted {
                    user_id: user.clone(),
                    client_id: client.clone(),
                    scopes: scope.split_ascii_whitespace().map(str::to_owned).collect(),
                    granted_at: *granted_at,
                };
                events.publish(state::SOURCE, Some(user.to_string()), &granted)?;
            }
            Ok((clients.len(), consents.len()))
        })
        .await?)
}

/// Opens and migrates the database, for `auth migrate` (a Helm hook in Kubernetes).
pub async fn migrate(settings: &Settings) -> Result<Database, StartError> {
    Ok(runtime::database(&settings.database, &[&events::MIGRATIONS, &MIGRATIONS]).await?)
}
