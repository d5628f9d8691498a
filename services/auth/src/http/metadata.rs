//! RFC 8414 metadata and the JWKS, at their public gateway addresses.

use actix_web::{HttpResponse, web};
use http_kit::Endpoint;

use crate::state::AppState;

/// Registers this file's endpoints (`http::routes` composes every file's).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        Endpoint::new("/.well-known/oauth-authorization-server")
            .get(metadata)
            .build(),
    )
    .service(Endpoint::new("/.well-known/openid-configuration").get(metadata).build())
    .service(Endpoint::new("/.well-known/jwks.json").get(jwks).build());
}

/// RFC 8414 authorization server metadata (also served as OpenID discovery).
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", operation_id = "getAuthorizationServerMetadata", tag = "oauth2", responses((status = 200, description = "RFC 8414 metadata")))]
pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    let issuer = state.keys.issuer().trim_end_matches('/');
    let scopes: Vec<String> = state
        .platform_scopes
        .to_string()
        .split(' ')
        .map(str::to_owned)
        .collect();
    let body = serde_json::json!({
        "issuer": state.keys.issuer(),
        "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "registration_endpoint": format!("{issuer}/oauth2/register"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "client_credentials", "password", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "bearer"],
        "code_challenge_methods_supported": ["S256"],
        "service_documentation": format!("{issuer}/docs"),
    });
    HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=300"))
        .json(body)
}

/// The public keys that verify access tokens.
#[utoipa::path(get, path = "/.well-known/jwks.json", operation_id = "getJwks", tag = "oauth2", responses((status = 200, description = "JWK Set")))]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    // Short: a rotation must reach verifiers well before the old key's tokens expire.
    HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=60"))
        .content_type("application/jwk-set+json")
        .json(state.keys.jwks())
}
