//! The gateway's own endpoints (the merged API reference) and, for every other path, the
//! proxy.

pub mod docs;
pub mod proxy;
pub mod swagger2;

use actix_web::web;
use http_kit::Endpoint;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/openapi.json").get(docs::openapi).build())
        .service(Endpoint::new("/swagger/swagger.json").get(docs::swagger).build())
        .service(Endpoint::new("/docs").get(docs::page).build())
        .default_service(web::to(proxy::forward));
}
