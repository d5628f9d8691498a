//! RFC 6749 §5.2 errors for the OAuth endpoints, which off-the-shelf clients parse:
//! `{"error": "...", "error_description": "..."}`, never cached.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use storage::StorageError;

#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    retry_after: Option<u64>,
}

/// RFC 6749 §5.2's error document.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OAuthErrorBody)]
pub struct Body<'a> {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope`, `slow_down`, `temporarily_unavailable`, …
    error: &'a str,
    error_description: &'a str,
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            retry_after: None,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 401 with `WWW-Authenticate`, as RFC 6749 §5.2 requires for failed client authentication.
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", description)
    }

    pub fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", description)
    }

    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    pub fn unsupported_token_type(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_token_type", description)
    }

    /// 403: the credentials are right, but the application does not accept this address.
    pub fn address_not_allowed() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "access_denied",
            "this application does not accept requests from this address",
        )
    }

    pub fn too_many_attempts(retry_after: std::time::Duration) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "slow_down",
            "too many failed attempts; try again later",
        );
        e.retry_after = Some((retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)).max(1));
        e
    }

    /// Seconds to wait before trying again, for answers that carry `Retry-After`.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    pub fn temporarily_unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error.cause = %cause, "a dependency is unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "try again shortly",
        )
    }

    pub fn server_error(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error.cause = %cause, "OAuth endpoint failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the authorization server failed; try again",
        )
    }

    pub fn error_code(&self) -> &'static str {
        self.error
    }
}

impl From<StorageError> for OAuthError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Unavailable(_) => Self::temporarily_unavailable(error),
            other => Self::server_error(other),
        }
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"oauth\", charset=\"UTF-8\""),
            ));
        }
        if let Some(secs) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, secs));
        }
        response.json(Body {
            error: self.error,
            error_description: &self.description,
        })
    }
}
