//! Values parsed once at the edge, and the operations that change what is delivered.

pub mod event_types;
pub mod fanout;
pub mod schedule;
pub mod sealing;
pub use webhook_signatures as signing;

use std::collections::BTreeMap;

use http_kit::extract::excerpt;
use values::{FieldErrors, Invalid};

use crate::guard::Guard;

/// `ep_` and a UUIDv7: the id of an endpoint.
pub fn new_endpoint_id() -> String {
    format!("ep_{}", uuid::Uuid::now_v7().simple())
}

/// `msg_` and a UUIDv7: the `webhook-id` every attempt of a message carries.
pub fn new_message_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

pub const MAX_URL: usize = 2048;
pub const MAX_DESCRIPTION: usize = 500;
pub const MAX_HEADERS: usize = 20;
pub const MAX_RATE: i32 = 10_000;

/// An endpoint's URL: absolute, http(s), and somewhere the guard admits.
pub async fn parse_url(raw: &str, guard: &Guard) -> Result<url::Url, Invalid> {
    if raw.len() > MAX_URL {
        return Err(Invalid::new("url", format!("at most {MAX_URL} characters")));
    }
    let url = url::Url::parse(raw).map_err(|e| Invalid::new("url", format!("not an absolute URL: {e}")))?;
    guard
        .resolve(&url)
        .await
        .map_err(|refusal| Invalid::new("url", refusal.to_string()))?;
    Ok(url)
}

/// The types an endpoint receives: each one offered; none means all of them.
pub fn parse_event_types(raw: &[String]) -> Result<String, Invalid> {
    let mut names: Vec<&str> = Vec::with_capacity(raw.len());
    for name in raw {
        if event_types::find(name).is_none() {
            return Err(Invalid::new(
                "event_types",
                format!(
                    "`{}` is not an event type offered (GET /webhooks/event-types)",
                    excerpt(name)
                ),
            ));
        }
        names.push(name);
    }
    names.sort_unstable();
    names.dedup();
    Ok(names.join(" "))
}

pub fn parse_description(raw: &str) -> Result<String, Invalid> {
    if raw.chars().count() > MAX_DESCRIPTION {
        return Err(Invalid::new(
            "description",
            format!("at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(raw.to_owned())
}

pub fn parse_rate_limit(raw: Option<i64>) -> Result<Option<i32>, Invalid> {
    match raw {
        None => Ok(None),
        Some(n) if (1..=i64::from(MAX_RATE)).contains(&n) => Ok(i32::try_from(n).ok()),
        Some(_) => Err(Invalid::new(
            "rate_limit",
            format!("deliveries per second, 1 to {MAX_RATE}"),
        )),
    }
}

/// Headers every attempt sets itself, or that would change how the request travels.
const RESERVED: [&str; 10] = [
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "authorization-internal",
];

/// Extra request headers: valid names (not ours) and visible-ASCII values; stored as JSON.
pub fn parse_headers(raw: &BTreeMap<String, String>) -> Result<String, Invalid> {
    if raw.len() > MAX_HEADERS {
        return Err(Invalid::new("headers", format!("at most {MAX_HEADERS}")));
    }
    let mut lowered = BTreeMap::new();
    for (name, value) in raw {
        let key = name.to_ascii_lowercase();
        let field = format!("headers.{name}");
        if reqwest::header::HeaderName::from_bytes(key.as_bytes()).is_err()
            || RESERVED.contains(&key.as_str())
            || key.starts_with("x-auth-")
        {
            return Err(Invalid::new(field, "not a header name an endpoint may set"));
        }
        if value.len() > 1000
            || reqwest::header::HeaderValue::from_str(value).is_err()
            || value.chars().any(|c| !(' '..='~').contains(&c))
        {
            return Err(Invalid::new(field, "a value of at most 1000 visible ASCII characters"));
        }
        lowered.insert(key, value.clone());
    }
    serde_json::to_string(&lowered).map_err(|e| Invalid::new("headers", e.to_string()))
}

/// The fields of an endpoint as a request sets them (a creation, or a change merged over the
/// stored ones), every bad one reported.
pub struct EndpointFields {
    pub url: String,
    pub description: String,
    pub event_types: String,
    pub rate_limit: Option<i32>,
    pub headers: String,
}

pub struct RawFields<'a> {
    pub url: &'a str,
    pub description: &'a str,
    pub event_types: &'a [String],
    pub rate_limit: Option<i64>,
    pub headers: &'a BTreeMap<String, String>,
}

impl EndpointFields {
    pub async fn parse(raw: RawFields<'_>, guard: &Guard) -> Result<Self, FieldErrors> {
        let url = parse_url(raw.url, guard).await;
        let (url, description, event_types, rate_limit, headers) = values::every_field!(
            url = url,
            description = parse_description(raw.description),
            event_types = parse_event_types(raw.event_types),
            rate_limit = parse_rate_limit(raw.rate_limit),
            headers = parse_headers(raw.headers),
        )?;
        Ok(Self {
            url: url.to_string(),
            description,
            event_types,
            rate_limit,
            headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_refuse_what_an_attempt_could_not_send() {
        assert!(parse_event_types(&["user.updated".into(), "user.updated".into()]).is_ok_and(|t| t == "user.updated"));
        assert!(parse_event_types(&["token.revoked".into()]).is_err(), "internal");
        assert_eq!(parse_rate_limit(Some(0)).unwrap_err().field, "rate_limit");
        assert_eq!(parse_rate_limit(Some(5)), Ok(Some(5)));
        let headers = |pairs: &[(&str, &str)]| {
            parse_headers(&pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
        };
        assert_eq!(
            headers(&[("X-Partner", "a b")]),
            Ok(r#"{"x-partner":"a b"}"#.to_owned())
        );
        for bad in [
            ("webhook-signature", "x"),
            ("Host", "x"),
            ("bad name", "x"),
            ("x-ok", "line\nbreak"),
            ("x-auth-user", "u"),
        ] {
            assert!(headers(&[bad]).is_err(), "{bad:?}");
        }
        assert!(parse_description(&"é".repeat(501)).is_err());
    }
}
