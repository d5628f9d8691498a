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

#[derive(Default)]
pub struct Upstreams {
    idle: RefCell<HashMap<String, Vec<SendRequest<Body>>>>,
}

impl Upstreams {
    /// A connection to `address` (`host:port`) free for a request: an idle one, or a new one.
    async fn connection(&self, address: &str) -> Result<(SendRequest<Body>, bool), UpstreamError> {
        let reused = {
            let mut idle = self.idle.borrow_mut();
            let pool = idle.entry(address.to_owned()).or_default();
            pool.retain(|c| !c.is_closed());
            pool.iter().position(SendRequest::is_ready).map(|i| pool.swap_remove(i))
        };
        if let Some(connection) = reused {
            return Ok((connection, true));
        }
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(UpstreamError::Connect)?;
        stream.set_nodelay(true).map_err(UpstreamError::Connect)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        actix_web::rt::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "upstream connection closed");
            }
        });
        Ok((sender, false))
    }

    fn release(&self, address: &str, connection: SendRequest<Body>) {
        let mut idle = self.idle.borrow_mut();
        let pool = idle.entry(address.to_owned()).or_default();
        if pool.len() < MAX_IDLE {
            pool.push(connection);
        }
    }

    /// Sends `request` to `address`, waiting at most `timeout` for the response's head. A
    /// request without a body that meets a connection the upstream has just closed is sent
    /// once more on a new one (the upstream cannot have seen it).
    pub async fn send(
        &self,
        address: &str,
        request: http::Request<Body>,
        replayable: Option<&dyn Fn() -> http::Request<Body>>,
        timeout: Duration,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        let attempt = async {
            let (mut connection, reused) = self.connection(address).await?;
            match connection.send_request(request).await {
                Ok(response) => {
                    self.release(address, connection);
                    Ok(response)
                }
                Err(error) if reused && (error.is_canceled() || error.is_incomplete_message()) => {
                    let Some(again) = replayable else {
                        return Err(error.into());
                    };
                    let (mut connection, _) = self.connection(address).await?;
                    let response = connection.send_request(again()).await?;
                    self.release(address, connection);
                    Ok(response)
                }
                Err(error) => Err(error.into()),
            }
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or(Err(UpstreamError::Timeout(timeout)))
    }
}
