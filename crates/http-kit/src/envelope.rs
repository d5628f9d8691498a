use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, Responder};
use serde::Serialize;
use utoipa::ToSchema;

/// Seed 001's success document: `{"success": true, "code", "message", "data"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    pub success: bool,
    /// A stable, machine-readable code (`ok`, `created`).
    pub code: String,
    /// A message that can be shown to the application's user.
    pub message: String,
    pub data: T,
    #[serde(skip)]
    status: StatusCode,
}

impl<T: Serialize> Envelope<T> {
    pub fn ok(data: T) -> Self {
        Self::with_status(StatusCode::OK, "ok", "OK", data)
    }

    pub fn created(data: T) -> Self {
        Self::with_status(StatusCode::CREATED, "created", "Created", data)
    }

    pub fn with_status(status: StatusCode, code: &str, message: &str, data: T) -> Self {
        Self {
            success: true,
            code: code.to_owned(),
            message: message.to_owned(),
            data,
            status,
        }
    }

    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }
}

impl<T: Serialize> Responder for Envelope<T> {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        HttpResponse::build(self.status).json(&self)
    }
}
