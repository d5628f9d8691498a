//! RFC 7662 token introspection at `/oauth2/introspect` and seed 004's `/mcg/v1/tokeninfo`.
//!
//! Access tokens are verified here, without a call to auth: the signature against auth's JWKS
//! (fetched again when a new key appears), the time claims, and the revocations learnt from
//! `token.revoked` events. Opaque refresh tokens are looked up at auth. Who asks decides what
//! the answer shows (see [`answer`]).

mod answer;
mod callers;
mod revocations;

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use async_trait::async_trait;
use cache::LocalCache;
use diesel_migrations::embed_migrations;
use events::catalogue::TokenRevoked;
use events::{Delivery, EventPayload, Handler, HandlerError, Subscription};
use http_kit::server::{self, HttpSettings, Service};
use http_kit::{Endpoint, OAuthError};
use runtime::{BusSettings, DatabaseSettings, Deps, ServiceSettings, Started};
use serde::Deserialize;
use settings::{SettingsError, Validate};
use sha2::{Digest, Sha256};
use storage::{Database, Migrations};
use tokens::{AccessClaims, RemoteKeys, RevocationList, VerifyError, now_secs};
use utoipa::OpenApi;

pub use answer::Introspection;
use callers::Callers;
use revocations::Revocations;

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
    pub jwks_refresh_secs: u64,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IntrospectionSettings {
    pub privileged_scope: String,
    pub max_cache_secs: i64,
    pub caller_cache_secs: u64,
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
        if self.auth.timeout_secs == 0 {
            return Err(settings::rule("auth.timeout_secs", "must be more than 0"));
        }
        if self.introspection.privileged_scope.is_empty() {
            return Err(settings::rule("introspection.privileged_scope", "must not be empty"));
        }
        if self.introspection.max_cache_secs < 0 {
            return Err(settings::rule("introspection.max_cache_secs", "must not be negative"));
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

/// What every request shares.
pub struct Introspector {
    keys: RemoteKeys,
    revocations: Revocations,
    callers: Callers,
    /// Tokens whose signature was checked, by hash: a token is verified once, not per call.
    verified: LocalCache<[u8; 32], Arc<AccessClaims>>,
    client: reqwest::Client,
    lookup_url: String,
    settings: IntrospectionSettings,
}

impl Introspector {
    /// The full answer for `token`, before deciding what the caller may see.
    async fn inspect(&self, token: &str) -> Result<Introspection, OAuthError> {
        if token.starts_with("rt_") {
            return self.lookup_opaque(token).await;
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let claims = match self.verified.get(&digest) {
            Some(claims) => claims,
            None => match self.keys.verify(token, None).await {
                Ok(claims) => {
                    let claims = Arc::new(claims);
                    let ttl = u64::try_from(claims.exp - now_secs()).unwrap_or(0);
                    self.verified
                        .insert(digest, claims.clone(), Duration::from_secs(ttl.min(3600)));
                    claims
                }
                Err(VerifyError::KeysUnavailable) => {
                    return Err(OAuthError::temporarily_unavailable(
                        "auth's signing keys cannot be fetched",
                    ));
                }
                Err(_) => return Ok(Introspection::inactive()),
            },
        };
        let now = now_secs();
        if claims.exp <= now || claims.nbf > now || self.revocations.is_revoked(&claims) {
            return Ok(Introspection::inactive());
        }
        Ok(Introspection::of(&claims))
    }

    async fn lookup_opaque(&self, token: &str) -> Result<Introspection, OAuthError> {
        self.client
            .post(&self.lookup_url)
            .form(&[("token", token)])
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(OAuthError::temporarily_unavailable)?
            .json()
            .await
            .map_err(OAuthError::server_error)
    }

    fn respond(&self, answer: &Introspection) -> HttpResponse {
        let max_age = answer
            .exp
            .filter(|_| answer.active)
            .map(|exp| (exp - now_secs()).clamp(0, self.settings.max_cache_secs));
        let cache_control = match max_age {
            Some(secs) => format!("private, max-age={secs}"),
            None => "no-store".to_owned(),
        };
        HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, cache_control))
            .json(answer)
    }
}

#[derive(Deserialize)]
pub struct IntrospectForm {
    token: Option<String>,
    /// Only a hint: every token is recognised by its form whatever the hint says.
    #[serde(rename = "token_type_hint")]
    _hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

async fn answer(state: &Introspector, req: &HttpRequest, form: IntrospectForm) -> Result<HttpResponse, OAuthError> {
    let caller = state
        .callers
        .authenticate(
            req,
            form.client_id.as_deref(),
            form.client_secret.as_deref(),
            &state.keys,
            &state.revocations,
            &state.settings.privileged_scope,
        )
        .await?;
    let token = form
        .token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let full = state.inspect(&token).await?;
    Ok(state.respond(&answer::for_caller(full, &caller, &state.settings.privileged_scope)))
}

/// RFC 7662 token introspection. The caller authenticates with client credentials (Basic or
/// form) or a bearer token; the full answer goes to the token's client, a caller in its
/// audience, or a caller holding the privileged scope; anyone else gets `{"active": false}`.
#[utoipa::path(post, path = "/oauth2/introspect", tag = "introspection",
    request_body(content_type = "application/x-www-form-urlencoded", content = String, description = "token, token_type_hint (optional)"),
    responses((status = 200, body = Introspection, description = "The token's state, as the caller may see it"),
              (status = 400, description = "invalid_request: no token"),
              (status = 401, description = "invalid_client: the caller did not authenticate"),
              (status = 503, description = "temporarily_unavailable")))]
pub async fn introspect(
    state: web::Data<Introspector>,
    req: HttpRequest,
    form: web::Form<IntrospectForm>,
) -> Result<HttpResponse, OAuthError> {
    answer(&state, &req, form.into_inner()).await
}

/// Seed 004's token information call: the same answer as `/oauth2/introspect`.
#[utoipa::path(post, path = "/mcg/v1/tokeninfo", tag = "introspection",
    request_body(content_type = "application/x-www-form-urlencoded", content = String, description = "token, token_type_hint (optional)"),
    responses((status = 200, body = Introspection), (status = 400), (status = 401), (status = 503)))]
pub async fn tokeninfo(
    state: web::Data<Introspector>,
    req: HttpRequest,
    form: web::Form<IntrospectForm>,
) -> Result<HttpResponse, OAuthError> {
    answer(&state, &req, form.into_inner()).await
}

/// This replica's `token.revoked` consumer.
struct RevokedHandler(Arc<Introspector>);

#[async_trait]
impl Handler for RevokedHandler {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let Some(payload) = delivery.event.payload::<TokenRevoked>() else {
            return Ok(());
        };
        let revoked = payload.map_err(HandlerError::new)?;
        if revoked.jti == RevocationList::EVERY_TOKEN {
            self.0.callers.forget_client(&revoked.client_id);
        }
        self.0
            .revocations
            .record(revoked, delivery.event.time.timestamp())
            .await
            .map_err(HandlerError::new)
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Partner API platform: introspection", description = "RFC 7662 token introspection, and seed 004's tokeninfo."),
    paths(introspect, tokeninfo),
    tags((name = "introspection", description = "RFC 7662"))
)]
struct ApiDoc;

fn oauth_form() -> web::FormConfig {
    web::FormConfig::default()
        .limit(16 * 1024)
        .error_handler(|e, _| OAuthError::invalid_request(e.to_string()).into())
}

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
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(settings.auth.timeout_secs))
        .build()?;
    let keys = RemoteKeys::new(
        &settings.auth.url,
        &settings.auth.issuer,
        client.clone(),
        Duration::from_secs(settings.auth.jwks_refresh_secs),
    );
    if let Err(error) = keys.refresh().await {
        tracing::warn!(%error, "signing keys unavailable at start; retrying in the background");
    }
    let state = Arc::new(Introspector {
        keys,
        revocations: Revocations::load(db.clone()).await?,
        callers: Callers::new(
            &settings.auth.url,
            client.clone(),
            Duration::from_secs(settings.introspection.caller_cache_secs),
            settings.identity.secret.clone(),
        ),
        verified: LocalCache::new(100_000),
        lookup_url: format!("{}/internal/v1/token-lookup", settings.auth.url.trim_end_matches('/')),
        client,
        settings: settings.introspection.clone(),
    });
    let consumer = deps
        .bus
        .subscribe(
            Subscription::per_replica(NAME, &[TokenRevoked::TYPE]),
            Arc::new(RevokedHandler(state.clone())),
            deps.shutdown.clone(),
        )
        .await?;
    let probe = state.clone();
    let readiness = runtime::readiness(&db, &deps).check("signing_keys", move || {
        let loaded = probe.keys.loaded();
        async move {
            if loaded {
                Ok(())
            } else {
                Err("no signing keys from auth".to_owned())
            }
        }
    });
    let data = web::Data::from(state.clone());
    let identity = web::Data::new(settings.identity.clone());
    let service = Service {
        name: NAME,
        openapi: ApiDoc::openapi(),
        readiness,
        routes: Arc::new(move |cfg| {
            cfg.app_data(data.clone())
                .app_data(identity.clone())
                .app_data(oauth_form())
                .service(Endpoint::new("/oauth2/introspect").post(introspect).build())
                .service(Endpoint::new("/mcg/v1/tokeninfo").post(tokeninfo).build());
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

/// Opens and migrates the database, for `introspection migrate` (a Helm hook in Kubernetes).
pub async fn migrate(settings: &Settings) -> Result<Database, StartError> {
    Ok(runtime::database(&settings.database, &[&MIGRATIONS]).await?)
}
