//! RFC 7662's endpoint and seed 004's.

pub mod introspect;

use actix_web::web;
use http_kit::{Endpoint, OAuthError};

pub fn oauth_form() -> web::FormConfig {
    web::FormConfig::default()
        .limit(16 * 1024)
        .error_handler(|e, _| OAuthError::invalid_request(e.to_string()).into())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(oauth_form())
        .service(Endpoint::new("/oauth2/introspect").post(introspect::introspect).build())
        .service(Endpoint::new("/mcg/v1/tokeninfo").post(introspect::tokeninfo).build());
}
