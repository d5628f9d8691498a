//! Optimistic concurrency with entity tags (RFC 9110 §8.8.3, §13): `If-Match` makes a change
//! conditional on the representation the client read, `If-None-Match` saves re-sending it.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName};
use actix_web::{HttpRequest, HttpResponse};

use crate::{ApiError, ErrorKind};

/// The strong entity tag of a representation: the resource's `version`, and a fingerprint of
/// what it shows from elsewhere (an author's name kept by another table), so that the tag
/// changes whenever the representation does. `"v7"`, or `"v7-<16 hex digits>"`.
pub fn tag(version: i64, shown: &[&str]) -> String {
    if shown.is_empty() {
        return format!("\"v{version}\"");
    }
    // FNV-1a: stable across processes and releases, unlike the standard library's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in shown {
        for byte in part.as_bytes().iter().chain([0xff].iter()) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("\"v{version}-{hash:016x}\"")
}

/// The tags a precondition header lists (`*` included), each with whether it is weak.
fn listed<'a>(req: &'a HttpRequest, name: &HeaderName) -> impl Iterator<Item = (bool, &'a str)> {
    req.headers()
        .get_all(name)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| match t.strip_prefix("W/") {
            Some(opaque) => (true, opaque),
            None => (false, t),
        })
}

pub fn has_if_match(req: &HttpRequest) -> bool {
    req.headers().contains_key(header::IF_MATCH)
}

/// 412 unless `If-Match` is absent, `*`, or lists `current` (strong comparison: a weak tag
/// never matches).
pub fn if_match(req: &HttpRequest, current: &str) -> Result<(), ApiError> {
    if !has_if_match(req) {
        return Ok(());
    }
    if listed(req, &header::IF_MATCH).any(|(weak, t)| t == "*" || (!weak && t == current)) {
        return Ok(());
    }
    Err(ApiError::new(ErrorKind::PreconditionFailed).debug(format!(
        "If-Match does not name the current representation (ETag {current}); read it again"
    )))
}

/// Whether `If-None-Match` lists `current` (weak comparison): the answer is then 304.
pub fn not_modified(req: &HttpRequest, current: &str) -> bool {
    listed(req, &header::IF_NONE_MATCH).any(|(_, t)| t == "*" || t == current)
}

/// The envelope of `data`, with its entity tag.
pub fn tagged<T: serde::Serialize>(status: StatusCode, data: T, tag: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, tag))
        .json(crate::Envelope::with_status(status, "ok", "OK", data))
}

/// 304 when `If-None-Match` names `tag`.
pub fn unchanged(req: &HttpRequest, tag: &str) -> Option<HttpResponse> {
    not_modified(req, tag).then(|| {
        HttpResponse::NotModified()
            .insert_header((header::ETAG, tag.to_owned()))
            .finish()
    })
}

/// A change another request made first: 412 when the caller sent `If-Match`, else 409.
pub fn lost_race(req: &HttpRequest) -> ApiError {
    if has_if_match(req) {
        ApiError::new(crate::ErrorKind::PreconditionFailed).debug("the resource changed since you read it")
    } else {
        ApiError::conflict("the resource changed while this request ran; read it again and retry")
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn with(name: HeaderName, value: &str) -> HttpRequest {
        TestRequest::default().insert_header((name, value)).to_http_request()
    }

    #[test]
    fn tags_change_with_what_they_show() {
        assert_eq!(tag(3, &[]), "\"v3\"");
        assert_ne!(tag(3, &["ana", "fr"]), tag(3, &["ana", "en"]));
        assert_ne!(tag(3, &["an", "afr"]), tag(3, &["ana", "fr"]), "parts are delimited");
        assert_eq!(tag(3, &["ana"]), tag(3, &["ana"]));
    }

    #[test]
    fn if_match_is_strong_and_takes_lists() {
        let current = tag(4, &[]);
        assert!(if_match(&TestRequest::default().to_http_request(), &current).is_ok());
        assert!(if_match(&with(header::IF_MATCH, "\"v3\", \"v4\""), &current).is_ok());
        assert!(if_match(&with(header::IF_MATCH, "*"), &current).is_ok());
        assert!(if_match(&with(header::IF_MATCH, "\"v3\""), &current).is_err());
        assert!(
            if_match(&with(header::IF_MATCH, "W/\"v4\""), &current).is_err(),
            "weak never matches"
        );
        assert!(if_match(&with(header::IF_MATCH, "garbage"), &current).is_err());
    }

    #[test]
    fn if_none_match_is_weak() {
        let current = tag(2, &[]);
        assert!(not_modified(&with(header::IF_NONE_MATCH, "\"v1\", W/\"v2\""), &current));
        assert!(!not_modified(&with(header::IF_NONE_MATCH, "\"v1\""), &current));
        assert!(not_modified(&with(header::IF_NONE_MATCH, "*"), &current));
    }
}
