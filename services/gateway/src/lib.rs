//! The gateway: the one public address partners call. It routes by path prefix to the
//! services, checks bearer tokens against cached introspection (see [`tokens`]), drops revoked
//! tokens at once (see [`revocation`]), enforces scopes and per-client rates, tells upstreams
//! who is calling with signed headers (the `identity` crate), and serves the merged API
//! reference.

mod client_address;
mod consumers;
mod cors;
mod http;
mod metrics;
mod rate_limits;
mod route_table;
mod state;
mod token_validator;
mod upstream;
mod usage;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use events::{EventPayload, Subscription};
use http_kit::server::{self, HttpSettings, Service};
use runtime::{BusSettings, Deps, ServiceSettings, Started};
use secrecy::ExposeSecret;
use serde::Deserialize;
use settings::{SettingsError, Validate};
use utoipa::OpenApi;

pub use client_address::ClientAddressSettings;
pub use cors::CorsSettings;
pub use http::docs::{DocSource, DocsSettings};
pub use rate_limits::RatePolicy;
pub use route_table::Route;
pub use token_validator::{IntrospectionSettings, TokenSettings};

pub const NAME: &str = "gateway";
/// CloudEvents `source` of the gateway's events (usage reports).
pub const SOURCE: &str = "/gateway";
pub const ENV_PREFIX: &str = "GATEWAY_";
pub const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: HttpSettings,
    pub bus: BusSettings,
    pub cache: cache::CacheSettings,
    pub introspection: IntrospectionSettings,
    pub tokens: TokenSettings,
    /// Signs the identity headers; upstream services hold the same secret.
    pub identity: identity::IdentitySettings,
    pub cors: CorsSettings,
    /// Proxies in front of the gateway whose `X-Forwarded-For` it believes.
    #[serde(default)]
    pub client_address: ClientAddressSettings,
    pub docs: DocsSettings,
    #[serde(default)]
    pub rate_limits: HashMap<String, RatePolicy>,
    /// Who a rate limit counts apart.
    pub rate_limit_keys: RateLimitKeys,
    /// Named upstream addresses: routes and documentation sources name them, so a deployment
    /// sets `GATEWAY_UPSTREAMS__AUTH=http://auth:8081` instead of rewriting the route table.
    /// A list names the instances of a replicated service, taken in turn.
    #[serde(default)]
    pub upstreams: HashMap<String, Addresses>,
    pub upstream_checks: UpstreamChecks,
    pub proxy: ProxySettings,
    pub usage: UsageSettings,
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// `[rate_limit_keys]`: limits count per client, except for these clients, whose users all
/// call through them (the developer portal): each of their users counts apart.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RateLimitKeys {
    #[serde(default)]
    pub per_user_clients: Vec<String>,
}

/// `[usage]`: how often each replica reports what it served each application.
#[derive(Debug, Clone, Deserialize)]
pub struct UsageSettings {
    pub report_interval: settings::Span,
}

/// `[proxy]`: how long the gateway waits on a client.
#[derive(Debug, Clone, Deserialize)]
pub struct ProxySettings {
    /// Longest wait for the next piece of a request body (ms); past it the gateway answers 408
    /// and drops the request it was streaming upstream.
    pub body_idle_timeout: settings::Span,
}

/// One address, or the instances of a replicated upstream.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Addresses {
    One(String),
    Many(Vec<String>),
}

/// `[upstream_checks]`: how often the gateway asks each instance of a replicated upstream for
/// its `/readyz`. One that is not ready (draining before it stops, say) gets no new requests
/// until it is again.
#[derive(Debug, Clone, Deserialize)]
pub struct UpstreamChecks {
    pub interval: settings::Span,
    pub timeout: settings::Span,
}

impl Settings {
    /// The addresses `upstream` names: a URL as it is, or an `[upstreams]` entry.
    fn upstream(&self, key: &str, upstream: &str) -> Result<Vec<String>, SettingsError> {
        let urls = if upstream.contains("://") {
            vec![upstream.to_owned()]
        } else {
            match self.upstreams.get(upstream) {
                Some(Addresses::One(url)) => vec![url.clone()],
                Some(Addresses::Many(urls)) => urls.clone(),
                None => return Err(settings::rule(key, format!("no [upstreams] entry named `{upstream}`"))),
            }
        };
        if urls.is_empty() || !urls.iter().all(|u| route_table::Target::parses(u)) {
            return Err(settings::rule(
                key,
                "addresses must be http:// URLs with a host (TLS to upstreams is the mesh's job)",
            ));
        }
        Ok(urls)
    }

    /// The route table, each route with its upstream's addresses, and the documentation
    /// sources with their URLs.
    #[allow(clippy::type_complexity)]
    pub fn resolved(&self) -> Result<(Vec<(Route, Vec<String>)>, Vec<http::docs::DocSource>), SettingsError> {
        let routes = self
            .routes
            .iter()
            .enumerate()
            .map(|(i, route)| {
                Ok((
                    route.clone(),
                    self.upstream(&format!("routes[{i}].upstream"), &route.upstream)?,
                ))
            })
            .collect::<Result<Vec<_>, SettingsError>>()?;
        let sources = self
            .docs
            .sources
            .iter()
            .enumerate()
            .map(|(i, source)| {
                let url = match &source.url {
                    Some(url) => url.clone(),
                    None => {
                        let urls = self.upstream(&format!("docs.sources[{i}]"), &source.name)?;
                        format!("{}/openapi.json", urls[0].trim_end_matches('/'))
                    }
                };
                Ok(http::docs::DocSource {
                    name: source.name.clone(),
                    url: Some(url),
                })
            })
            .collect::<Result<Vec<_>, SettingsError>>()?;
        Ok((routes, sources))
    }
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.http.validate("http")?;
        self.bus.validate()?;
        self.cache.validate()?;
        settings::http_url("introspection.url", &self.introspection.url)?;
        if self.introspection.client_id.is_empty() || self.introspection.client_secret.expose_secret().is_empty() {
            return Err(settings::rule(
                "introspection.client_secret",
                "the gateway's client id and secret are required (auth's [bootstrap] gateway client)",
            ));
        }
        self.identity.validate()?;
        settings::http_url("tokens.issuer", &self.tokens.issuer)?;
        self.upstream("tokens.keys_from", &self.tokens.keys_from)?;
        if self.tokens.max_ttl.0.is_zero() || self.tokens.local_capacity == 0 {
            return Err(settings::rule(
                "tokens.max_ttl",
                "cache lifetimes and capacity must be more than 0",
            ));
        }
        for (name, policy) in &self.rate_limits {
            if !policy.rate.is_finite() || policy.rate <= 0.0 || policy.burst == 0 {
                return Err(settings::rule(
                    &format!("rate_limits.{name}"),
                    "rate and burst must be more than 0",
                ));
            }
        }
        if self.proxy.body_idle_timeout.0.is_zero() {
            return Err(settings::rule("proxy.body_idle_timeout", "must be more than 0"));
        }
        if self.upstream_checks.interval.0.is_zero() || self.upstream_checks.timeout.0.is_zero() {
            return Err(settings::rule("upstream_checks.interval", "must be more than 0"));
        }
        let (routes, _) = self.resolved()?;
        routes
            .iter()
            .enumerate()
            .try_for_each(|(i, (r, _))| r.validate(i, &self.rate_limits))
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
    info(title = "Partner API platform: gateway", description = "The one public address of the platform."),
    paths(http::docs::openapi, http::docs::swagger, http::docs::page),
    tags((name = "reference", description = "The API reference"))
)]
struct ApiDoc;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cache: {0}")]
    Cache(#[from] cache::CacheError),
    #[error(transparent)]
    Bus(#[from] events::BusError),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn readiness(redis: Option<Arc<cache::Redis>>, deps: &Deps) -> http_kit::Readiness {
    let bus = deps.bus.clone();
    // Neither makes the gateway unready: without Redis it serves from its own cache and
    // introspection; without the bus it still refuses what it knows is revoked. Both say so.
    let readiness = http_kit::Readiness::new().degradable("bus", move || {
        let bus = bus.clone();
        async move { bus.ping().await.map_err(|e| e.to_string()) }
    });
    match redis {
        Some(redis) => readiness.degradable("redis", move || {
            let redis = redis.clone();
            async move { redis.ping().await.map_err(|e| e.to_string()) }
        }),
        None => readiness,
    }
}

/// The committed defaults of the secrets: fine on a laptop, never in production.
const DEV_SECRET_MARK: &str = "dev-secret-change-me";

pub async fn start(settings: Settings, deps: Deps) -> Result<Started, StartError> {
    warn_of_development_secrets(&settings);
    let metrics = metrics::GatewayMetrics::new()?;
    let redis = settings.cache.redis()?;
    let validator = token_validator(&settings, redis.clone(), metrics.clone()).await?;
    let consumer = deps
        .bus
        .subscribe(
            Subscription::per_replica(NAME, &[events::catalogue::TokenRevoked::TYPE]),
            Arc::new(consumers::RevocationFeed(validator.clone())),
            deps.shutdown.clone(),
        )
        .await?;
    let usage = Arc::new(usage::Usage::default());
    let reporter = usage::reporter(
        usage.clone(),
        deps.bus.clone(),
        settings.usage.report_interval.0,
        deps.shutdown.clone(),
    );
    let (routes, sources) = settings.resolved().map_err(std::io::Error::other)?;
    let documented_routes = routes.iter().map(|(route, _)| route.clone()).collect();
    let routes = route_table::RouteTable::new(routes);
    let checks = upstream_checks(&routes, &settings.upstream_checks, deps.shutdown.clone())?;
    let openapi = http_kit::openapi::complete(ApiDoc::openapi());
    let docs_settings = DocsSettings {
        sources,
        ..settings.docs.clone()
    };
    let docs = actix_web::web::Data::new(http::docs::Docs::new(
        docs_settings,
        openapi.clone(),
        documented_routes,
    )?);
    let gateway = actix_web::web::Data::new(gateway_state(
        &settings,
        routes,
        &validator,
        redis.clone(),
        metrics.clone(),
        usage,
    ));
    let service = Service {
        name: NAME,
        openapi,
        readiness: readiness(redis, &deps),
        routes: Arc::new(move |cfg| {
            cfg.app_data(actix_web::web::Data::new(upstream::Upstreams::default()));
            cfg.app_data(gateway.clone()).app_data(docs.clone());
            http::routes(cfg);
        }),
        metrics: metrics.collectors(),
    };
    let http = server::start(service, &settings.http, deps.shutdown.clone())?;
    Ok(Started {
        name: NAME,
        http,
        // Forgets revocations of tokens that have expired anyway.
        tasks: vec![
            consumer,
            checks,
            reporter,
            runtime::every(Duration::from_secs(60), deps.shutdown, move || {
                let validator = validator.clone();
                async move { validator.forget_expired_revocations() }
            }),
        ],
    })
}

fn warn_of_development_secrets(settings: &Settings) {
    if settings.bus.kind == runtime::BusKind::Rabbitmq
        && [&settings.identity.secret, &settings.introspection.client_secret]
            .iter()
            .any(|s| s.expose_secret().contains(DEV_SECRET_MARK))
    {
        tracing::warn!(
            "identity.secret or introspection.client_secret is still the development default: set both in production"
        );
    }
}

/// The validator, with auth's signing keys and the revocations other replicas left in Redis
/// when they can be had; neither stops the start (keys are fetched when a token needs them,
/// revocations also arrive as events).
async fn token_validator(
    settings: &Settings,
    redis: Option<Arc<cache::Redis>>,
    metrics: metrics::GatewayMetrics,
) -> Result<Arc<token_validator::Validator>, StartError> {
    let keys_url = settings
        .upstream("tokens.keys_from", &settings.tokens.keys_from)
        .map_err(std::io::Error::other)?
        .swap_remove(0);
    let validator = Arc::new(token_validator::Validator::new(
        settings.tokens.clone(),
        &keys_url,
        &settings.introspection,
        redis.map(cache::RedisEntries::new),
        metrics,
    )?);
    if let Err(error) = validator.keys().refresh().await {
        tracing::warn!(%error, "signing keys unavailable at start; fetched when a token needs them");
    }
    match consumers::load_markers(&validator).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(revocations = n, "revocations learnt from Redis"),
        Err(error) => tracing::warn!(%error, "revocations in Redis not read; relying on events"),
    }
    Ok(validator)
}

fn gateway_state(
    settings: &Settings,
    routes: route_table::RouteTable,
    validator: &Arc<token_validator::Validator>,
    redis: Option<Arc<cache::Redis>>,
    metrics: metrics::GatewayMetrics,
    usage: Arc<usage::Usage>,
) -> state::Gateway {
    state::Gateway {
        routes,
        validator: validator.clone(),
        limits: rate_limits::Limits::new(cache::rates(redis)),
        policies: settings.rate_limits.clone(),
        per_user_clients: settings.rate_limit_keys.per_user_clients.iter().cloned().collect(),
        cors: settings.cors.clone(),
        client_address: settings.client_address.clone(),
        identity_key: identity::SigningKey::new(settings.identity.secret.expose_secret().as_bytes()),
        metrics,
        body_limit: settings.http.body_limit,
        body_idle_timeout: settings.proxy.body_idle_timeout.0,
        usage,
    }
}

/// Asks every upstream instance's `/readyz` each interval and records the answer: an
/// instance draining before it stops is taken out of turn before it closes.
fn upstream_checks(
    routes: &route_table::RouteTable,
    settings: &UpstreamChecks,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, reqwest::Error> {
    let client = reqwest::Client::builder().timeout(settings.timeout.0).build()?;
    let addresses = Arc::new(routes.addresses());
    Ok(runtime::every(settings.interval.0, shutdown, move || {
        let (client, addresses) = (client.clone(), addresses.clone());
        async move {
            let checks = addresses.iter().map(|(address, healthy)| {
                let client = client.clone();
                async move {
                    let ready = client
                        .get(format!("http://{address}/readyz"))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    if healthy.swap(ready, std::sync::atomic::Ordering::Relaxed) != ready {
                        tracing::info!(upstream = %address, ready, "upstream readiness changed");
                    }
                }
            });
            futures_util::future::join_all(checks).await;
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(key: &str, value: serde_json::Value) -> Result<Settings, SettingsError> {
        let figment = settings::figment(DEFAULTS, "GATEWAY_UNIT_TEST_UNUSED_")
            .map(|f| f.merge(figment::providers::Serialized::default(key, value)))?;
        settings::extract(figment, "GATEWAY_UNIT_TEST_UNUSED_")
    }

    #[test]
    fn routes_name_upstreams_that_a_deployment_sets() {
        let moved = with("upstreams.blog", serde_json::json!("http://blog:8084")).map(|s| s.resolved());
        let Ok(Ok((routes, sources))) = moved else {
            panic!("the defaults with one upstream moved should load");
        };
        let blog = routes
            .iter()
            .find(|(r, _)| r.prefix == "/blog")
            .map(|(_, urls)| urls.clone());
        assert_eq!(blog, Some(vec!["http://blog:8084".to_owned()]));
        let doc = sources.iter().find(|s| s.name == "blog").and_then(|s| s.url.as_deref());
        assert_eq!(doc, Some("http://blog:8084/openapi.json"));
        let unknown = with(
            "routes",
            serde_json::json!([{"prefix": "/x", "upstream": "nowhere", "timeout": "1s"}]),
        );
        let message = unknown.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("routes[0].upstream") && message.contains("`nowhere`"),
            "{message}"
        );
    }
}
