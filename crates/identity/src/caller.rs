//! The receiving end, for services behind the gateway: `[identity]` settings and the
//! [`Caller`] extractor that admits a request only with a valid, fresh signature.

use std::future::{Ready, ready};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, web};
use http_kit::ApiError;
use ids::UserId;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use settings::Span;

use crate::{Identity, IdentityError, now_secs, verify};

/// `[identity]`: the secret the gateway signs with, and how old a signature may be.
#[derive(Debug, Clone, Deserialize)]
pub struct IdentitySettings {
    pub secret: SecretString,
    /// Seconds a signature stays valid: covers clock skew between pods, not replays (the
    /// signature is bound to the request id).
    #[serde(default = "default_max_age")]
    pub max_age: Span,
}

fn default_max_age() -> Span {
    Span::from_secs(60)
}

impl IdentitySettings {
    pub fn validate(&self) -> Result<(), settings::SettingsError> {
        if self.secret.expose_secret().len() < 16 {
            return Err(settings::rule("identity.secret", "must be at least 16 characters"));
        }
        if self.max_age.0.is_zero() {
            return Err(settings::rule("identity.max_age", "must be more than 0"));
        }
        Ok(())
    }
}

/// The caller of a service behind the gateway. Register the settings as app data
/// (`web::Data<IdentitySettings>`); a handler taking a `Caller` runs only for requests the
/// gateway signed.
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

impl Caller {
    /// The caller of `req`, as the extractor finds it: 401 unless signed and fresh.
    pub fn of(req: &HttpRequest) -> Result<Self, ApiError> {
        admit(req)
    }

    /// 403 with RFC 6750's `insufficient_scope` unless the token holds `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<(), ApiError> {
        if self.0.has_scope(scope) {
            return Ok(());
        }
        let challenge = format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"");
        Err(ApiError::forbidden(format!("this token lacks the `{scope}` scope"))
            .code("insufficient_scope")
            .header(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_str(&challenge).unwrap_or(HeaderValue::from_static("Bearer")),
            ))
    }

    /// The user the token acts for; 403 for a client's own (client_credentials) token.
    pub fn user(&self) -> Result<&UserId, ApiError> {
        self.0
            .user
            .as_ref()
            .ok_or_else(|| ApiError::forbidden("this token acts for an application, not a user"))
    }

    pub fn username(&self) -> &str {
        self.0.username.as_deref().unwrap_or(self.0.subject())
    }
}

pub(crate) fn admit(req: &HttpRequest) -> Result<Caller, ApiError> {
    let settings = req
        .app_data::<web::Data<IdentitySettings>>()
        .ok_or_else(|| ApiError::internal(std::io::Error::other("identity settings not registered")))?;
    let headers = req.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let request_id = header("x-request-id").unwrap_or_default();
    verify(
        header,
        settings.secret.expose_secret().as_bytes(),
        request_id,
        now_secs(),
        settings.max_age.0,
    )
    .map(Caller)
    .map_err(|error| {
        let status = match error {
            IdentityError::Missing => "call this API through the gateway, with a bearer token",
            IdentityError::BadSignature | IdentityError::Stale => "the request's identity could not be verified",
        };
        ApiError::unauthorized(status).header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    })
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(admit(req))
    }
}
