//! Extractor settings whose failures answer in the envelope, and a catch-all for every other
//! error response actix would otherwise send as plain text.

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError, UrlencodedError};
use actix_web::http::header;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{FromRequest, HttpRequest, ResponseError, web};

use crate::{ApiError, ErrorKind};

pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|e, _| json_error(e).into())
}

pub fn form_config(limit: usize) -> web::FormConfig {
    web::FormConfig::default()
        .limit(limit)
        .error_handler(|e, _| form_error(e).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|e, _| query_error(e).into())
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|e, _| path_error(e).into())
}

pub fn payload_config(limit: usize) -> web::PayloadConfig {
    web::PayloadConfig::new(limit)
}

fn json_error(error: JsonPayloadError) -> ApiError {
    match error {
        JsonPayloadError::OverflowKnownLength { length, limit } => {
            ApiError::new(ErrorKind::PayloadTooLarge).debug(format!("body is {length} bytes; the limit is {limit}"))
        }
        JsonPayloadError::Overflow { limit } => {
            ApiError::new(ErrorKind::PayloadTooLarge).debug(format!("body exceeds the limit of {limit} bytes"))
        }
        JsonPayloadError::ContentType => {
            ApiError::new(ErrorKind::UnsupportedMediaType).debug("send the body as application/json")
        }
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            ApiError::new(ErrorKind::Unprocessable).debug(bounded(e.to_string()))
        }
        JsonPayloadError::Deserialize(e) => ApiError::new(ErrorKind::BadRequest)
            .code("malformed_json")
            .debug(bounded(e.to_string())),
        other => ApiError::new(ErrorKind::BadRequest).debug(bounded(other.to_string())),
    }
}

/// An optional JSON body read from the raw bytes: empty means `T::default()`; errors answer as
/// the `Json` extractor's do (400 `malformed_json`, 422 for a well-formed body of wrong shape).
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value = serde_json::from_slice(body).map_err(|e| json_error(JsonPayloadError::Deserialize(e)))?;
    from_json(value)
}

/// `T` from a JSON document already read, integers written as floats taken for integers.
fn from_json<T: serde::de::DeserializeOwned>(mut value: serde_json::Value) -> Result<T, ApiError> {
    integral_numbers(&mut value);
    serde_json::from_value(value).map_err(|e| json_error(JsonPayloadError::Deserialize(e)))
}

fn form_error(error: UrlencodedError) -> ApiError {
    match error {
        UrlencodedError::Overflow { size, limit } => {
            ApiError::new(ErrorKind::PayloadTooLarge).debug(format!("body is {size} bytes; the limit is {limit}"))
        }
        UrlencodedError::ContentType => {
            ApiError::new(ErrorKind::UnsupportedMediaType).debug("send the body as application/x-www-form-urlencoded")
        }
        other => ApiError::new(ErrorKind::BadRequest).debug(bounded(other.to_string())),
    }
}

fn query_error(error: QueryPayloadError) -> ApiError {
    ApiError::new(ErrorKind::BadRequest)
        .code("invalid_query")
        .debug(bounded(error.to_string()))
}

fn path_error(error: PathError) -> ApiError {
    ApiError::new(ErrorKind::NotFound).debug(bounded(error.to_string()))
}

/// A parser's message with its middle cut out past 230 characters: serde quotes the value it
/// refused, which may be most of the body, and the message's end says what was expected.
fn bounded(message: String) -> String {
    cut(&message, 150, 80).into_owned()
}

/// `text`, or its first `head` and last `tail` characters around `…` when it is longer.
fn cut(text: &str, head: usize, tail: usize) -> std::borrow::Cow<'_, str> {
    let count = text.chars().count();
    if count <= head + tail {
        return text.into();
    }
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(count - tail).collect();
    format!("{start}…{end}").into()
}

/// Any 4xx/5xx that is neither JSON nor a deliberate HTML page (unknown route, payload errors
/// raised inside actix, a panic caught by the server) becomes the error envelope, keeping `Allow`, `Retry-After` and
/// `WWW-Authenticate`.
pub fn catch_all<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(to_envelope)
}

fn to_envelope<B: MessageBody + 'static>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    // JSON errors are ours already; HTML ones are pages a service renders on purpose (login).
    let deliberate = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html"));
    if deliberate {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let mut error = ApiError::new(ErrorKind::from_status(status));
    if let Some(cause) = res.response().error() {
        error = error.debug(cause.to_string());
    }
    let (req, old) = res.into_parts();
    let mut response = error.error_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = old.headers().get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, response).map_into_right_body(),
    ))
}

/// The default service: every path no route matches.
pub async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        excerpt(req.path())
    )))
}

/// At most the first 100 characters of what a client sent, for an error message: an answer
/// never grows with the request.
pub fn excerpt(text: &str) -> std::borrow::Cow<'_, str> {
    cut(text, 100, 0)
}

/// A JSON body, read as `web::Json` reads it (the limit, the content type, the same errors),
/// except that a number written with a zero fraction (`3.0`) counts as the integer it equals:
/// JSON Schema says it is one, and clients that print every number as a float send it so.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let read = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let web::Json(value) = read.await?;
            from_json(value).map(Json).map_err(Into::into)
        })
    }
}

/// Every number of `value` that is an integer written as a float, made an integer.
fn integral_numbers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) => {
            if let Some(f) = n
                .as_f64()
                .filter(|f| n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15)
            {
                #[allow(clippy::cast_possible_truncation)]
                let integer = f as i64;
                *value = Value::from(integer);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(fields) => fields.values_mut().for_each(integral_numbers),
        _ => {}
    }
}
