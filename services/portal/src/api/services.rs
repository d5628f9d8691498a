//! Notification-dispatch's provider API (seed 004's providers and services) as the portal calls
//! it for an application's owner.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Api, Outcome, segment};
use crate::error::PortalError;

#[derive(Debug, Clone, Deserialize)]
pub struct Provider {
    pub provider_id: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Service {
    pub service_id: i32,
    pub name: String,
    #[serde(default)]
    pub kinds: Vec<String>,
    #[serde(default)]
    pub channels: Vec<String>,
    pub rate_limit: Option<i32>,
    pub created_at: i64,
    /// Only when created or rotated.
    pub service_token: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Notification {
    pub id: String,
    pub destination: String,
    pub kind: String,
    pub channel: String,
    pub status: String,
    pub reason: Option<String>,
    pub channel_used: Option<String>,
    pub sandbox: bool,
    pub created_at: i64,
}

fn services_path(provider: i64) -> String {
    format!("/providers/{provider}/services")
}

impl Api {
    pub async fn provider_of(&self, token: &str, application: &str) -> Result<Option<Provider>, PortalError> {
        let path = format!("/providers?application_id={}", segment(application));
        let found: Vec<Provider> = self.send(Method::GET, &path, token, None).await?.data()?;
        Ok(found.into_iter().next())
    }

    pub async fn make_provider(&self, token: &str, application: &str) -> Result<Provider, PortalError> {
        let body = json!({ "application_id": application });
        self.send(Method::POST, "/providers", token, Some(body)).await?.data()
    }

    pub async fn services(&self, token: &str, provider: i64) -> Result<Vec<Service>, PortalError> {
        self.send(Method::GET, &services_path(provider), token, None)
            .await?
            .data()
    }

    pub async fn create_service(
        &self,
        token: &str,
        provider: i64,
        body: Value,
    ) -> Result<Outcome<Service>, PortalError> {
        self.send(Method::POST, &services_path(provider), token, Some(body))
            .await?
            .outcome()
    }

    pub async fn rotate_service_token(&self, token: &str, provider: i64, service: i32) -> Result<Service, PortalError> {
        let path = format!("{}/{service}/token", services_path(provider));
        self.send(Method::POST, &path, token, None).await?.data()
    }

    pub async fn recent_notifications(
        &self,
        token: &str,
        provider: i64,
        service: i32,
    ) -> Result<Vec<Notification>, PortalError> {
        let path = format!("{}/{service}/notifications?size=50", services_path(provider));
        self.send(Method::GET, &path, token, None).await?.data()
    }
}
