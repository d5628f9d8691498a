//! The authorization code flow (RFC 6749 §4.1 with PKCE, RFC 7636) through the login and
//! consent pages, and seed 003's "Log in with" flow (`/api/oauth` → `auth_key`).

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use http_kit::Endpoint;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::crypto;
use crate::domain::{GrantType, Scopes, consents};
use crate::http::token::authenticate_user;
use crate::state::AppState;
use crate::store::{ClientRow, CodeRow, UserRow};
use crate::views;

/// Registers this file's endpoints (`http::routes` composes every file's).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/oauth2/authorize").get(authorize).build())
        .service(Endpoint::new("/oauth2/login").post(login).build())
        .service(Endpoint::new("/oauth2/consent").post(consent).build())
        .service(Endpoint::new("/oauth2/logout").post(logout).build())
        .service(Endpoint::new("/api/oauth").get(seed_login_with).build());
}

const SESSION_COOKIE: &str = "platform_session";
const CSRF_COOKIE: &str = "platform_csrf";
const SESSION_TTL_MS: i64 = 8 * 3600 * 1000;
const CODE_TTL_MS: i64 = 60 * 1000;
/// `flow` value of seed 003's requests: the code is returned as `auth_key`.
const SEED_003: &str = "seed003";

/// The authorization request, as a query string or as the consent form's hidden fields.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub flow: Option<String>,
}

impl AuthorizeParams {
    fn fields(&self) -> Vec<(&'static str, &str)> {
        [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
            ("flow", &self.flow),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }

    fn return_to(&self) -> String {
        let query = serde_urlencoded::to_string(self).unwrap_or_default();
        format!("/oauth2/authorize?{query}")
    }
}

/// A request that passed every check.
struct Valid {
    client: ClientRow,
    redirect_uri: String,
    scope: Scopes,
    state: Option<String>,
    challenge: Option<String>,
    seed003: bool,
}

/// How a bad request is answered: a page when the redirect URI cannot be trusted, otherwise a
/// redirect carrying the error (RFC 6749 §4.1.2.1).
enum Rejection {
    Page(String),
    Redirect {
        uri: String,
        error: &'static str,
        description: String,
        state: Option<String>,
    },
}

fn redirect_to(uri: &str, params: &[(&str, &str)]) -> HttpResponse {
    let sep = if uri.contains('?') { '&' } else { '?' };
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("{uri}{sep}{query}")))
        .insert_header(("cache-control", "no-store"))
        .finish()
}

fn reject(rejection: Rejection) -> HttpResponse {
    match rejection {
        Rejection::Page(message) => views::error(StatusCode::BAD_REQUEST, &message),
        Rejection::Redirect {
            uri,
            error,
            description,
            state,
        } => {
            let mut params = vec![("error", error), ("error_description", description.as_str())];
            if let Some(state) = state.as_deref() {
                params.push(("state", state));
            }
            redirect_to(&uri, &params)
        }
    }
}

/// An error the application is told of at its redirect URI: the RFC 6749 §4.1.2.1 code and
/// its description.
type Refusal = (&'static str, &'static str);

/// Checks the request in RFC 6749 §4.1.2.1's order: the client and redirect URI first (a
/// failure is shown, since the URI cannot be trusted), then what the application asked for
/// (a failure goes back to it).
async fn validate(state: &AppState, params: &AuthorizeParams) -> Result<Valid, Rejection> {
    let client = registered_client(state, params.client_id.as_deref()).await?;
    let redirect_uri = redirect_uri(&client, params.redirect_uri.as_deref())?;
    let redirect = |(error, description): Refusal| Rejection::Redirect {
        uri: redirect_uri.clone(),
        error,
        description: description.to_owned(),
        state: params.state.clone(),
    };
    code_flow_allowed(&client, params.response_type.as_deref()).map_err(redirect)?;
    let scope = requested_scope(&client, params.scope.as_deref()).map_err(redirect)?;
    let challenge = pkce_challenge(&client, params).map_err(redirect)?;
    Ok(Valid {
        client,
        redirect_uri,
        scope,
        state: params.state.clone(),
        challenge,
        seed003: params.flow.as_deref() == Some(SEED_003),
    })
}

/// The application the request names, which must be registered.
async fn registered_client(state: &AppState, client_id: Option<&str>) -> Result<ClientRow, Rejection> {
    let client_id = client_id.ok_or_else(|| Rejection::Page("The request names no application (client_id).".into()))?;
    state
        .client(client_id)
        .await
        .map_err(|_| Rejection::Page("The service is temporarily unavailable.".into()))?
        .ok_or_else(|| Rejection::Page("This application is not registered.".into()))
}

/// The redirect URI asked for, one of the client's; when none is asked for, the client's only one.
fn redirect_uri(client: &ClientRow, requested: Option<&str>) -> Result<String, Rejection> {
    let registered: Vec<&str> = client.redirect_uris.lines().filter(|l| !l.is_empty()).collect();
    match requested {
        Some(uri) if registered.contains(&uri) => Ok(uri.to_owned()),
        Some(_) => Err(Rejection::Page(
            "The redirect URI is not registered for this application.".into(),
        )),
        None if registered.len() == 1 => Ok(registered[0].to_owned()),
        None => Err(Rejection::Page(
            "The request must name one of the application's redirect URIs.".into(),
        )),
    }
}

/// `response_type=code`, from a client that may use the authorization code flow.
fn code_flow_allowed(client: &ClientRow, response_type: Option<&str>) -> Result<(), Refusal> {
    if response_type != Some("code") {
        return Err(("unsupported_response_type", "only response_type=code is supported"));
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err((
            "unauthorized_client",
            "this application may not use the authorization code flow",
        ));
    }
    Ok(())
}

/// The scopes asked for, all of them allowed to the client; every allowed one when none is.
fn requested_scope(client: &ClientRow, requested: Option<&str>) -> Result<Scopes, Refusal> {
    let allowed = client.scopes();
    match requested.filter(|s| !s.trim().is_empty()) {
        None => Ok(allowed),
        Some(raw) => Scopes::parse(raw)
            .ok()
            .filter(|s| s.is_subset(&allowed))
            .ok_or(("invalid_scope", "a requested scope is not allowed to this application")),
    }
}

/// The PKCE challenge (RFC 7636, S256 only), which a public client must send.
fn pkce_challenge(client: &ClientRow, params: &AuthorizeParams) -> Result<Option<String>, Refusal> {
    let challenge = params.code_challenge.clone().filter(|c| !c.is_empty());
    match (&challenge, params.code_challenge_method.as_deref()) {
        (Some(c), Some("S256")) if (43..=128).contains(&c.len()) => Ok(challenge),
        (Some(_), Some("S256")) => Err(("invalid_request", "code_challenge must be 43 to 128 characters")),
        (Some(_), _) => Err(("invalid_request", "code_challenge_method must be S256")),
        (None, _) if client.secret_hash.is_none() => {
            Err(("invalid_request", "PKCE (S256) is required for public clients"))
        }
        (None, _) => Ok(None),
    }
}

pub(super) fn cookie_value(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie(name).map(|c| c.value().to_owned()).filter(|v| !v.is_empty())
}

fn secure(state: &AppState) -> bool {
    state.keys.issuer().starts_with("https://")
}

pub(super) fn cookie<'a>(state: &AppState, name: &'a str, value: String, same_site: SameSite) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(same_site)
        .secure(secure(state))
        .finish()
}

/// The page's CSRF token (double submit: a cookie and a form field that must match).
pub(super) fn csrf_token(req: &HttpRequest) -> (String, bool) {
    match cookie_value(req, CSRF_COOKIE) {
        Some(token) => (token, false),
        None => (crypto::random_secret(), true),
    }
}

pub(super) fn csrf_ok(req: &HttpRequest, submitted: &str) -> bool {
    cookie_value(req, CSRF_COOKIE).is_some_and(|c| c.as_bytes().ct_eq(submitted.as_bytes()).into())
}

pub(super) fn with_csrf(state: &AppState, mut response: HttpResponse, token: String, fresh: bool) -> HttpResponse {
    if fresh {
        let _ = response.add_cookie(&cookie(state, CSRF_COOKIE, token, SameSite::Strict));
    }
    response
}

async fn session_user(state: &AppState, req: &HttpRequest) -> Option<UserRow> {
    let hash = crypto::sha256_hex(&cookie_value(req, SESSION_COOKIE)?);
    let now = storage::now_millis();
    state.store.session_user(hash, now).await.ok().flatten()
}

/// Issues a single-use code and sends the browser back to the application.
async fn grant(state: &AppState, valid: &Valid, user: &UserRow) -> HttpResponse {
    let code = crypto::random_secret();
    let now = storage::now_millis();
    let row = CodeRow {
        code_hash: crypto::sha256_hex(&code),
        client_id: valid.client.id.clone(),
        user_id: user.id.clone(),
        redirect_uri: valid.redirect_uri.clone(),
        scope: valid.scope.to_string(),
        code_challenge: valid.challenge.clone(),
        created_at: now,
        expires_at: now + CODE_TTL_MS,
        used_at: None,
        issued_jti: None,
        issued_family: None,
        issued_exp: None,
    };
    if let Err(error) = state.store.insert_code(row).await {
        tracing::error!(%error, "could not store an authorization code");
        return views::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is temporarily unavailable; try again.",
        );
    }
    let name = if valid.seed003 { "auth_key" } else { "code" };
    let mut params = vec![(name, code.as_str())];
    if let Some(s) = valid.state.as_deref() {
        params.push(("state", s));
    }
    redirect_to(&valid.redirect_uri, &params)
}

/// Shows login or consent, or grants at once when the user already consented to these scopes.
async fn proceed(state: &AppState, req: &HttpRequest, params: AuthorizeParams) -> HttpResponse {
    let valid = match validate(state, &params).await {
        Ok(valid) => valid,
        Err(rejection) => return reject(rejection),
    };
    let (csrf, fresh) = csrf_token(req);
    let Some(user) = session_user(state, req).await else {
        return with_csrf(
            state,
            views::login(&csrf, &params.return_to(), Some(&valid.client.name), None, ""),
            csrf,
            fresh,
        );
    };
    // The platform's own clients act for the person who signs in to them: nothing to consent to.
    if valid.client.first_party {
        return grant(state, &valid, &user).await;
    }
    let remembered = state
        .store
        .consent(user.id.clone(), valid.client.id.clone())
        .await
        .ok()
        .flatten();
    if remembered
        .and_then(|s| Scopes::parse(&s).ok())
        .is_some_and(|granted| valid.scope.is_subset(&granted))
    {
        return grant(state, &valid, &user).await;
    }
    let scope = valid.scope.to_string();
    let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    let page = views::consent(&csrf, &user.username, &valid.client.name, &scopes, &params.fields());
    with_csrf(state, page, csrf, fresh)
}

pub async fn authorize(
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<AuthorizeParams>,
) -> HttpResponse {
    proceed(&state, &req, params.into_inner()).await
}

#[derive(Debug, Deserialize)]
pub struct SeedLoginWith {
    app_id: Option<String>,
    state: Option<String>,
}

/// Seed 003: `GET /api/oauth?app_id=…` starts "Log in with"; the application receives `auth_key`.
pub async fn seed_login_with(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<SeedLoginWith>,
) -> HttpResponse {
    let query = query.into_inner();
    let params = AuthorizeParams {
        response_type: Some("code".into()),
        client_id: query.app_id,
        state: query.state,
        flow: Some(SEED_003.into()),
        ..AuthorizeParams::default()
    };
    proceed(&state, &req, params).await
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    return_to: String,
}

/// Only our own authorization URLs, so the login form cannot be an open redirect.
pub(super) fn safe_return(return_to: &str) -> Option<&str> {
    (return_to.starts_with("/oauth2/authorize?") && !return_to.contains("//")).then_some(return_to)
}

pub async fn login(state: web::Data<AppState>, req: HttpRequest, form: web::Form<LoginForm>) -> HttpResponse {
    let form = form.into_inner();
    let Some(return_to) = safe_return(&form.return_to) else {
        return views::error(StatusCode::BAD_REQUEST, "The sign-in form was not sent from this site.");
    };
    if !csrf_ok(&req, &form.csrf) {
        return views::error(
            StatusCode::FORBIDDEN,
            "The sign-in form expired or was not sent from this site. Go back and try again.",
        );
    }
    let user = match authenticate_user(&state, &req, &form.username, &form.password).await {
        Ok(user) => user,
        Err(error) if error.error_code() == "slow_down" => {
            return views::login(
                &form.csrf,
                return_to,
                None,
                Some("Too many failed attempts. Wait a minute and try again."),
                &form.username,
            );
        }
        Err(_) => {
            return views::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable; try again.",
            );
        }
    };
    let Some(user) = user else {
        return views::login(
            &form.csrf,
            return_to,
            None,
            Some("Wrong username or password."),
            &form.username,
        );
    };
    tracing::info!(user.id = %user.id, "signed in");
    signed_in(&state, &user, return_to).await
}

/// Opens a session for `user` and sends the browser on to `return_to`.
pub(super) async fn signed_in(state: &AppState, user: &UserRow, return_to: &str) -> HttpResponse {
    let session = crypto::random_secret();
    let now = storage::now_millis();
    if state
        .store
        .insert_session(crypto::sha256_hex(&session), user.id.clone(), now, now + SESSION_TTL_MS)
        .await
        .is_err()
    {
        return views::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is temporarily unavailable; try again.",
        );
    }
    let mut response = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, return_to))
        .finish();
    let _ = response.add_cookie(&cookie(state, SESSION_COOKIE, session, SameSite::Lax));
    response
}

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    csrf: String,
    decision: String,
    #[serde(flatten)]
    params: AuthorizeParams,
}

pub async fn consent(state: web::Data<AppState>, req: HttpRequest, form: web::Form<ConsentForm>) -> HttpResponse {
    let form = form.into_inner();
    if !csrf_ok(&req, &form.csrf) {
        return views::error(
            StatusCode::FORBIDDEN,
            "The consent form expired or was not sent from this site. Go back and try again.",
        );
    }
    let valid = match validate(&state, &form.params).await {
        Ok(valid) => valid,
        Err(rejection) => return reject(rejection),
    };
    let Some(user) = session_user(&state, &req).await else {
        let (csrf, fresh) = csrf_token(&req);
        return with_csrf(
            &state,
            views::login(&csrf, &form.params.return_to(), Some(&valid.client.name), None, ""),
            csrf,
            fresh,
        );
    };
    if form.decision != "approve" {
        return reject(Rejection::Redirect {
            uri: valid.redirect_uri,
            error: "access_denied",
            description: "the user denied access".into(),
            state: valid.state,
        });
    }
    if consents::grant(&state, user.id.clone(), valid.client.id.clone(), valid.scope.clone())
        .await
        .is_err()
    {
        return views::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is temporarily unavailable; try again.",
        );
    }
    grant(&state, &valid, &user).await
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

pub async fn logout(state: web::Data<AppState>, req: HttpRequest, form: web::Form<LogoutForm>) -> HttpResponse {
    if !csrf_ok(&req, &form.csrf) {
        return views::error(StatusCode::FORBIDDEN, "The sign-out form was not sent from this site.");
    }
    if let Some(session) = cookie_value(&req, SESSION_COOKIE) {
        let _ = state.store.delete_session(crypto::sha256_hex(&session)).await;
    }
    let mut response = views::signed_out();
    let mut gone = cookie(&state, SESSION_COOKIE, String::new(), SameSite::Lax);
    gone.make_removal();
    let _ = response.add_cookie(&gone);
    response
}

#[cfg(test)]
mod tests {
    use super::safe_return;

    #[test]
    fn return_to_stays_on_the_authorize_endpoint() {
        assert!(safe_return("/oauth2/authorize?client_id=x").is_some());
        assert!(safe_return("https://evil.example.com/").is_none());
        assert!(safe_return("//evil.example.com/oauth2/authorize?").is_none());
        assert!(safe_return("/oauth2/authorize?x=//evil").is_none());
    }
}
