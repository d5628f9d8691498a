//! `POST /oauth2/introspect` and seed 004's `POST /mcg/v1/tokeninfo`: the caller
//! authenticates, the token is inspected, and the caller sees what it may.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use http_kit::OAuthError;
use serde::Deserialize;
use tokens::{Introspection, now_secs};

use crate::domain::answer;
use crate::state::Introspector;

impl Introspector {
    fn respond(&self, answer: &Introspection) -> HttpResponse {
        let max_age = answer
            .exp
            .filter(|_| answer.active)
            .map(|exp| (exp - now_secs()).clamp(0, self.settings.max_cache.secs()));
        let cache_control = match max_age {
            Some(secs) => format!("private, max-age={secs}"),
            None => "no-store".to_owned(),
        };
        HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, cache_control))
            .json(answer)
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct IntrospectForm {
    /// The token to describe.
    #[schema(required = true, nullable = false, min_length = 1)]
    token: Option<String>,
    /// Only a hint: every token is recognised by its form whatever the hint says.
    #[serde(rename = "token_type_hint")]
    #[schema(nullable = false)]
    _hint: Option<String>,
    /// With `client_secret`, instead of HTTP Basic.
    #[schema(nullable = false)]
    client_id: Option<String>,
    #[schema(nullable = false)]
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
#[utoipa::path(post, path = "/oauth2/introspect", operation_id = "introspectToken", tag = "introspection",
    request_body(content_type = "application/x-www-form-urlencoded", content = IntrospectForm, description = "RFC 7662 request; the caller authenticates with HTTP Basic or in the form"),
    responses((status = 200, body = Introspection, description = "The token's state, as the caller may see it"),
              (status = 400, body = http_kit::oauth_error::Body, description = "invalid_request: no token"),
              (status = 401, body = http_kit::oauth_error::Body, description = "invalid_client: the caller did not authenticate"),
              (status = 429, body = http_kit::oauth_error::Body, description = "too many failed attempts: wait Retry-After seconds"),
              (status = 503, body = http_kit::oauth_error::Body, description = "temporarily_unavailable")))]
pub async fn introspect(
    state: web::Data<Introspector>,
    req: HttpRequest,
    form: web::Form<IntrospectForm>,
) -> Result<HttpResponse, OAuthError> {
    answer(&state, &req, form.into_inner()).await
}

/// Seed 004's token information call: the same answer as `/oauth2/introspect`.
#[utoipa::path(post, path = "/mcg/v1/tokeninfo", operation_id = "getTokenInfo", tag = "introspection",
    request_body(content_type = "application/x-www-form-urlencoded", content = IntrospectForm, description = "As for /oauth2/introspect"),
    responses((status = 200, body = Introspection, description = "The token's state, as the caller may see it"),
              (status = 400, body = http_kit::oauth_error::Body, description = "invalid_request: no token"),
              (status = 401, body = http_kit::oauth_error::Body, description = "invalid_client: the caller did not authenticate"),
              (status = 429, body = http_kit::oauth_error::Body, description = "too many failed attempts: wait Retry-After seconds"),
              (status = 503, body = http_kit::oauth_error::Body, description = "temporarily_unavailable")))]
pub async fn tokeninfo(
    state: web::Data<Introspector>,
    req: HttpRequest,
    form: web::Form<IntrospectForm>,
) -> Result<HttpResponse, OAuthError> {
    answer(&state, &req, form.into_inner()).await
}
