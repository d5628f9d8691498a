//! The gateway: the one public address partners call.
//!
//! Today it forwards by path prefix to the services (all of which authenticate their callers
//! themselves) and serves its operational endpoints; token validation against cached
//! introspection, scopes and rate limits arrive with the gateway issue.

mod proxy;

use std::sync::Arc;

use http_kit::server::{self, HttpSettings, Service};
use runtime::{BusSettings, Deps, ServiceSettings, Started};
use serde::Deserialize;
use settings::{SettingsError, Validate};
use utoipa::OpenApi;

pub const NAME: &str = "gateway";
pub const ENV_PREFIX: &str = "GATEWAY_";
pub const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: HttpSettings,
    pub bus: BusSettings,
    #[serde(default)]
    pub routes: Vec<proxy::Route>,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.http.validate("http")?;
        self.bus.validate()?;
        self.routes.iter().enumerate().try_for_each(|(i, r)| r.validate(i))
    }
}

impl ServiceSettings for Settings {
    fn bus(&self) -> &BusSettings {
        &self.bus
    }
}

#[derive(OpenApi)]
#[openapi(info(
    title = "Partner API platform: gateway",
    description = "The one public address of the platform."
))]
struct ApiDoc;

pub async fn start(settings: Settings, deps: Deps) -> Result<Started, std::io::Error> {
    let proxy = actix_web::web::Data::new(proxy::Proxy::new(settings.routes.clone()).map_err(std::io::Error::other)?);
    let service = Service {
        name: NAME,
        openapi: ApiDoc::openapi(),
        readiness: http_kit::Readiness::new(),
        routes: Arc::new(move |cfg| {
            cfg.app_data(proxy.clone())
                .default_service(actix_web::web::to(proxy::forward));
        }),
    };
    let http = server::start(service, &settings.http, deps.shutdown)?;
    Ok(Started {
        name: NAME,
        http,
        tasks: Vec::new(),
    })
}
