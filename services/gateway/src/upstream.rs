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

    /// Sends `request` to `address`, waiting at most `timeout` for the response's head. When
    /// an idle connection turns out closed before the request was written, hyper hands the
    /// request back untouched and it goes once more on a new connection.
    pub async fn send(
        &self,
        address: &str,
        request: http::Request<Body>,
        timeout: Duration,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        let attempt = async {
            let mut connection = match self.idle(address) {
                Some(idle) => idle,
                None => self.connect(address).await?,
            };
            let response = match connection.try_send_request(request).await {
                Ok(response) => response,
                Err(mut error) => {
                    let Some(unsent) = error.take_message() else {
                        return Err(error.into_error().into());
                    };
                    connection = self.connect(address).await?;
                    connection.send_request(unsent).await?
                }
            };
            self.release(address, connection);
            Ok(response)
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or(Err(UpstreamError::Timeout(timeout)))
    }
}
