//! A generic provider over signed HTTP: each notification is POSTed as JSON to the provider's
//! URL, signed as Standard Webhooks sign (`webhook-id` = the notification id, stable across
//! retries so the provider can deduplicate). The SAT channel goes through it: seed 004 names
//! SAT without defining it, so the platform hands SAT notifications to whichever gateway the
//! operator configures.

use std::time::Duration;

use async_trait::async_trait;
use chrono::SecondsFormat;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::{Address, Outgoing, SendError, Sender, Sent, retry_after};

#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    pub url: String,
    /// A Standard Webhooks secret (`whsec_…`) the provider verifies signatures with.
    pub secret: SecretString,
}

pub struct SignedHttp {
    url: String,
    secret: SecretString,
    http: reqwest::Client,
}

impl SignedHttp {
    pub fn new(settings: &HttpSettings, timeout: Duration) -> Result<Self, String> {
        let url = url::Url::parse(&settings.url).map_err(|e| format!("url: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("url must be http(s)".to_owned());
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            url: settings.url.clone(),
            secret: settings.secret.clone(),
            http,
        })
    }
}

#[async_trait]
impl Sender for SignedHttp {
    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, SendError> {
        let user = match out.to {
            Address::User(user) => user,
            _ => {
                return Err(SendError::Rejected {
                    reason: "the HTTP provider is addressed by user id".to_owned(),
                });
            }
        };
        let now = chrono::Utc::now();
        let body = json!({
            "type": "notification.send",
            "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
            "data": {"notification_id": out.id, "user_id": user, "kind": out.kind.name(), "title": out.title,
                     "message": out.message, "link": out.link, "picture": out.picture, "qr_code_svg": out.qr_svg},
        })
        .to_string();
        let timestamp = now.timestamp();
        let signature = webhook_signatures::header(&[self.secret.expose_secret()], out.id, timestamp, &body);
        let response = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("webhook-id", out.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::transient(format!("http provider: {e}")))?;
        let status = response.status();
        let retry_after = retry_after(&response);
        match status {
            s if s.is_success() => Ok(Sent::Accepted {
                external_id: None,
                stale_devices: Vec::new(),
            }),
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => Err(SendError::Transient {
                reason: format!("http provider: {status}"),
                retry_after,
            }),
            s if s.is_client_error() => Err(SendError::Rejected {
                reason: format!("http provider: {status}"),
            }),
            _ => Err(SendError::transient(format!("http provider: {status}"))),
        }
    }

    async fn check(&self) -> Result<(), String> {
        // Any answer means the provider is there; only a connection failure is not.
        self.http
            .head(&self.url)
            .send()
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}
