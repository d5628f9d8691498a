//! The one mapping from what went wrong to what the person sees: a page in words (never a JSON
//! envelope), or the way back to signing in.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};

use crate::views;

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// No session, or it ended: sign in, then come back here.
    #[error("sign in to continue")]
    SignIn { return_to: String },
    /// The platform refused the session's token (revoked, or its user gone).
    #[error("the platform refused this session")]
    TokenRefused,
    /// A form posted without this session's CSRF token.
    #[error("the form expired or was not sent from the portal")]
    Csrf,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The platform answered something the portal cannot show as a field error.
    #[error("{message}")]
    Refused { status: StatusCode, message: String },
    #[error("the platform is unavailable: {0}")]
    Unavailable(String),
}

impl PortalError {
    pub fn unavailable(error: impl std::fmt::Display) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl From<storage::StorageError> for PortalError {
    fn from(error: storage::StorageError) -> Self {
        Self::unavailable(error)
    }
}

impl ResponseError for PortalError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn { .. } => StatusCode::SEE_OTHER,
            Self::TokenRefused => StatusCode::UNAUTHORIZED,
            Self::Csrf | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Refused { status, .. } => *status,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::SignIn { return_to } => {
                let query = serde_urlencoded::to_string([("return_to", return_to)]).unwrap_or_default();
                HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, format!("/portal/sign-in?{query}")))
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .finish()
            }
            Self::Unavailable(cause) => {
                tracing::warn!(%cause, "the platform is unavailable");
                views::error_page(
                    self.status_code(),
                    "The platform did not answer in time. Reload the page to see whether it was done, and try again if not.",
                )
            }
            Self::TokenRefused => views::bare(
                self.status_code(),
                "Session ended",
                maud::html! {
                    h1 { "Your session ended" }
                    p.notice.error role="alert" { "The platform no longer accepts this session. Sign in again to continue." }
                    p { a.button href="/portal/sign-in" { "Sign in again" } }
                },
            ),
            Self::Csrf => views::error_page(
                self.status_code(),
                "This form expired or was not sent from the portal. Go back, reload the page and try again.",
            ),
            other => views::error_page(other.status_code(), &other.to_string()),
        }
    }
}
