//! Applications (OAuth2 clients), created by registration-platform users (seed 000) through a
//! JSON API or RFC 7591 dynamic registration. The secret is shown once and stored hashed.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use http_kit::{ApiError, Endpoint, Envelope};
use ids::{ClientId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::bearer::Caller;
use crate::crypto;
use crate::domain::{
    AllowedNetworks, FieldErrors, GrantType, GrantTypes, Invalid, RedirectUri, Role, Scopes, applications,
};
use crate::state::AppState;
use crate::store::ClientRow;

/// Registers this file's endpoints (`http::routes` composes every file's).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/oauth2/register").post(register).build())
        .service(Endpoint::new("/applications").post(create).get(list).build())
        .service(
            Endpoint::new("/applications/{id}")
                .get(show)
                .patch(change)
                .delete(delete)
                .build(),
        )
        .service(Endpoint::new("/applications/{id}/secret").post(rotate_secret).build());
}

/// A validated application, before it is stored.
pub struct ClientSpec {
    pub name: String,
    pub redirect_uris: Vec<RedirectUri>,
    pub grant_types: GrantTypes,
    pub scopes: Scopes,
    pub public: bool,
    pub allowed_networks: AllowedNetworks,
}

fn invalid(field: &str, reason: impl Into<String>) -> Invalid {
    Invalid::new(field, reason)
}

impl ClientSpec {
    /// Every bad field at once, the scopes' among them.
    pub fn parse(
        name: &str,
        redirect_uris: &[String],
        grant_types: &[String],
        scopes: Result<Scopes, Invalid>,
        public: bool,
        platform: &Scopes,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            errors.push(invalid("name", "1 to 100 characters"));
        }
        let parsed_uris: Vec<RedirectUri> = redirect_uris
            .iter()
            .filter_map(|u| errors.keep(RedirectUri::parse(u)))
            .collect();
        let grants = errors.keep(GrantTypes::parse_list(grant_types));
        if let Some(grants) = &grants {
            for problem in grant_problems(grants, redirect_uris.is_empty(), public) {
                errors.push(problem);
            }
        }
        let scopes = errors.keep(scopes);
        if let Some(scopes) = &scopes
            && !scopes.is_subset(platform)
        {
            errors.push(invalid("scopes", format!("must be within `{platform}`")));
        }
        match (grants, scopes) {
            (Some(grant_types), Some(scopes)) if errors.is_empty() => Ok(Self {
                name: name.to_owned(),
                redirect_uris: parsed_uris,
                grant_types,
                scopes,
                public,
                allowed_networks: AllowedNetworks::default(),
            }),
            _ => Err(errors),
        }
    }
}

/// What the grant types ask of the rest of the application.
fn grant_problems(grants: &GrantTypes, no_redirect_uris: bool, public: bool) -> Vec<Invalid> {
    let mut problems = Vec::new();
    if grants.names().is_empty() {
        problems.push(invalid("grant_types", "at least one"));
    }
    if grants.allows(GrantType::AuthorizationCode) && no_redirect_uris {
        problems.push(invalid(
            "redirect_uris",
            "authorization_code needs at least one redirect URI",
        ));
    }
    if public && grants.allows(GrantType::ClientCredentials) {
        problems.push(invalid("grant_types", "a public client cannot use client_credentials"));
    }
    problems
}

/// Stores a new client; returns it with its secret (None for public clients).
pub async fn create_client(
    state: &AppState,
    owner: &UserId,
    spec: ClientSpec,
) -> Result<(ClientRow, Option<String>), ApiError> {
    let secret = (!spec.public).then(crypto::random_secret);
    let now = storage::now_millis();
    let row = ClientRow {
        id: ClientId::mint(),
        secret_hash: secret.as_deref().map(crypto::sha256_hex),
        name: spec.name,
        owner_id: owner.clone(),
        redirect_uris: spec
            .redirect_uris
            .iter()
            .map(RedirectUri::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        grant_types: spec.grant_types.to_string(),
        scopes: spec.scopes.to_string(),
        created_at: now,
        secret_rotated_at: now,
        allowed_networks: spec.allowed_networks.to_string(),
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        first_party: false,
    };
    let row = applications::create(&state.outbox, row).await?;
    tracing::info!(client.id = %row.id, owner = %owner, "application created");
    Ok((row, secret))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewApplication {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"[^\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: String,
    /// https, or http on a loopback host, or a private-use scheme (`com.example.app:/cb`); no
    /// fragment. `authorization_code` needs at least one.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Default: client_credentials. A public client cannot use client_credentials.
    #[serde(default)]
    #[schema(value_type = Vec<crate::domain::GrantType>)]
    pub grant_types: Vec<String>,
    /// Default: none. Within the platform's scopes (`scopes_supported` of the metadata).
    #[serde(default)]
    #[schema(value_type = Vec<crate::domain::Scope>)]
    pub scopes: Vec<String>,
    /// A public client (a browser or mobile app) has no secret and must use PKCE.
    #[serde(default)]
    pub public: bool,
    /// Source networks its credentials and tokens are accepted from (CIDR or addresses,
    /// at most 50); default: any.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub allowed_networks: Vec<String>,
}

/// A change to an application.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationChange {
    /// Replaces the networks its credentials and tokens are accepted from (`[]`: any). Its
    /// tokens issued until now are revoked, so none outlives the list it was issued under.
    #[schema(max_items = 50)]
    pub allowed_networks: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationView {
    pub client_id: String,
    /// Seed 003's name for `client_id`.
    pub app_id: String,
    /// Shown only when created or rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Seed 003's name for `client_secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_secret: Option<String>,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub public: bool,
    /// Empty: any address.
    pub allowed_networks: Vec<String>,
    pub created_at: i64,
    /// Until when (ms since the epoch) the secret replaced by the last rotation still works.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<i64>,
}

impl ApplicationView {
    fn new(row: &ClientRow, secret: Option<String>) -> Self {
        let words = |s: &str| {
            s.split([' ', '\n'])
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect()
        };
        Self {
            client_id: row.id.to_string(),
            app_id: row.id.to_string(),
            client_secret: secret.clone(),
            app_secret: secret,
            name: row.name.clone(),
            redirect_uris: words(&row.redirect_uris),
            grant_types: words(&row.grant_types),
            scopes: words(&row.scopes),
            public: row.secret_hash.is_none(),
            allowed_networks: row.networks().names(),
            created_at: row.created_at,
            previous_secret_expires_at: row
                .previous_secret_expires_at
                .filter(|until| *until > storage::now_millis()),
        }
    }
}

/// Creates an application; the answer shows its secret this once.
#[utoipa::path(post, path = "/applications", operation_id = "createApplication", tag = "applications", security(("bearer" = [])), request_body = NewApplication,
    responses((status = 201, body = Envelope<ApplicationView>), (status = 403, description = "not a registration-platform user", body = http_kit::ErrorBody), (status = 422, body = http_kit::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: http_kit::Json<NewApplication>,
) -> Result<Envelope<ApplicationView>, ApiError> {
    caller.require(Role::RegistrationPlatform)?;
    let grants = if body.grant_types.is_empty() {
        vec!["client_credentials".to_owned()]
    } else {
        body.grant_types.clone()
    };
    let (allowed_networks, spec) = values::every_field!(
        allowed_networks = AllowedNetworks::parse_list(&body.allowed_networks),
        spec = ClientSpec::parse(
            &body.name,
            &body.redirect_uris,
            &grants,
            Scopes::from_list(&body.scopes),
            body.public,
            &state.platform_scopes,
        ),
    )?;
    let spec = ClientSpec {
        allowed_networks,
        ..spec
    };
    let (row, secret) = create_client(&state, &caller.user.id, spec).await?;
    Ok(Envelope::created(ApplicationView::new(&row, secret)))
}

/// The caller's applications.
#[utoipa::path(get, path = "/applications", operation_id = "listApplications", tag = "applications", security(("bearer" = [])), responses((status = 200, body = Envelope<Vec<ApplicationView>>)))]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<Envelope<Vec<ApplicationView>>, ApiError> {
    let rows = state.store.clients_of(caller.user.id.clone()).await?;
    Ok(Envelope::ok(
        rows.iter().map(|r| ApplicationView::new(r, None)).collect(),
    ))
}

async fn owned(state: &AppState, caller: &Caller, id: String) -> Result<ClientRow, ApiError> {
    let row = state.store.client(id).await?;
    // Another owner's application is reported as missing, so ids cannot be probed.
    row.filter(|r| r.owner_id == caller.user.id || caller.roles.contains(&Role::Admin))
        .ok_or_else(|| ApiError::not_found("no such application"))
}

#[utoipa::path(get, path = "/applications/{id}", params(("id" = String, Path, description = "The application's client_id")), operation_id = "getApplication", tag = "applications", security(("bearer" = [])), responses((status = 200, body = Envelope<ApplicationView>), (status = 404, body = http_kit::ErrorBody)))]
pub async fn show(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<Envelope<ApplicationView>, ApiError> {
    let row = owned(&state, &caller, id.into_inner()).await?;
    Ok(Envelope::ok(ApplicationView::new(&row, None)))
}

/// Changes an application's source networks; its tokens issued until now are revoked (they
/// carry the list they were issued under), so the change holds at once everywhere.
#[utoipa::path(patch, path = "/applications/{id}", params(("id" = String, Path, description = "The application's client_id")), operation_id = "updateApplication", tag = "applications", security(("bearer" = [])), request_body = ApplicationChange,
    responses((status = 200, body = Envelope<ApplicationView>), (status = 404, body = http_kit::ErrorBody),
              (status = 422, description = "Every entry that is not an address or a network", body = http_kit::ErrorBody)))]
pub async fn change(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: http_kit::Json<ApplicationChange>,
) -> Result<Envelope<ApplicationView>, ApiError> {
    let networks = AllowedNetworks::parse_list(&body.allowed_networks)?;
    let mut row = owned(&state, &caller, id.into_inner()).await?;
    row.allowed_networks = networks.to_string();
    applications::set_networks(
        &state.outbox,
        row.id.clone(),
        row.allowed_networks.clone(),
        state.oauth.access_token_ttl,
    )
    .await?;
    state.clients.evict(&row.id);
    tracing::info!(client.id = %row.id, networks = %row.allowed_networks, "application networks changed");
    // The revocation covers tokens issued up to this second (tokens count time in seconds):
    // answering once it is over means a token asked for after this answer is never revoked.
    let into_second = u64::try_from(storage::now_millis() % 1000).unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_millis(1000 - into_second)).await;
    Ok(Envelope::ok(ApplicationView::new(&row, None)))
}

/// How a rotation treats the secret it replaces.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRotation {
    /// Seconds the old secret keeps working beside the new one (0 to 604800, a week), so every
    /// instance of the application can switch over; default 0: it stops at once.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 604800)]
    pub overlap_seconds: i64,
}

const MAX_OVERLAP_SECS: i64 = 7 * 24 * 3600;

/// Replaces the secret; the old one keeps working for `overlap_seconds` (default: not at all).
/// The body is optional.
#[utoipa::path(post, path = "/applications/{id}/secret", params(("id" = String, Path, description = "The application's client_id")), operation_id = "rotateApplicationSecret", tag = "applications", security(("bearer" = [])), request_body(content = SecretRotation, description = "optional"),
    responses((status = 200, body = Envelope<ApplicationView>), (status = 404, body = http_kit::ErrorBody), (status = 409, description = "a public application has no secret", body = http_kit::ErrorBody), (status = 422, body = http_kit::ErrorBody)))]
pub async fn rotate_secret(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<Envelope<ApplicationView>, ApiError> {
    let rotation: SecretRotation = http_kit::extract::optional_json(&body)?;
    if !(0..=MAX_OVERLAP_SECS).contains(&rotation.overlap_seconds) {
        return Err(ApiError::invalid_field("overlap_seconds", "0 to 604800 seconds"));
    }
    let mut row = owned(&state, &caller, id.into_inner()).await?;
    if row.secret_hash.is_none() {
        return Err(ApiError::conflict("a public application has no secret"));
    }
    let secret = crypto::random_secret();
    let now = storage::now_millis();
    let until = (rotation.overlap_seconds > 0).then(|| now + rotation.overlap_seconds * 1000);
    let hash = crypto::sha256_hex(&secret);
    row.previous_secret_hash = until.and(row.secret_hash.take());
    row.previous_secret_expires_at = until;
    row.secret_hash = Some(hash.clone());
    state.store.set_client_secret(row.id.clone(), hash, now, until).await?;
    state.clients.evict(&row.id);
    tracing::info!(client.id = %row.id, overlap_seconds = rotation.overlap_seconds, "application secret rotated");
    Ok(Envelope::ok(ApplicationView::new(&row, Some(secret))))
}

/// Deletes an application and revokes its refresh tokens; its access tokens stop working
/// because introspection requires the client to exist, and `token.revoked` tells gateways.
#[utoipa::path(delete, path = "/applications/{id}", params(("id" = String, Path, description = "The application's client_id")), operation_id = "deleteApplication", tag = "applications", security(("bearer" = [])), responses((status = 204), (status = 404, body = http_kit::ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = owned(&state, &caller, id.into_inner()).await?;
    applications::delete(&state.outbox, row.id.clone(), state.oauth.access_token_ttl).await?;
    state.clients.evict(&row.id);
    tracing::info!(client.id = %row.id, "application deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// RFC 7591 client metadata.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegistrationRequest {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"[^\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub client_name: Option<String>,
    /// Default: authorization_code.
    #[schema(value_type = Option<Vec<crate::domain::GrantType>>, min_items = 1)]
    pub grant_types: Option<Vec<String>>,
    /// Default: client_secret_basic; `none` makes a public client.
    #[schema(pattern = "^(client_secret_basic|client_secret_post|none)$")]
    pub token_endpoint_auth_method: Option<String>,
    /// Space-separated scope-tokens, within the platform's.
    #[schema(pattern = r"^[\x20\x21\x23-\x5B\x5D-\x7E]*$")]
    pub scope: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationResponse {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub client_id_issued_at: i64,
    /// 0: the secret does not expire.
    pub client_secret_expires_at: i64,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub scope: String,
}

/// RFC 7591 §3.2.2 errors.
#[derive(Debug)]
pub struct RegistrationError {
    error: &'static str,
    description: String,
}

impl std::fmt::Display for RegistrationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

impl ResponseError for RegistrationError {
    fn status_code(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::BadRequest()
            .json(serde_json::json!({ "error": self.error, "error_description": self.description }))
    }
}

impl From<FieldErrors> for RegistrationError {
    /// RFC 7591 §3.2.2 answers one error code; a bad redirect URI has its own.
    fn from(errors: FieldErrors) -> Self {
        let error = if errors.iter().any(|e| e.field.starts_with("redirect_uris")) {
            "invalid_redirect_uri"
        } else {
            "invalid_client_metadata"
        };
        Self {
            error,
            description: errors.to_string(),
        }
    }
}

/// RFC 7591 dynamic client registration, for registration-platform users' bearer tokens.
#[utoipa::path(post, path = "/oauth2/register", operation_id = "registerClient", tag = "oauth2", security(("bearer" = [])), request_body = RegistrationRequest,
    responses((status = 201, body = RegistrationResponse), (status = 400, description = "invalid_redirect_uri or invalid_client_metadata"), (status = 401, body = http_kit::ErrorBody), (status = 403, body = http_kit::ErrorBody)))]
pub async fn register(
    state: web::Data<AppState>,
    caller: Caller,
    body: http_kit::Json<RegistrationRequest>,
) -> Result<HttpResponse, actix_web::Error> {
    caller.require(Role::RegistrationPlatform)?;
    let method = body
        .token_endpoint_auth_method
        .clone()
        .unwrap_or_else(|| "client_secret_basic".to_owned());
    let public = match method.as_str() {
        "client_secret_basic" | "client_secret_post" => false,
        "none" => true,
        other => {
            return Err(RegistrationError {
                error: "invalid_client_metadata",
                description: format!(
                    "token_endpoint_auth_method `{}` is not supported",
                    http_kit::extract::excerpt(other)
                ),
            }
            .into());
        }
    };
    let grants = body
        .grant_types
        .clone()
        .unwrap_or_else(|| vec!["authorization_code".to_owned()]);
    let name = body
        .client_name
        .clone()
        .unwrap_or_else(|| "Unnamed application".to_owned());
    let spec = ClientSpec::parse(
        &name,
        &body.redirect_uris,
        &grants,
        Scopes::parse(body.scope.as_deref().unwrap_or("")),
        public,
        &state.platform_scopes,
    )
    .map_err(RegistrationError::from)?;
    let (row, secret) = create_client(&state, &caller.user.id, spec).await?;
    let view = ApplicationView::new(&row, None);
    Ok(HttpResponse::Created()
        .insert_header(("cache-control", "no-store"))
        .json(RegistrationResponse {
            client_id: row.id.into_string(),
            client_secret: secret,
            client_id_issued_at: row.created_at / 1000,
            client_secret_expires_at: 0,
            client_name: row.name,
            redirect_uris: view.redirect_uris,
            grant_types: view.grant_types,
            token_endpoint_auth_method: method,
            scope: row.scopes,
        }))
}
