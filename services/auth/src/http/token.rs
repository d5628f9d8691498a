//! RFC 6749 token endpoint (`POST /oauth2/token`) and RFC 7009 revocation (`POST /oauth2/revoke`).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use http_kit::extract::excerpt;
use http_kit::{Endpoint, OAuthError};
use identity::ClientAddress;
use serde::{Deserialize, Serialize};

use crate::client_auth::{self, AuthenticatedClient};
use crate::crypto;
use crate::domain::issue::{Issued, issue_for_user};
use crate::domain::{GrantType, Scopes, consents};
use crate::limiter::Attempt;
use crate::oauth_form;
use crate::passwords::HashError;
use crate::state::AppState;
use crate::store::{self, UserRow};

/// Registers this file's endpoints (`http::routes` composes every file's).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        Endpoint::new("/oauth2/token")
            .app_data(oauth_form())
            .post(token)
            .build(),
    )
    .service(
        Endpoint::new("/oauth2/revoke")
            .app_data(oauth_form())
            .post(revoke)
            .build(),
    )
    .service(Endpoint::new("/api/authorize").get(seed_authorize).build());
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TokenForm {
    #[schema(required = true, nullable = false, value_type = crate::domain::GrantType)]
    grant_type: Option<String>,
    /// Space-separated scopes (`client_credentials`, `password`, narrowing on `refresh_token`).
    #[schema(nullable = false)]
    scope: Option<String>,
    /// `authorization_code`: the code the redirect brought back.
    #[schema(nullable = false)]
    code: Option<String>,
    /// `authorization_code`: the redirect_uri of the authorization request.
    #[schema(nullable = false)]
    redirect_uri: Option<String>,
    /// `authorization_code`: the PKCE verifier (RFC 7636).
    #[schema(nullable = false)]
    code_verifier: Option<String>,
    /// `refresh_token`: the refresh token.
    #[schema(nullable = false)]
    refresh_token: Option<String>,
    /// `password`: the user's username.
    #[schema(nullable = false)]
    username: Option<String>,
    /// `password`: the user's password.
    #[schema(nullable = false)]
    password: Option<String>,
    /// With `client_secret`, instead of HTTP Basic; alone, for a public client.
    #[schema(nullable = false)]
    client_id: Option<String>,
    #[schema(nullable = false)]
    client_secret: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

impl TokenResponse {
    pub fn from_issued(issued: Issued, ttl: i64) -> Self {
        Self {
            access_token: issued.access_token,
            token_type: "Bearer",
            expires_in: ttl,
            refresh_token: issued.refresh_token,
            scope: issued.claims.scope,
        }
    }
}

fn no_store(body: &impl Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

/// Issues tokens for the authorization_code, client_credentials, password and refresh_token grants.
#[utoipa::path(post, path = "/oauth2/token", operation_id = "requestToken", tag = "oauth2",
    request_body(content_type = "application/x-www-form-urlencoded", content = TokenForm, description = "RFC 6749 token request; the client authenticates with HTTP Basic (client_secret_basic) or in the form (client_secret_post)"),
    responses((status = 200, body = TokenResponse),
              (status = 400, body = http_kit::oauth_error::Body, description = "RFC 6749 §5.2: invalid_request, invalid_grant, unauthorized_client, unsupported_grant_type, invalid_scope"),
              (status = 401, body = http_kit::oauth_error::Body, description = "invalid_client"),
              (status = 403, body = http_kit::oauth_error::Body, description = "the application does not accept requests from this address"),
              (status = 429, body = http_kit::oauth_error::Body, description = "too many failed attempts: wait Retry-After seconds")))]
pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, OAuthError> {
    let form = form.into_inner();
    let grant = form
        .grant_type
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let grant = GrantType::parse(grant)
        .ok_or_else(|| OAuthError::unsupported_grant_type(format!("`{}` is not supported", excerpt(grant))))?;
    let client =
        client_auth::authenticate(&state, &req, form.client_id.as_deref(), form.client_secret.as_deref()).await?;
    if !client.row.allows(grant) {
        return Err(OAuthError::unauthorized_client(format!(
            "this client may not use the {} grant",
            grant.as_str()
        )));
    }
    let issued = match grant {
        GrantType::ClientCredentials => client_credentials(&state, &client, form.scope.as_deref())?,
        GrantType::Password => password(&state, &req, &client, &form).await?,
        GrantType::RefreshToken => refresh(&state, &client, &form).await?,
        GrantType::AuthorizationCode => {
            let code = form
                .code
                .as_deref()
                .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
            redeem_code(
                &state,
                &client,
                code,
                form.redirect_uri.as_deref(),
                form.code_verifier.as_deref(),
            )
            .await?
        }
    };
    Ok(no_store(&TokenResponse::from_issued(
        issued,
        state.oauth.access_token_ttl.secs(),
    )))
}

/// The scope to grant: what was asked (all of it allowed to the client), or everything the
/// client may have when nothing was asked.
pub fn granted_scope(requested: Option<&str>, allowed: &Scopes) -> Result<Scopes, OAuthError> {
    match requested.filter(|s| !s.trim().is_empty()) {
        None => Ok(allowed.clone()),
        Some(raw) => {
            let asked = Scopes::parse(raw).map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
            if !asked.is_subset(allowed) {
                return Err(OAuthError::invalid_scope(format!(
                    "`{asked}` is not within `{allowed}`"
                )));
            }
            Ok(asked)
        }
    }
}

fn client_credentials(
    state: &AppState,
    client: &AuthenticatedClient,
    scope: Option<&str>,
) -> Result<Issued, OAuthError> {
    if !client.confidential {
        return Err(OAuthError::unauthorized_client(
            "public clients cannot use client_credentials",
        ));
    }
    let scope = granted_scope(scope, &client.row.scopes())?;
    let (access_token, claims) = state
        .access_token(&client.row, None, &scope)
        .map_err(OAuthError::server_error)?;
    Ok(Issued {
        access_token,
        claims,
        refresh_token: None,
    })
}

/// Checks a user's password off the executor, under the failure limits (see `limiter`).
pub async fn authenticate_user(
    state: &AppState,
    req: &HttpRequest,
    username: &str,
    password: &str,
) -> Result<Option<UserRow>, OAuthError> {
    let attempt = Attempt::user(username, ClientAddress::of(req).0);
    let lane = state
        .limiter
        .admit(&attempt)
        .await
        .map_err(OAuthError::too_many_attempts)?;
    let user = state.store.user_by_username(username.to_owned()).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let ok = match state.passwords.verify(lane, password.to_owned(), hash).await {
        Ok(ok) => ok,
        Err(HashError::Busy(wait)) => {
            state.limiter.unchecked(&attempt).await;
            return Err(OAuthError::too_many_attempts(wait));
        }
        Err(HashError::Failed(cause)) => return Err(OAuthError::server_error(cause)),
    };
    if ok {
        state.limiter.succeeded(&attempt).await;
        Ok(user)
    } else {
        state.limiter.failed(&attempt).await;
        tracing::info!(user.name = %username, "password check failed");
        Ok(None)
    }
}

async fn password(
    state: &AppState,
    req: &HttpRequest,
    client: &AuthenticatedClient,
    form: &TokenForm,
) -> Result<Issued, OAuthError> {
    let (Some(username), Some(password)) = (form.username.as_deref(), form.password.as_deref()) else {
        return Err(OAuthError::invalid_request("username and password are required"));
    };
    let scope = granted_scope(form.scope.as_deref(), &client.row.scopes())?;
    let user = authenticate_user(state, req, username, password)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("wrong username or password"))?;
    // The user handed the application their credentials: that authorizes it (RFC 6749 §4.3).
    consents::grant(state, user.id.clone(), client.row.id.clone(), scope.clone()).await?;
    issue_for_user(state, client, &user, &scope, None).await
}

/// Rotation with reuse detection: each refresh token works once; presenting a used one means
/// it leaked, so the whole family is revoked.
async fn refresh(state: &AppState, client: &AuthenticatedClient, form: &TokenForm) -> Result<Issued, OAuthError> {
    let token = form
        .refresh_token
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let hash = crypto::sha256_hex(token);
    let now = storage::now_millis();
    let row = state
        .store
        .refresh_by_hash(hash.clone())
        .await?
        .filter(|r| r.client_id == client.row.id)
        .ok_or_else(|| OAuthError::invalid_grant("unknown refresh token"))?;
    if row.revoked_at.is_some() || row.expires_at <= now {
        return Err(OAuthError::invalid_grant("refresh token expired or revoked"));
    }
    if !state.store.use_refresh(hash, now).await? {
        let revoked = state.store.revoke_family(row.family_id.clone(), now).await?;
        tracing::warn!(client.id = %client.row.id, revoked, "refresh token reused; its family is revoked");
        return Err(OAuthError::invalid_grant("refresh token already used"));
    }
    let allowed = Scopes::parse(&row.scope).unwrap_or_default();
    let scope = granted_scope(form.scope.as_deref(), &allowed)?;
    let user_id = row
        .user_id
        .clone()
        .ok_or_else(|| OAuthError::invalid_grant("refresh token has no user"))?;
    let user = state
        .store
        .user_by_id(user_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
    issue_for_user(state, client, &user, &scope, Some(row.family_id)).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RevokeForm {
    /// The access or refresh token to revoke.
    #[schema(required = true, nullable = false, min_length = 1)]
    token: Option<String>,
    /// Only a hint.
    #[schema(nullable = false, pattern = "^(access_token|refresh_token)$")]
    token_type_hint: Option<String>,
    /// With `client_secret`, instead of HTTP Basic.
    #[schema(nullable = false)]
    client_id: Option<String>,
    #[schema(nullable = false)]
    client_secret: Option<String>,
}

/// RFC 7009: revokes a refresh token (and its family) or an access token. Unknown and expired
/// tokens answer 200 too, so the endpoint tells nothing about tokens.
#[utoipa::path(post, path = "/oauth2/revoke", operation_id = "revokeToken", tag = "oauth2",
    request_body(content_type = "application/x-www-form-urlencoded", content = RevokeForm, description = "RFC 7009 revocation request"),
    responses((status = 200, description = "Revoked, or nothing to revoke"),
              (status = 400, body = http_kit::oauth_error::Body, description = "invalid_request (no token) or unsupported_token_type"),
              (status = 401, body = http_kit::oauth_error::Body, description = "invalid_client"),
              (status = 403, body = http_kit::oauth_error::Body, description = "the application does not accept requests from this address"),
              (status = 429, body = http_kit::oauth_error::Body, description = "too many failed attempts: wait Retry-After seconds")))]
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, OAuthError> {
    let form = form.into_inner();
    let client =
        client_auth::authenticate(&state, &req, form.client_id.as_deref(), form.client_secret.as_deref()).await?;
    let token = form
        .token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    match form.token_type_hint.as_deref() {
        None | Some("access_token" | "refresh_token") => {}
        Some(other) => {
            return Err(OAuthError::unsupported_token_type(format!(
                "`{}` is not a token type this server issues",
                excerpt(other)
            )));
        }
    }
    if token.starts_with("rt_") {
        state
            .store
            .revoke_family_of(crypto::sha256_hex(&token), client.row.id.clone(), storage::now_millis())
            .await?;
    } else if let Ok(claims) = state.keys.verify(&token) {
        if claims.client_id != client.row.id {
            return Err(OAuthError::unauthorized_client(
                "this token was issued to another client",
            ));
        }
        state.revoke_access(&claims).await?;
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// Redeems an authorization code (or seed 003 `auth_key`) once. The code is spent before any
/// other check, so guessing a PKCE verifier costs the code; a replay revokes what it issued.
pub async fn redeem_code(
    state: &AppState,
    client: &AuthenticatedClient,
    code: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<Issued, OAuthError> {
    let hash = crypto::sha256_hex(code);
    let now = storage::now_millis();
    let row = state
        .store
        .code_by_hash(hash.clone())
        .await?
        .filter(|r| r.client_id == client.row.id)
        .ok_or_else(|| OAuthError::invalid_grant("unknown authorization code"))?;
    if !state.store.use_code(hash.clone(), now).await? {
        revoke_issued(state, &row).await?;
        tracing::warn!(client.id = %client.row.id, "authorization code replayed; what it issued is revoked");
        return Err(OAuthError::invalid_grant("authorization code already used"));
    }
    if row.expires_at <= now {
        return Err(OAuthError::invalid_grant("authorization code expired"));
    }
    if redirect_uri.is_some_and(|uri| uri != row.redirect_uri) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request",
        ));
    }
    match (&row.code_challenge, verifier) {
        (Some(challenge), Some(verifier)) if crypto::pkce_s256_matches(verifier, challenge) => {}
        (Some(_), _) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        (None, _) if !client.confidential => return Err(OAuthError::invalid_grant("public clients must use PKCE")),
        (None, _) => {}
    }
    let user = state
        .store
        .user_by_id(row.user_id.clone())
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
    let scope = Scopes::parse(&row.scope).unwrap_or_default();
    let family = uuid::Uuid::now_v7().to_string();
    let issued = issue_for_user(state, client, &user, &scope, Some(family.clone())).await?;
    let family = issued.refresh_token.is_some().then_some(family);
    state
        .store
        .record_issued(hash, issued.claims.jti.clone(), family, issued.claims.exp)
        .await?;
    Ok(issued)
}

async fn revoke_issued(state: &AppState, row: &store::CodeRow) -> Result<(), OAuthError> {
    if let (Some(jti), Some(exp)) = (&row.issued_jti, row.issued_exp) {
        let (client, user) = (row.client_id.clone(), row.user_id.clone());
        state.revoke_token(jti.clone(), client, Some(user), exp).await?;
    }
    if let Some(family) = row.issued_family.clone() {
        state.store.revoke_family(family, storage::now_millis()).await?;
    }
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeedAuthorizeQuery {
    /// The application's client_id.
    #[param(required = true)]
    app_id: Option<String>,
    /// The application's secret.
    #[param(required = true)]
    app_secret: Option<String>,
    /// The single-use key "Log in with" returned.
    #[param(required = true)]
    auth_key: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeedAccessToken {
    /// Valid one hour.
    pub access_token: String,
}

/// Seed 003: `GET /api/authorize?app_id&app_secret&auth_key` exchanges the single-use auth_key.
#[utoipa::path(get, path = "/api/authorize", operation_id = "exchangeAuthKey", tag = "seed",
    params(SeedAuthorizeQuery),
    responses((status = 200, body = SeedAccessToken),
              (status = 400, body = http_kit::oauth_error::Body, description = "invalid_request (no auth_key) or invalid_grant"),
              (status = 401, body = http_kit::oauth_error::Body, description = "invalid_client"),
              (status = 403, body = http_kit::oauth_error::Body, description = "the application does not accept requests from this address"),
              (status = 429, body = http_kit::oauth_error::Body, description = "too many failed attempts: wait Retry-After seconds")))]
pub async fn seed_authorize(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<SeedAuthorizeQuery>,
) -> Result<HttpResponse, OAuthError> {
    let query = query.into_inner();
    let secret = query
        .app_secret
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_client("app_secret is required"))?;
    let client = client_auth::authenticate(&state, &req, query.app_id.as_deref(), Some(secret)).await?;
    let key = query
        .auth_key
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("auth_key is required"))?;
    let issued = redeem_code(&state, &client, key, None, None).await?;
    Ok(no_store(&SeedAccessToken {
        access_token: issued.access_token,
    }))
}
