//! Forwarding to upstream services by path prefix. The request body is read within the body
//! limit (actix's payload cannot cross threads into the HTTP client); the response streams back.

use std::time::Duration;

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use futures_util::TryStreamExt;
use http_kit::{ApiError, ErrorKind, RequestId};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Route {
    /// Path prefix, matched on a segment boundary.
    pub prefix: String,
    /// Base URL of the upstream service; the request's path and query are appended.
    pub upstream: String,
    pub timeout_secs: u64,
}

impl Route {
    pub fn validate(&self, index: usize) -> Result<(), settings::SettingsError> {
        let key = |field: &str| format!("routes[{index}].{field}");
        if !self.prefix.starts_with('/') || (self.prefix.len() > 1 && self.prefix.ends_with('/')) {
            return Err(settings::rule(
                &key("prefix"),
                "must start with `/` and not end with one",
            ));
        }
        if url::Url::parse(&self.upstream).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
            return Err(settings::rule(&key("upstream"), "must be an http(s) URL"));
        }
        if self.timeout_secs == 0 {
            return Err(settings::rule(&key("timeout_secs"), "must be more than 0"));
        }
        Ok(())
    }

    fn matches(&self, path: &str) -> bool {
        self.prefix == "/"
            || path
                .strip_prefix(&self.prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

pub struct Proxy {
    routes: Vec<Route>,
    client: reqwest::Client,
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), and those the
/// gateway sets itself.
const NOT_FORWARDED: [HeaderName; 9] = [
    header::CONNECTION,
    header::HOST,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::CONTENT_LENGTH,
    HeaderName::from_static("keep-alive"),
];

impl Proxy {
    pub fn new(routes: Vec<Route>) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { routes, client })
    }

    fn route(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(path))
    }
}

fn forwarded_headers(req: &HttpRequest) -> reqwest::header::HeaderMap {
    let mut out = reqwest::header::HeaderMap::new();
    for (name, value) in req.headers() {
        let hop = NOT_FORWARDED.contains(name) || name.as_str().starts_with("x-forwarded-");
        if !hop
            && let (Ok(n), Ok(v)) = (
                reqwest::header::HeaderName::from_bytes(name.as_ref()),
                reqwest::header::HeaderValue::from_bytes(value.as_bytes()),
            )
        {
            out.append(n, v);
        }
    }
    let info = req.connection_info();
    let peer = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    for (name, value) in [
        ("x-forwarded-for", peer.as_str()),
        ("x-forwarded-proto", info.scheme()),
        ("x-forwarded-host", info.host()),
    ] {
        if let Ok(v) = reqwest::header::HeaderValue::from_str(value) {
            out.insert(name, v);
        }
    }
    if let Some(id) = req.extensions().get::<RequestId>()
        && let Ok(v) = reqwest::header::HeaderValue::from_str(&id.0)
    {
        out.insert("x-request-id", v);
    }
    if let Some(tp) = telemetry::current_traceparent().and_then(|tp| reqwest::header::HeaderValue::from_str(&tp).ok()) {
        out.insert(telemetry::TRACEPARENT, tp);
    }
    out
}

/// The default service of the gateway: every path not served by the gateway itself.
pub async fn forward(req: HttpRequest, body: web::Bytes, proxy: web::Data<Proxy>) -> Result<HttpResponse, ApiError> {
    let route = proxy
        .route(req.path())
        .ok_or_else(|| ApiError::not_found(format!("no route for {} {}", req.method(), req.path())))?;
    let path_and_query = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let url = format!("{}{path_and_query}", route.upstream.trim_end_matches('/'));
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|_| ApiError::new(ErrorKind::MethodNotAllowed))?;
    let upstream = proxy
        .client
        .request(method, &url)
        .headers(forwarded_headers(&req))
        .body(body)
        .timeout(Duration::from_secs(route.timeout_secs))
        .send()
        .await
        .map_err(|e| {
            let kind = if e.is_timeout() {
                ErrorKind::GatewayTimeout
            } else {
                ErrorKind::BadGateway
            };
            tracing::warn!(upstream = %route.upstream, error = %e, "upstream request failed");
            ApiError::new(kind)
        })?;
    let mut response = HttpResponse::build(
        actix_web::http::StatusCode::from_u16(upstream.status().as_u16())
            .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY),
    );
    copy_response_headers(upstream.headers(), &mut response);
    Ok(response.streaming(upstream.bytes_stream().map_err(std::io::Error::other)))
}

fn copy_response_headers(from: &reqwest::header::HeaderMap, to: &mut actix_web::HttpResponseBuilder) {
    let mut seen = HeaderMap::new();
    for (name, value) in from {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_ref()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) && !NOT_FORWARDED.contains(&n)
            && n != "x-request-id"
        {
            seen.append(n, v);
        }
    }
    for (name, value) in seen {
        to.append_header((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: &str) -> Route {
        Route {
            prefix: prefix.into(),
            upstream: "http://127.0.0.1:1".into(),
            timeout_secs: 1,
        }
    }

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        let r = route("/oauth");
        assert!(r.matches("/oauth") && r.matches("/oauth/x"));
        assert!(!r.matches("/oauth2/token") && !r.matches("/oauthx"));
        assert!(route("/").matches("/anything"));
    }

    #[test]
    fn bad_routes_name_their_key() {
        let msg = route("oauth").validate(2).err().map(|e| e.to_string());
        assert_eq!(
            msg.as_deref(),
            Some("configuration key `routes[2].prefix`: must start with `/` and not end with one")
        );
        assert!(
            Route {
                upstream: "ftp://x".into(),
                ..route("/a")
            }
            .validate(0)
            .is_err()
        );
    }
}
