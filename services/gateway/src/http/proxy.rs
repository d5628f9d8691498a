//! The gateway's default service: every path it does not serve itself. In order: the route,
//! a CORS preflight, the token (unless the route is public) and its scopes, the client's rate,
//! then the upstream. Bodies stream both ways: the request's to the upstream (cut off at the
//! body limit), the upstream's back to the client.

use std::cell::Cell;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use http_kit::{ApiError, ErrorKind, RequestId};

use crate::http::docs::Docs;
use crate::rate_limits;
use crate::route_table::{Entry, Route, Target};
use crate::state::Gateway;
use crate::token_validator::{Answer, Refusal};
use crate::upstream::{self, Upstreams};
use tokens::now_secs;

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

fn bearer_challenge(error: Option<&str>) -> HeaderValue {
    let value = match error {
        Some(error) => format!("Bearer realm=\"partner-api\", error=\"{error}\""),
        None => "Bearer realm=\"partner-api\"".to_owned(),
    };
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

/// The bearer token: the `Authorization` header, or `access_token` in the query on the routes
/// that allow it (seed 003) when the request has no `Authorization` header: a request carries
/// its token one way (RFC 6750 §2), and a header that is not a valid bearer is refused, not
/// passed over for the query.
fn token<'a>(req: &'a HttpRequest, route: &Route) -> Option<std::borrow::Cow<'a, str>> {
    if req.headers().contains_key(header::AUTHORIZATION) || !route.query_token {
        return http_kit::credentials::bearer(req).map(Into::into);
    }
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned().into())
}

impl Gateway {
    async fn authorize(&self, req: &HttpRequest, route: &Route) -> Result<Option<Arc<Answer>>, ApiError> {
        if route.public {
            return Ok(None);
        }
        let Some(token) = token(req, route) else {
            self.metrics.reject("no_token");
            return Err(ApiError::unauthorized("a bearer access token is required")
                .header(header::WWW_AUTHENTICATE, bearer_challenge(None)));
        };
        let answer = self.validator.validate(&token).await.map_err(|refusal| match refusal {
            Refusal::Invalid(reason) => {
                self.metrics.reject("invalid_token");
                ApiError::unauthorized(reason).header(header::WWW_AUTHENTICATE, bearer_challenge(Some("invalid_token")))
            }
            Refusal::Unavailable => {
                self.metrics.reject("introspection_unavailable");
                ApiError::unavailable("tokens cannot be checked right now")
            }
        })?;
        if let Some(missing) = route.scopes.iter().find(|s| !answer.has_scope(s)) {
            self.metrics.reject("insufficient_scope");
            let challenge = format!(
                "Bearer realm=\"partner-api\", error=\"insufficient_scope\", scope=\"{}\"",
                route.scopes.join(" ")
            );
            return Err(
                ApiError::forbidden(format!("the token lacks the `{missing}` scope")).header(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_str(&challenge).unwrap_or_else(|_| bearer_challenge(None)),
                ),
            );
        }
        Ok(Some(answer))
    }

    async fn limit(
        &self,
        client: IpAddr,
        route: &Route,
        answer: Option<&Answer>,
    ) -> Result<Option<cache::Decision>, ApiError> {
        let Some((name, policy)) = route
            .rate_limit
            .as_ref()
            .and_then(|name| Some((name, *self.policies.get(name)?)))
        else {
            return Ok(None);
        };
        let who = match answer.map(|a| (a, a.user())) {
            Some((answer, Some(user))) if self.per_user_clients.contains(&answer.client_id) => {
                format!("client:{}:user:{user}", answer.client_id)
            }
            Some((answer, _)) => format!("client:{}", answer.client_id),
            None => format!("ip:{client}"),
        };
        self.limits
            .check(name, policy, &who)
            .await
            .map(Some)
            .inspect_err(|_| self.metrics.reject("rate_limited"))
    }

    /// The request's headers as the upstream gets them: hop-by-hop fields, forwarding fields
    /// and identity fields sent by the client dropped; the gateway's own set, among them the
    /// client's address, signed (so that auth's failure limits count each client apart).
    fn upstream_headers(
        &self,
        req: &HttpRequest,
        client: IpAddr,
        answer: Option<&Answer>,
        host: &http::HeaderValue,
    ) -> http::HeaderMap {
        let mut out = end_to_end_headers(req);
        out.insert(http::header::HOST, host.clone());
        let info = req.connection_info();
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default();
        let mut set = |name: &'static str, value: &str| {
            if let Ok(value) = http::HeaderValue::from_str(value) {
                out.insert(http::HeaderName::from_static(name), value);
            }
        };
        let address = client.to_string();
        set("x-forwarded-for", &address);
        set("x-forwarded-proto", info.scheme());
        set("x-forwarded-host", info.host());
        set("x-request-id", &request_id);
        if let Some(tp) = telemetry::current_traceparent() {
            set(telemetry::TRACEPARENT, &tp);
        }
        let now = now_secs();
        set(
            identity::CLIENT_ADDRESS_SIGNATURE,
            &self.identity_key.address_signature(&address, &request_id, now),
        );
        set(identity::CLIENT_ADDRESS, &address);
        if let Some(answer) = answer {
            let claims = identity::Claims {
                subject: &answer.sub,
                client_id: &answer.client_id,
                scope: &answer.scope,
                username: answer.username.as_deref(),
            };
            self.identity_key.identity_headers(claims, &request_id, now, &mut set);
        }
        out
    }

    async fn forward(
        &self,
        req: &HttpRequest,
        payload: web::Payload,
        client: &Upstreams,
    ) -> Result<HttpResponse, ApiError> {
        let entry = self.routes.find(req.method().as_str(), req.path()).ok_or_else(|| {
            ApiError::not_found(format!(
                "no route for {} {}",
                req.method(),
                http_kit::extract::excerpt(req.path())
            ))
        })?;
        let route = &entry.route;
        if let Some(preflight) = self.cors.preflight(req) {
            return Ok(preflight);
        }
        let (answer, client_address) = self.admit(req, route).await?;
        let started = Instant::now();
        let answered = self
            .forward_admitted(req, payload, client, entry, answer.as_deref(), client_address)
            .await;
        if let Some(answer) = &answer {
            let status = answered.as_ref().map_or_else(|e| e.status_code(), HttpResponse::status);
            self.usage
                .record(&answer.client_id, &route.prefix, status.as_u16(), started.elapsed());
        }
        if route.revokes_bearer && answered.as_ref().is_ok_and(|r| r.status().is_success()) {
            self.forget_bearer(req, route).await;
        }
        answered
    }

    /// The bearer token a revocation route just revoked: this replica refuses it at once (the
    /// caller's next request may come before the event), the others when `token.revoked` comes.
    async fn forget_bearer(&self, req: &HttpRequest, route: &Route) {
        let Some(token) = token(req, route) else {
            return;
        };
        if let Ok(answer) = self.validator.validate(&token).await {
            self.validator.forget(&answer);
        }
    }

    /// An admitted request: rate-limited, then sent to the first instance that takes it.
    async fn forward_admitted(
        &self,
        req: &HttpRequest,
        payload: web::Payload,
        client: &Upstreams,
        entry: &Entry,
        answer: Option<&Answer>,
        client_address: IpAddr,
    ) -> Result<HttpResponse, ApiError> {
        let route = &entry.route;
        let decision = self.limit(client_address, route, answer).await?;
        let targets = entry.ordered();
        let (request, body) = self.upstream_request(req, payload, targets[0], client_address, answer)?;
        let sent = self.send(client, &targets, request, route).await;
        // What went wrong with the client's body explains a failed send better than the send.
        self.body_failure(&body).map_or(Ok(()), Err)?;
        let upstream = sent.map_err(|e| {
            tracing::warn!(upstream = %route.upstream, error = %e, "upstream request failed");
            let timeout = matches!(e, upstream::UpstreamError::Timeout(_));
            ApiError::new(if timeout {
                ErrorKind::GatewayTimeout
            } else {
                ErrorKind::BadGateway
            })
        })?;
        respond(upstream, decision.as_ref())
    }

    /// The token's answer (on protected routes) and the client's address, which the token's
    /// application must accept.
    async fn admit(&self, req: &HttpRequest, route: &Route) -> Result<(Option<Arc<Answer>>, IpAddr), ApiError> {
        let answer = self.authorize(req, route).await?;
        let client_address = self.client_address.of(req);
        if answer.as_ref().is_some_and(|a| !a.admits(client_address)) {
            self.metrics.reject("address_not_allowed");
            return Err(ApiError::forbidden(
                "this application does not accept requests from this address",
            ));
        }
        Ok((answer, client_address))
    }

    /// The request as `target` gets it, and the flags its body raises on the way.
    fn upstream_request(
        &self,
        req: &HttpRequest,
        payload: web::Payload,
        target: &Target,
        client_address: IpAddr,
        answer: Option<&Answer>,
    ) -> Result<(http::Request<upstream::Body>, BodyFlags), ApiError> {
        // Instances of one upstream share its path; the first to try gives the request its Host.
        let path_and_query = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let uri: http::Uri = format!("{}{path_and_query}", target.base_path)
            .parse()
            .map_err(|_| ApiError::bad_request("the path cannot be forwarded"))?;
        let method = http::Method::from_bytes(req.method().as_str().as_bytes())
            .map_err(|_| ApiError::new(ErrorKind::MethodNotAllowed))?;
        let body = self.body(req, payload)?;
        let flags = BodyFlags {
            overflow: body.overflow.clone(),
            stalled: body.stalled.clone(),
        };
        let empty = body.length.is_none_or(|l| l == 0) && !req.headers().contains_key(header::TRANSFER_ENCODING);
        let mut request = http::Request::new(if empty { upstream::empty() } else { body.into_upstream() });
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = self.upstream_headers(req, client_address, answer, &target.host);
        Ok((request, flags))
    }

    /// Sends to the first instance that takes the request; one that refused a connection gets
    /// no new requests until its readiness check passes.
    async fn send(
        &self,
        client: &Upstreams,
        targets: &[&Target],
        request: http::Request<upstream::Body>,
        route: &Route,
    ) -> Result<http::Response<hyper::body::Incoming>, upstream::UpstreamError> {
        let started = Instant::now();
        let addresses: Vec<&str> = targets.iter().map(|t| t.address.as_str()).collect();
        let sent = client.send(&addresses, request, route.timeout.0).await;
        let (sent, refused) = match sent {
            Ok((response, refused)) => (Ok(response), refused),
            Err((error, refused)) => (Err(error), refused),
        };
        for index in refused {
            targets[index]
                .healthy
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
        self.metrics
            .upstream
            .with_label_values(&[route.prefix.as_str()])
            .observe(started.elapsed().as_secs_f64());
        sent
    }

    fn body_failure(&self, body: &BodyFlags) -> Option<ApiError> {
        if body.stalled.get() {
            return Some(ApiError::new(ErrorKind::RequestTimeout).debug(format!(
                "no part of the body arrived for {} ms",
                self.body_idle_timeout.as_millis()
            )));
        }
        body.overflow.get().then(|| {
            ApiError::new(ErrorKind::PayloadTooLarge).debug(format!("the body exceeds {} bytes", self.body_limit))
        })
    }
}

/// The upstream's answer for the client: its status and headers (hop-by-hop ones dropped, the
/// rate limit's added) and its body streamed back, with its length when it gave one.
fn respond(
    upstream: http::Response<hyper::body::Incoming>,
    decision: Option<&cache::Decision>,
) -> Result<HttpResponse, ApiError> {
    let status = actix_web::http::StatusCode::from_u16(upstream.status().as_u16())
        .map_err(|_| ApiError::new(ErrorKind::BadGateway))?;
    let mut response = HttpResponse::build(status);
    let mut length = None;
    for (name, value) in upstream.headers() {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            if n == header::CONTENT_LENGTH {
                length = v.to_str().ok().and_then(|v| v.parse::<u64>().ok());
            } else if !NOT_FORWARDED.contains(&n) && n != "x-request-id" {
                response.append_header((n, v));
            }
        }
    }
    if let Some(decision) = decision {
        for field in rate_limits::headers(decision) {
            response.insert_header(field);
        }
    }
    let stream = upstream::body_stream(upstream.into_body());
    // A known length is kept (no chunked encoding for the client); unknown ones stream.
    Ok(match length {
        Some(length) => response.body(SizedStream::new(length, stream)),
        None => response.streaming(stream),
    })
}

/// What the request's body raised on its way upstream.
struct BodyFlags {
    overflow: Rc<Cell<bool>>,
    stalled: Rc<Cell<bool>>,
}

/// A request body on its way upstream, cut off past the body limit, or when its next piece
/// takes longer than the idle timeout to arrive (a client that sends a length and never the
/// bytes would otherwise hold an upstream connection until the route's timeout).
struct LimitedBody {
    payload: web::Payload,
    length: Option<u64>,
    seen: usize,
    limit: usize,
    overflow: Rc<Cell<bool>>,
    idle: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    stalled: Rc<Cell<bool>>,
}

impl futures_util::Stream for LimitedBody {
    type Item = Result<web::Bytes, actix_web::error::PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = Pin::new(&mut self.payload).poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(chunk))) => {
                self.seen += chunk.len();
                if self.seen > self.limit {
                    self.overflow.set(true);
                    return Poll::Ready(Some(Err(actix_web::error::PayloadError::Overflow)));
                }
                let next_deadline = tokio::time::Instant::now() + self.idle;
                self.deadline.as_mut().reset(next_deadline);
            }
            Poll::Pending if self.deadline.as_mut().poll(cx).is_ready() => {
                self.stalled.set(true);
                return Poll::Ready(Some(Err(actix_web::error::PayloadError::Io(
                    std::io::ErrorKind::TimedOut.into(),
                ))));
            }
            _ => {}
        }
        next
    }
}

impl LimitedBody {
    fn into_upstream(self) -> upstream::Body {
        use futures_util::TryStreamExt;
        Box::pin(http_body_util::StreamBody::new(
            self.map_ok(hyper::body::Frame::data).map_err(std::io::Error::other),
        ))
    }
}

impl Gateway {
    /// The request body as a stream; a declared length over the limit is refused at once.
    fn body(&self, req: &HttpRequest, payload: web::Payload) -> Result<LimitedBody, ApiError> {
        let length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .map(|v| v.to_str().ok().and_then(|v| v.parse::<u64>().ok()))
            .map(|parsed| parsed.ok_or_else(|| ApiError::bad_request("Content-Length is not a number")))
            .transpose()?;
        if length.is_some_and(|l| l > self.body_limit as u64) {
            return Err(
                ApiError::new(ErrorKind::PayloadTooLarge).debug(format!("the body exceeds {} bytes", self.body_limit))
            );
        }
        Ok(LimitedBody {
            payload,
            length,
            seen: 0,
            limit: self.body_limit,
            overflow: Rc::default(),
            idle: self.body_idle_timeout,
            deadline: Box::pin(tokio::time::sleep(self.body_idle_timeout)),
            stalled: Rc::default(),
        })
    }
}

/// A path that some operation has, asked with a method none of them takes: 405 with `Allow`,
/// whichever service serves the path (the service itself only knows its own methods).
async fn wrong_method(req: &HttpRequest, docs: &Docs) -> Option<ApiError> {
    let merged = docs.merged().await;
    let methods = merged.methods(req.path())?;
    let method = req.method().as_str();
    let taken = methods.contains(&method) || (method == "HEAD" && methods.contains(&"GET"));
    (!taken).then(|| ApiError::method_not_allowed(&methods))
}

/// The default service of the gateway: every path not served by the gateway itself.
pub async fn forward(
    req: HttpRequest,
    body: web::Payload,
    gateway: web::Data<Gateway>,
    client: web::Data<Upstreams>,
    docs: web::Data<Docs>,
) -> HttpResponse {
    let mut response = gateway
        .forward(&req, body, &client)
        .await
        .unwrap_or_else(|error| error.error_response());
    if response.status() == actix_web::http::StatusCode::NOT_FOUND
        && let Some(refusal) = wrong_method(&req, &docs).await
    {
        response = refusal.error_response();
    }
    gateway.cors.decorate(&req, response.headers_mut());
    response
}

/// The client's headers that travel on: hop-by-hop ones, those the client named in
/// `Connection` (RFC 9110 §7.6.1), and any it sent under the names the gateway sets itself
/// (`X-Forwarded-*`, the signed identity) stay behind. The body goes as it came: with its
/// length, or chunked.
fn end_to_end_headers(req: &HttpRequest) -> http::HeaderMap {
    let mut out = http::HeaderMap::with_capacity(req.headers().len() + 10);
    let named: Vec<&str> = req
        .headers()
        .get_all(header::CONNECTION)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(str::trim))
        .collect();
    for (name, value) in req.headers() {
        let own = NOT_FORWARDED.contains(name)
            || name.as_str().starts_with("x-forwarded-")
            || name.as_str().starts_with(identity::PREFIX)
            || named.iter().any(|n| n.eq_ignore_ascii_case(name.as_str()));
        if !own
            && let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name.as_str().as_bytes()),
                http::HeaderValue::from_bytes(value.as_bytes()),
            )
        {
            out.append(n, v);
        }
    }
    if let Some(length) = req.headers().get(header::CONTENT_LENGTH)
        && let Ok(length) = http::HeaderValue::from_bytes(length.as_bytes())
    {
        out.insert(http::header::CONTENT_LENGTH, length);
    }
    out
}
