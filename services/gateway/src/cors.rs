//! CORS for browser-based partners: origins from configuration, preflights answered by the
//! gateway itself (they carry no token), and the response headers browsers need.

use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct CorsSettings {
    /// Origins allowed to call from a browser (`https://app.example.com`), or `["*"]`; empty
    /// turns CORS off.
    pub allowed_origins: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub exposed_headers: Vec<String>,
    pub max_age: settings::Span,
}

impl CorsSettings {
    fn allowed(&self, req: &HttpRequest) -> Option<HeaderValue> {
        let origin = req.headers().get(header::ORIGIN)?;
        let origin_str = origin.to_str().ok()?;
        self.allowed_origins
            .iter()
            .any(|o| o == "*" || o == origin_str)
            .then(|| origin.clone())
    }

    /// The answer to a preflight request, if this is one.
    pub fn preflight(&self, req: &HttpRequest) -> Option<HttpResponse> {
        if req.method() != actix_web::http::Method::OPTIONS
            || !req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let mut response = HttpResponse::NoContent();
        response.insert_header((header::VARY, "Origin"));
        if let Some(origin) = self.allowed(req) {
            response
                .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
                .insert_header((
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    "GET, POST, PUT, PATCH, DELETE, OPTIONS",
                ))
                .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, self.allowed_headers.join(", ")))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, self.max_age.0.as_secs()));
        }
        Some(response.finish())
    }

    /// Adds the CORS fields to any response (forwarded, or the gateway's own error) to an
    /// allowed origin.
    pub fn decorate(&self, req: &HttpRequest, headers: &mut HeaderMap) {
        let Some(origin) = self.allowed(req) else { return };
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        if let Ok(exposed) = HeaderValue::from_str(&self.exposed_headers.join(", "))
            && !self.exposed_headers.is_empty()
        {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, exposed);
        }
    }
}
