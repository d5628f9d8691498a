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
