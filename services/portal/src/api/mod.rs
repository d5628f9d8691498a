//! The platform's APIs as the portal calls them: through the gateway, with the signed-in
//! person's token, reading the envelope's `data`. A 422's `errors` become field errors shown
//! beside their fields; other refusals become a `PortalError`.

use actix_web::http::StatusCode;
use ids::{ClientId, UserId};
use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::PortalError;

mod notifications;
mod services;
mod webhooks;

pub use notifications::{InboxItem, Preferences, ProviderChoice, QuietHours};
pub use services::{Notification, Provider, Service};
pub use webhooks::{Attempt, Endpoint, EventType};

pub struct Api {
    http: reqwest::Client,
    base: url::Url,
}

/// A field the platform refused, and why.
#[derive(Debug, Clone, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

/// An answer to a write: done, or refused with reasons to show beside the fields.
pub enum Outcome<T> {
    Done(T),
    Invalid(Vec<FieldError>),
}

#[derive(Debug, Clone, Deserialize)]
pub struct Me {
    pub id: UserId,
    pub username: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Application {
    pub client_id: ClientId,
    pub name: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub public: bool,
    pub created_at: i64,
    pub client_secret: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Consent {
    pub client_id: ClientId,
    pub name: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub granted_at: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RoleRequest {
    pub id: String,
    pub username: Option<String>,
    pub role: String,
    pub reason: String,
    pub status: String,
    pub created_at: i64,
    pub decided_at: Option<i64>,
}

/// A page of a paginated answer; the portal shows its first page.
#[derive(Deserialize)]
struct Paged<T> {
    items: Vec<T>,
}

struct Reply {
    status: StatusCode,
    etag: Option<String>,
    body: Value,
}

impl Reply {
    fn message(&self) -> String {
        self.body["message"]
            .as_str()
            .filter(|m| !m.is_empty())
            .unwrap_or("The platform refused this request.")
            .to_owned()
    }

    /// The envelope's `data`, or the refusal in words.
    fn data<T: DeserializeOwned>(self) -> Result<T, PortalError> {
        match self.status.as_u16() {
            200..=299 => serde_json::from_value(self.body["data"].clone()).map_err(PortalError::unavailable),
            // Not a redirect to sign in: auth would sign the person in at once and the same
            // refusal would come back, in a loop.
            401 => Err(PortalError::TokenRefused),
            403 => Err(PortalError::Forbidden(self.message())),
            412 => Err(PortalError::Refused {
                status: self.status,
                message: "It was changed meanwhile (in another window?). Reload the page and make your change again."
                    .to_owned(),
            }),
            404 => Err(PortalError::NotFound(
                "There is nothing here, or it is not yours.".to_owned(),
            )),
            500..=599 => Err(PortalError::unavailable(format!("{}: {}", self.status, self.body))),
            _ => Err(PortalError::Refused {
                message: self.message(),
                status: self.status,
            }),
        }
    }

    fn outcome<T: DeserializeOwned>(self) -> Result<Outcome<T>, PortalError> {
        if self.status == StatusCode::UNPROCESSABLE_ENTITY {
            let errors = serde_json::from_value::<Vec<FieldError>>(self.body["errors"].clone()).unwrap_or_default();
            if !errors.is_empty() {
                return Ok(Outcome::Invalid(errors));
            }
        }
        self.data().map(Outcome::Done)
    }
}

impl Api {
    pub fn new(http: reqwest::Client, base: url::Url) -> Self {
        Self { http, base }
    }

    async fn send(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Result<Reply, PortalError> {
        self.send_if(method, path, token, body, None).await
    }

    /// `if_match`: the ETag the person's page showed, so a change made meanwhile is not lost.
    async fn send_if(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> Result<Reply, PortalError> {
        let url = self.base.join(path).map_err(PortalError::unavailable)?;
        let mut request = self.http.request(method, url);
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(tag) = if_match.filter(|t| !t.is_empty()) {
            request = request.header("if-match", tag);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(PortalError::unavailable)?;
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.map_err(PortalError::unavailable)?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        Ok(Reply { status, etag, body })
    }

    pub async fn me(&self, token: &str) -> Result<Me, PortalError> {
        self.send(Method::GET, "/accounts/me", token, None).await?.data()
    }

    pub async fn applications(&self, token: &str) -> Result<Vec<Application>, PortalError> {
        self.send(Method::GET, "/applications", token, None).await?.data()
    }

    pub async fn application(&self, token: &str, id: &str) -> Result<Application, PortalError> {
        self.send(Method::GET, &format!("/applications/{}", segment(id)), token, None)
            .await?
            .data()
    }

    pub async fn create_application(&self, token: &str, body: Value) -> Result<Outcome<Application>, PortalError> {
        self.send(Method::POST, "/applications", token, Some(body))
            .await?
            .outcome()
    }

    pub async fn rotate_secret(&self, token: &str, id: &str, overlap_seconds: i64) -> Result<Application, PortalError> {
        let body = serde_json::json!({ "overlap_seconds": overlap_seconds });
        self.send(
            Method::POST,
            &format!("/applications/{}/secret", segment(id)),
            token,
            Some(body),
        )
        .await?
        .data()
    }

    pub async fn delete_application(&self, token: &str, id: &str) -> Result<(), PortalError> {
        let reply = self
            .send(Method::DELETE, &format!("/applications/{}", segment(id)), token, None)
            .await?;
        reply.data::<Option<Value>>().map(drop)
    }

    pub async fn consents(&self, token: &str) -> Result<Vec<Consent>, PortalError> {
        self.send(Method::GET, "/accounts/me/consents", token, None)
            .await?
            .data()
    }

    pub async fn withdraw_consent(&self, token: &str, client_id: &str) -> Result<(), PortalError> {
        let reply = self
            .send(
                Method::DELETE,
                &format!("/accounts/me/consents/{}", segment(client_id)),
                token,
                None,
            )
            .await?;
        reply.data::<Option<Value>>().map(drop)
    }
}

impl Api {
    pub async fn my_role_requests(&self, token: &str) -> Result<Vec<RoleRequest>, PortalError> {
        self.send(Method::GET, "/accounts/me/role-requests", token, None)
            .await?
            .data()
    }

    pub async fn ask_role(&self, token: &str, reason: &str) -> Result<Outcome<RoleRequest>, PortalError> {
        let body = serde_json::json!({ "role": "registration_platform", "reason": reason });
        self.send(Method::POST, "/accounts/me/role-requests", token, Some(body))
            .await?
            .outcome()
    }

    pub async fn pending_role_requests(&self, token: &str) -> Result<Vec<RoleRequest>, PortalError> {
        self.send(Method::GET, "/accounts/role-requests", token, None)
            .await?
            .data()
    }

    pub async fn decide_role_request(&self, token: &str, id: &str, decision: &str) -> Result<RoleRequest, PortalError> {
        let body = serde_json::json!({ "decision": decision });
        self.send(
            Method::POST,
            &format!("/accounts/role-requests/{}/decision", segment(id)),
            token,
            Some(body),
        )
        .await?
        .data()
    }
}

/// A path segment, percent-encoded so an id cannot change the path.
pub(crate) fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}
