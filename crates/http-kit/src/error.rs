use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// Seed 001's error document. 5xx bodies say nothing of the cause; it is logged instead.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// Always false.
    pub success: bool,
    /// A stable, machine-readable code (`not_found`, `validation_failed`; `9999` for internal errors).
    pub code: String,
    /// A message that can be shown to the application's user.
    pub message: String,
    /// Details for the partner's developer: which field, which constraint.
    pub debug_message: Option<String>,
    /// Where to read more, when there is somewhere.
    pub more_info: Option<String>,
    /// On 422: every field that did not parse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<values::Invalid>>,
}

/// What went wrong, from the client's side of the table (seed 004's status codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PreconditionFailed,
    RequestTimeout,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unprocessable,
    TooManyRequests,
    Internal,
    BadGateway,
    Unavailable,
    GatewayTimeout,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict => "conflict",
            Self::PreconditionFailed => "precondition_failed",
            Self::RequestTimeout => "request_timeout",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Unprocessable => "validation_failed",
            Self::TooManyRequests => "too_many_requests",
            // Seed 001 gives 9999 for system errors.
            Self::Internal => "9999",
            Self::BadGateway => "bad_gateway",
            Self::Unavailable => "service_unavailable",
            Self::GatewayTimeout => "gateway_timeout",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::BadRequest => "The request is not valid.",
            Self::Unauthorized => "Authentication is required.",
            Self::Forbidden => "You are not allowed to do this.",
            Self::NotFound => "Not found.",
            Self::MethodNotAllowed => "This method is not allowed here.",
            Self::Conflict => "This conflicts with an existing resource.",
            Self::PreconditionFailed => "The resource changed since you read it.",
            Self::RequestTimeout => "The request body did not arrive in time.",
            Self::PayloadTooLarge => "The request body is too large.",
            Self::UnsupportedMediaType => "This content type is not supported.",
            Self::Unprocessable => "A field is not valid.",
            Self::TooManyRequests => "Too many requests; try again later.",
            Self::Internal => "Something went wrong on our side.",
            Self::BadGateway => "An upstream service failed.",
            Self::Unavailable => "The service is temporarily unavailable.",
            Self::GatewayTimeout => "An upstream service did not answer in time.",
        }
    }

    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::Unauthorized,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            409 => Self::Conflict,
            412 => Self::PreconditionFailed,
            408 => Self::RequestTimeout,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            422 => Self::Unprocessable,
            429 => Self::TooManyRequests,
            502 => Self::BadGateway,
            503 => Self::Unavailable,
            504 => Self::GatewayTimeout,
            400..=499 => Self::BadRequest,
            _ => Self::Internal,
        }
    }
}

/// A failure with everything needed to answer it. Build one with the constructors; 5xx causes
/// are logged once, with the request's span, when the response is made.
#[derive(Debug)]
pub struct ApiError(Box<Inner>);

// Boxed: handlers return `Result<_, ApiError>` everywhere, and the Ok path should stay small.
#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    code: Cow<'static, str>,
    message: Cow<'static, str>,
    debug: Option<String>,
    more_info: Option<String>,
    fields: Option<Vec<values::Invalid>>,
    headers: Vec<(HeaderName, HeaderValue)>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.code, self.0.message)?;
        if let Some(debug) = &self.0.debug {
            write!(f, " ({debug})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl ApiError {
    pub fn new(kind: ErrorKind) -> Self {
        Self(Box::new(Inner {
            kind,
            code: Cow::Borrowed(kind.code()),
            message: Cow::Borrowed(kind.message()),
            debug: None,
            more_info: None,
            fields: None,
            headers: Vec::new(),
            source: None,
        }))
    }

    pub fn code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.0.code = code.into();
        self
    }

    pub fn message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.0.message = message.into();
        self
    }

    /// Details for the developer; never shown on a 5xx.
    pub fn debug(mut self, debug: impl Into<String>) -> Self {
        self.0.debug = Some(debug.into());
        self
    }

    pub fn more_info(mut self, more_info: impl Into<String>) -> Self {
        self.0.more_info = Some(more_info.into());
        self
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.push((name, value));
        self
    }

    pub fn bad_request(debug: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest).debug(debug)
    }

    pub fn unauthorized(debug: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized).debug(debug)
    }

    pub fn forbidden(debug: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden).debug(debug)
    }

    pub fn not_found(debug: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound).debug(debug)
    }

    pub fn conflict(debug: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict).debug(debug)
    }

    /// A field that parsed but is not acceptable; the field is named in `debugMessage`.
    pub fn invalid_field(field: &str, reason: impl std::fmt::Display) -> Self {
        values::Invalid::new(field, reason.to_string()).into()
    }

    /// 405 with the `Allow` header seed 004 requires.
    pub fn method_not_allowed(allow: &[&str]) -> Self {
        let allow = allow.join(", ");
        let error = Self::new(ErrorKind::MethodNotAllowed).debug(format!("allowed: {allow}"));
        match HeaderValue::from_str(&allow) {
            Ok(value) => error.header(header::ALLOW, value),
            Err(_) => error,
        }
    }

    /// 429 with `Retry-After` in whole seconds, rounded up.
    pub fn too_many_requests(retry_after: std::time::Duration) -> Self {
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        Self::new(ErrorKind::TooManyRequests).header(header::RETRY_AFTER, HeaderValue::from(secs.max(1)))
    }

    pub fn unavailable(debug: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable).debug(debug)
    }

    /// An internal failure: the client learns nothing of it, the log learns everything.
    pub fn internal(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        let mut error = Self::new(ErrorKind::Internal);
        error.0.source = Some(Box::new(source));
        error
    }

    pub fn body(&self) -> ErrorBody {
        let server_side = self.0.kind.status().is_server_error();
        ErrorBody {
            success: false,
            code: self.0.code.clone().into_owned(),
            message: self.0.message.clone().into_owned(),
            debug_message: if server_side { None } else { self.0.debug.clone() },
            more_info: self.0.more_info.clone(),
            errors: self.0.fields.clone(),
        }
    }

    fn log(&self) {
        if !self.0.kind.status().is_server_error() {
            return;
        }
        let mut chain = self.0.debug.clone().unwrap_or_default();
        let mut cause = self
            .0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static));
        while let Some(error) = cause {
            chain.push_str(if chain.is_empty() { "" } else { ": " });
            chain.push_str(&error.to_string());
            cause = error.source();
        }
        tracing::error!(error.code = %self.0.code, error.cause = %chain, status = self.0.kind.status().as_u16(), "request failed");
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        let mut response = HttpResponse::build(self.0.kind.status());
        for (name, value) in &self.0.headers {
            response.insert_header((name.clone(), value.clone()));
        }
        response.json(self.body())
    }
}

/// 422 listing every bad field; `debugMessage` joins them (`title: …; content: …`).
impl From<values::FieldErrors> for ApiError {
    fn from(errors: values::FieldErrors) -> Self {
        let mut error = Self::new(ErrorKind::Unprocessable).debug(errors.to_string());
        error.0.fields = Some(errors.iter().cloned().collect());
        error
    }
}

impl ApiError {
    /// 400 listing every bad field, for the APIs whose seed answers validation with 400
    /// (seed 004's services API) rather than 422.
    pub fn bad_fields(errors: values::FieldErrors) -> Self {
        let mut error = Self::from(errors);
        error.0.kind = ErrorKind::BadRequest;
        error
    }
}

impl From<values::Invalid> for ApiError {
    fn from(error: values::Invalid) -> Self {
        values::FieldErrors::from(error).into()
    }
}

impl From<storage::StorageError> for ApiError {
    fn from(error: storage::StorageError) -> Self {
        use storage::StorageError as E;
        match error {
            E::NotFound => Self::new(ErrorKind::NotFound),
            E::Conflict(_) => Self::new(ErrorKind::Conflict),
            E::Unavailable(_) => {
                let mut e = Self::new(ErrorKind::Unavailable).debug("database unavailable");
                e.0.source = Some(Box::new(error));
                e
            }
            other => Self::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause() {
        let error = ApiError::internal(std::io::Error::other("disk on fire at /var/lib/secret"));
        let body = serde_json::to_value(error.body()).unwrap_or_default();
        assert_eq!(body["code"], "9999");
        assert_eq!(body["debugMessage"], serde_json::Value::Null);
        assert!(!body.to_string().contains("secret"));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let response = ApiError::too_many_requests(std::time::Duration::from_millis(1500)).error_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("2")
        );
    }

    #[test]
    fn every_status_maps_back_to_its_kind() {
        for kind in [
            ErrorKind::BadRequest,
            ErrorKind::Unauthorized,
            ErrorKind::Forbidden,
            ErrorKind::NotFound,
            ErrorKind::MethodNotAllowed,
            ErrorKind::Conflict,
            ErrorKind::PreconditionFailed,
            ErrorKind::RequestTimeout,
            ErrorKind::PayloadTooLarge,
            ErrorKind::UnsupportedMediaType,
            ErrorKind::Unprocessable,
            ErrorKind::TooManyRequests,
            ErrorKind::Internal,
            ErrorKind::BadGateway,
            ErrorKind::Unavailable,
            ErrorKind::GatewayTimeout,
        ] {
            assert_eq!(ErrorKind::from_status(kind.status()), kind);
        }
    }
}
