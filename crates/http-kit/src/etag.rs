//! Optimistic concurrency with entity tags (RFC 9110 §13): a resource's version is its ETag;
//! `If-Match` makes a change conditional on it, `If-None-Match` saves re-sending it.

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderValue};

use crate::ApiError;

/// The strong ETag of a resource at `version`: `"v7"`.
pub fn of(version: i64) -> String {
    format!("\"v{version}\"")
}

fn listed(value: &HeaderValue, etag: &str) -> bool {
    value.to_str().is_ok_and(|v| {
        v.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == etag)
    })
}

/// The version `If-Match` names, when the request has one: `Some(v)` for `"v<v>"`. A tag
/// this server never issued names no version (the change then fails with 412).
pub fn if_match(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::bad_request("If-Match is not readable"))?
        .trim();
    if value == "*" {
        return Ok(None);
    }
    Ok(Some(
        value
            .strip_prefix("\"v")
            .and_then(|v| v.strip_suffix('"'))
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1),
    ))
}

/// Whether `If-None-Match` lists `etag` (the answer is then 304 Not Modified).
pub fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .any(|value| listed(value, etag))
}

/// 412 when `If-Match` named another version than `current`.
pub fn check(expected: Option<i64>, current: i64) -> Result<(), ApiError> {
    match expected {
        Some(v) if v != current => Err(ApiError::new(crate::ErrorKind::PreconditionFailed).debug(format!(
            "If-Match names version {v}; the resource is at version {current} (ETag {})",
            of(current)
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn tags_round_trip_and_mismatches_fail() {
        let req = TestRequest::default()
            .insert_header((header::IF_MATCH, of(3)))
            .to_http_request();
        assert_eq!(if_match(&req).ok().flatten(), Some(3));
        assert!(check(Some(3), 3).is_ok() && check(Some(3), 4).is_err() && check(None, 4).is_ok());
        let foreign = TestRequest::default()
            .insert_header((header::IF_MATCH, "\"abc\""))
            .to_http_request();
        assert_eq!(if_match(&foreign).ok().flatten(), Some(-1));
        let star = TestRequest::default()
            .insert_header((header::IF_MATCH, "*"))
            .to_http_request();
        assert_eq!(if_match(&star).ok().flatten(), None);
        let cached = TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, "\"v1\", W/\"v2\""))
            .to_http_request();
        assert!(not_modified(&cached, &of(2)) && !not_modified(&cached, &of(3)));
    }
}
