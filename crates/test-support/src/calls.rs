//! Calling a service behind the gateway as the gateway does (signed identity headers), and
//! watching the events it publishes.

use std::sync::Arc;
use std::time::Duration;

use events::{Bus, Delivery, Event, Handler, HandlerError, Subscription};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The identity key services are started with in tests.
pub const IDENTITY_SECRET: &str = "identity-test-secret-0123";

/// An answer: status, JSON body (`Null` when there is none), headers.
pub type Answer = (u16, Value, reqwest::header::HeaderMap);

/// Requests to one service, each signed for a caller.
pub struct Signed {
    pub base: String,
    pub http: reqwest::Client,
}

/// Who calls: the user (or the client itself), and the token's scopes.
#[derive(Clone, Copy)]
pub struct As<'a> {
    pub subject: &'a str,
    pub scope: &'a str,
}

impl Signed {
    pub fn new(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::new(),
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        who: As<'_>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.call_from("partner-app", method, path, who, body, headers).await
    }

    /// [`Signed::call`] with a token of application `client` (its own token when `who` is
    /// the application itself).
    pub async fn call_from(
        &self,
        client: &str,
        method: &str,
        path: &str,
        who: As<'_>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let username = Some(format!("name-of-{}", who.subject));
        let identity = identity::Identity::from_wire(who.subject, client, who.scope.into(), username).unwrap();
        let request_id = crate::unique("req");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .header("x-request-id", &request_id);
        for (name, value) in identity::sign(&identity, IDENTITY_SECRET.as_bytes(), &request_id, now) {
            req = req.header(name, value);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("the service answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, resp.json().await.unwrap_or(Value::Null), headers)
    }
}

/// Every event published on a bus, from the moment of [`Watch::start`].
pub struct Watch(mpsc::UnboundedReceiver<Event>);

struct Collect(mpsc::UnboundedSender<Event>);

#[async_trait::async_trait]
impl Handler for Collect {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let _ = self.0.send(delivery.event);
        Ok(())
    }
}

impl Watch {
    pub async fn start(bus: &Arc<dyn Bus>, bindings: &[&str], shutdown: CancellationToken) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        bus.subscribe(
            Subscription::new(crate::unique("watch"), bindings),
            Arc::new(Collect(tx)),
            shutdown,
        )
        .await
        .expect("subscribe");
        Self(rx)
    }

    /// The next event, whatever its type, within 10 s.
    pub async fn next_any(&mut self) -> Event {
        tokio::time::timeout(Duration::from_secs(10), self.0.recv())
            .await
            .unwrap_or_else(|_| panic!("no event within 10 s"))
            .expect("bus open")
    }

    /// The next event of `event_type` (others are skipped), each within 10 s.
    pub async fn next(&mut self, event_type: &str) -> Event {
        loop {
            let event = self.next_any().await;
            if event.event_type == event_type {
                return event;
            }
        }
    }
}
