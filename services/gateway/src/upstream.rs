//! The HTTP/1.1 client to upstream services: hyper's connection API, one client per server
//! worker with its own idle connections. Each worker runs a single-threaded runtime, and its
//! connections are driven on it, so a response wakes no other thread; and nothing is spawned
//! per request (awc spawns a date-keeping task for each, reqwest parses a URL and shares one
//! pool across threads — both measured slower here).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use actix_web::web::Bytes;
use futures_util::{Stream, TryStreamExt};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

/// A request body: boxed, and not `Send` (actix's payload lives on its worker's thread).
pub type Body = std::pin::Pin<Box<dyn hyper::body::Body<Data = Bytes, Error = std::io::Error>>>;

pub fn empty() -> Body {
    Box::pin(http_body_util::Empty::new().map_err(|never| match never {}))
}

/// A response body as the data it carries (trailers are dropped).
pub fn body_stream(body: Incoming) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    http_body_util::BodyStream::new(body)
        .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) })
        .map_err(std::io::Error::other)
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("{0}")]
    Http(#[from] hyper::Error),
}

/// Idle connections beyond this many per upstream are closed.
const MAX_IDLE: usize = 256;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Upstreams {
    idle: RefCell<HashMap<String, Vec<SendRequest<Body>>>>,
}

impl Upstreams {
    /// An idle connection to `address` (`host:port`) ready for a request, if there is one.
    fn idle(&self, address: &str) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.borrow_mut();
        let pool = idle.get_mut(address)?;
        pool.retain(|c| !c.is_closed());
        let ready = pool.iter().position(SendRequest::is_ready)?;
        Some(pool.swap_remove(ready))
    }

    /// A new connection to `address`, driven on this worker.
    async fn connect(&self, address: &str) -> Result<SendRequest<Body>, UpstreamError> {
        // An instance that drops packets (a dead node) must not hold the request for the whole
        // route timeout: past this, it counts as refused and the next instance gets it.
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(address))
            .await
            .map_err(|_| UpstreamError::Connect(std::io::ErrorKind::TimedOut.into()))?
            .map_err(UpstreamError::Connect)?;
        stream.set_nodelay(true).map_err(UpstreamError::Connect)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        actix_web::rt::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "upstream connection closed");
            }
        });
        Ok(sender)
    }

    fn release(&self, address: &str, connection: SendRequest<Body>) {
        let mut idle = self.idle.borrow_mut();
        match idle.get_mut(address) {
            Some(pool) if pool.len() >= MAX_IDLE => {}
            Some(pool) => pool.push(connection),
            None => {
                idle.insert(address.to_owned(), vec![connection]);
            }
        }
    }

    /// Sends `request` to the first of `addresses` that takes it, waiting at most `timeout`
    /// for the response's head. A request that was never written (the address refused the
    /// connection, or an idle connection turned out closed) goes on to the next address or a
    /// new connection; one that was written is never sent twice. Returns the answer and the
    /// index of the address that gave it, or the error with the indexes that refused.
    pub async fn send(
        &self,
        addresses: &[&str],
        request: http::Request<Body>,
        timeout: Duration,
    ) -> Result<(http::Response<Incoming>, Vec<usize>), (UpstreamError, Vec<usize>)> {
        let mut refused = Vec::new();
        // Kept only where there is another instance to send it to: a copy costs on the hot path.
        let replay = (addresses.len() > 1).then(|| Replay::of(&request)).flatten();
        let attempt = async {
            let mut request = request;
            let mut last = None;
            for (index, address) in addresses.iter().enumerate() {
                match self.send_to(address, request).await {
                    Ok(response) => return Ok(response),
                    Err(Failure::Unsent(error, unsent)) => {
                        refused.push(index);
                        last = Some(error);
                        request = *unsent;
                    }
                    // An instance that died with the request in flight: a safe request without
                    // a body goes to the next one, as nginx's `proxy_next_upstream error` does.
                    Err(Failure::Sent(error)) => match &replay {
                        Some(replay) if index + 1 < addresses.len() => {
                            tracing::warn!(upstream = address, %error, "no answer from an instance; the request goes to the next");
                            last = Some(error);
                            request = replay.request();
                        }
                        _ => return Err(error),
                    },
                }
            }
            Err(last.unwrap_or(UpstreamError::Connect(std::io::ErrorKind::NotFound.into())))
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(response)) => Ok((response, refused)),
            Ok(Err(error)) => Err((error, refused)),
            Err(_) => Err((UpstreamError::Timeout(timeout), refused)),
        }
    }

    async fn send_to(&self, address: &str, request: http::Request<Body>) -> Result<http::Response<Incoming>, Failure> {
        let mut connection = match self.idle(address) {
            Some(idle) => idle,
            None => match self.connect(address).await {
                Ok(connection) => connection,
                Err(error) => return Err(Failure::Unsent(error, Box::new(request))),
            },
        };
        let response = match connection.try_send_request(request).await {
            Ok(response) => response,
            Err(mut error) => {
                let Some(unsent) = error.take_message() else {
                    return Err(Failure::Sent(error.into_error().into()));
                };
                connection = match self.connect(address).await {
                    Ok(connection) => connection,
                    Err(error) => return Err(Failure::Unsent(error, Box::new(unsent))),
                };
                connection
                    .send_request(unsent)
                    .await
                    .map_err(|e| Failure::Sent(e.into()))?
            }
        };
        self.release(address, connection);
        Ok(response)
    }
}

/// A request that may be sent again once sent: a safe method and no body.
struct Replay {
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
}

impl Replay {
    fn of(request: &http::Request<Body>) -> Option<Self> {
        use hyper::body::Body as _;
        let safe = matches!(
            *request.method(),
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
        );
        (safe && request.body().is_end_stream()).then(|| Self {
            method: request.method().clone(),
            uri: request.uri().clone(),
            headers: request.headers().clone(),
        })
    }

    fn request(&self) -> http::Request<Body> {
        let mut request = http::Request::new(empty());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// Why a request did not get an answer: whether it can go elsewhere.
enum Failure {
    /// Never written: safe to send to another address.
    Unsent(UpstreamError, Box<http::Request<Body>>),
    Sent(UpstreamError),
}
