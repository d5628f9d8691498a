//! The webhook service's API (`/webhooks/…`) as the portal calls it for an application's owner.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Api, Outcome, Paged, segment};
use crate::error::PortalError;

#[derive(Debug, Clone, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub application_id: String,
    pub url: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventType {
    pub name: String,
    pub description: String,
    pub scope: Option<String>,
    pub requires_consent: bool,
    pub schema: Value,
    pub example: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Attempt {
    pub message_id: String,
    pub event_type: String,
    pub attempted_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<i32>,
    pub error_kind: Option<String>,
    #[serde(default)]
    pub response_body: String,
    pub succeeded: bool,
}

#[derive(Deserialize)]
struct Secret {
    secret: String,
}

#[derive(Deserialize)]
pub struct Accepted {
    pub recovered: Option<usize>,
}

fn endpoint_path(id: &str) -> String {
    format!("/webhooks/endpoints/{}", segment(id))
}

impl Api {
    pub async fn event_types(&self) -> Result<Vec<EventType>, PortalError> {
        self.send(Method::GET, "/webhooks/event-types", "", None).await?.data()
    }

    pub async fn endpoints(&self, token: &str, application: &str) -> Result<Vec<Endpoint>, PortalError> {
        let path = format!("/webhooks/endpoints?size=100&application_id={}", segment(application));
        let page: Paged<Endpoint> = self.send(Method::GET, &path, token, None).await?.data()?;
        Ok(page.items)
    }

    /// The endpoint and its ETag.
    pub async fn endpoint(&self, token: &str, id: &str) -> Result<(Endpoint, String), PortalError> {
        let reply = self.send(Method::GET, &endpoint_path(id), token, None).await?;
        let etag = reply.etag.clone().unwrap_or_default();
        Ok((reply.data()?, etag))
    }

    pub async fn create_endpoint(&self, token: &str, body: Value) -> Result<Outcome<Endpoint>, PortalError> {
        self.send(Method::POST, "/webhooks/endpoints", token, Some(body))
            .await?
            .outcome()
    }

    pub async fn change_endpoint(
        &self,
        token: &str,
        id: &str,
        body: Value,
        etag: &str,
    ) -> Result<Outcome<Endpoint>, PortalError> {
        self.send_if(Method::PATCH, &endpoint_path(id), token, Some(body), Some(etag))
            .await?
            .outcome()
    }

    pub async fn delete_endpoint(&self, token: &str, id: &str) -> Result<(), PortalError> {
        let reply = self.send(Method::DELETE, &endpoint_path(id), token, None).await?;
        reply.data::<Option<Value>>().map(drop)
    }

    pub async fn endpoint_secret(&self, token: &str, id: &str) -> Result<String, PortalError> {
        let path = format!("{}/secret", endpoint_path(id));
        let secret: Secret = self.send(Method::GET, &path, token, None).await?.data()?;
        Ok(secret.secret)
    }

    pub async fn rotate_endpoint_secret(&self, token: &str, id: &str) -> Result<String, PortalError> {
        let path = format!("{}/secret/rotate", endpoint_path(id));
        let secret: Secret = self.send(Method::POST, &path, token, Some(json!({}))).await?.data()?;
        Ok(secret.secret)
    }

    pub async fn send_test(&self, token: &str, id: &str) -> Result<(), PortalError> {
        let path = format!("{}/test", endpoint_path(id));
        self.send(Method::POST, &path, token, Some(json!({})))
            .await?
            .data::<Option<Value>>()
            .map(drop)
    }

    pub async fn attempts(&self, token: &str, id: &str) -> Result<Vec<Attempt>, PortalError> {
        let path = format!("{}/attempts?size=50", endpoint_path(id));
        let page: Paged<Attempt> = self.send(Method::GET, &path, token, None).await?.data()?;
        Ok(page.items)
    }

    pub async fn resend(&self, token: &str, id: &str, message: &str) -> Result<(), PortalError> {
        let path = format!("{}/messages/{}/resend", endpoint_path(id), segment(message));
        self.send(Method::POST, &path, token, None)
            .await?
            .data::<Option<Value>>()
            .map(drop)
    }

    pub async fn recover(&self, token: &str, id: &str, since: &str) -> Result<Outcome<Accepted>, PortalError> {
        let path = format!("{}/recover", endpoint_path(id));
        self.send(Method::POST, &path, token, Some(json!({ "since": since })))
            .await?
            .outcome()
    }
}
