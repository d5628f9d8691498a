//! Push over FCM HTTP v1 (`POST {api}/v1/projects/{project}/messages:send`), authorized by a
//! service account: a JWT signed with its key is exchanged for an access token (RFC 7523, the
//! JWT bearer grant), cached until shortly before it expires and fetched again on a 401. One
//! message per device; `UNREGISTERED` tokens are dropped; 429 and 503 back off (`Retry-After`).
//! The notification id is the collapse key, so a retried message replaces, not doubles, the
//! one on the device.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::{Address, Outgoing, SendError, Sender, Sent, retry_after};

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

fn fcm_api() -> String {
    "https://fcm.googleapis.com".to_owned()
}

/// The parts of a service-account key file FCM needs.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceAccount {
    pub project_id: String,
    pub client_email: String,
    pub private_key: SecretString,
    pub token_uri: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FcmSettings {
    /// The service-account key file (JSON, as the Firebase console downloads it).
    pub credentials_file: String,
    /// FCM's address; tests point it at their fake.
    #[serde(default = "fcm_api")]
    pub api_url: String,
}

struct Token {
    value: String,
    until: Instant,
}

pub struct Fcm {
    account: ServiceAccount,
    key: EncodingKey,
    send_url: String,
    http: reqwest::Client,
    token: Mutex<Option<Token>>,
}

/// FCM's error code (`UNREGISTERED`, `INVALID_ARGUMENT`, `QUOTA_EXCEEDED`, …).
fn error_code(body: &Value) -> Option<&str> {
    let details = body["error"]["details"].as_array()?;
    details.iter().find_map(|d| d["errorCode"].as_str())
}

enum DeviceOutcome {
    Sent(String),
    Gone,
    Failed(SendError),
}

impl Fcm {
    pub fn new(settings: &FcmSettings, timeout: Duration) -> Result<Self, String> {
        let text = std::fs::read_to_string(&settings.credentials_file)
            .map_err(|e| format!("credentials_file {}: {e}", settings.credentials_file))?;
        let account: ServiceAccount = serde_json::from_str(&text).map_err(|e| format!("credentials_file: {e}"))?;
        let key = EncodingKey::from_rsa_pem(account.private_key.expose_secret().as_bytes())
            .map_err(|e| format!("credentials_file private_key: {e}"))?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            send_url: format!(
                "{}/v1/projects/{}/messages:send",
                settings.api_url.trim_end_matches('/'),
                account.project_id
            ),
            account,
            key,
            http,
            token: Mutex::new(None),
        })
    }

    /// An access token, from the cache or the token endpoint.
    async fn access_token(&self) -> Result<String, SendError> {
        let mut held = self.token.lock().await;
        if let Some(token) = held.as_ref().filter(|t| t.until > Instant::now()) {
            return Ok(token.value.clone());
        }
        let now = chrono::Utc::now().timestamp();
        let claims = json!({"iss": self.account.client_email, "scope": SCOPE, "aud": self.account.token_uri, "iat": now, "exp": now + 3600});
        let assertion = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| SendError::transient(format!("fcm assertion: {e}")))?;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ];
        let response = self
            .http
            .post(&self.account.token_uri)
            .form(&form)
            .send()
            .await
            .map_err(|e| SendError::transient(format!("fcm token: {e}")))?;
        if !response.status().is_success() {
            return Err(SendError::transient(format!("fcm token: {}", response.status())));
        }
        let body: Value = response
            .json()
            .await
            .map_err(|e| SendError::transient(format!("fcm token: {e}")))?;
        let value = body["access_token"]
            .as_str()
            .ok_or_else(|| SendError::transient("fcm token: no access_token"))?
            .to_owned();
        // A minute early, so no send carries a token that expires on the way.
        let lifetime = body["expires_in"].as_u64().unwrap_or(3600).saturating_sub(60);
        *held = Some(Token {
            value: value.clone(),
            until: Instant::now() + Duration::from_secs(lifetime),
        });
        Ok(value)
    }

    fn message(out: &Outgoing<'_>, device: &str) -> Value {
        let mut data = json!({"notification_id": out.id, "kind": out.kind.name()});
        if let Some(link) = out.link {
            data["link"] = json!(link);
        }
        if let Some(picture) = out.picture {
            data["picture"] = json!(picture);
        }
        if let Some(qr) = out.qr_svg {
            data["qr_code_svg"] = json!(qr);
        }
        json!({"message": {
            "token": device,
            "notification": {"title": out.title, "body": out.message},
            "data": data,
            "android": {"collapse_key": out.id},
            "apns": {"headers": {"apns-collapse-id": out.id}},
        }})
    }

    async fn send_one(&self, out: &Outgoing<'_>, device: &str) -> DeviceOutcome {
        let body = Self::message(out, device);
        for fresh in [false, true] {
            let token = match self.access_token().await {
                Ok(token) => token,
                Err(e) => return DeviceOutcome::Failed(e),
            };
            let response = match self
                .http
                .post(&self.send_url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
            {
                Ok(response) => response,
                Err(e) => return DeviceOutcome::Failed(SendError::transient(format!("fcm: {e}"))),
            };
            let status = response.status();
            let wait = retry_after(&response);
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            match status {
                s if s.is_success() => {
                    return DeviceOutcome::Sent(answer["name"].as_str().unwrap_or_default().to_owned());
                }
                // The cached token was refused: fetch another once.
                StatusCode::UNAUTHORIZED if !fresh => {
                    self.token.lock().await.take();
                }
                StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST
                    if matches!(error_code(&answer), Some("UNREGISTERED" | "INVALID_ARGUMENT")) =>
                {
                    return DeviceOutcome::Gone;
                }
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                    return DeviceOutcome::Failed(SendError::Transient {
                        reason: format!("fcm: {status}"),
                        retry_after: wait,
                    });
                }
                s if s.is_client_error() => {
                    return DeviceOutcome::Failed(SendError::Rejected {
                        reason: format!("fcm: {status} {}", error_code(&answer).unwrap_or_default()),
                    });
                }
                _ => return DeviceOutcome::Failed(SendError::transient(format!("fcm: {status}"))),
            }
        }
        DeviceOutcome::Failed(SendError::transient("fcm: 401 with a fresh token"))
    }
}

#[async_trait]
impl Sender for Fcm {
    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, SendError> {
        let Address::Devices(devices) = out.to else {
            return Err(SendError::Rejected {
                reason: "push needs a device".to_owned(),
            });
        };
        let (mut sent, mut gone, mut failure) = (None, Vec::new(), None);
        for device in devices {
            match self.send_one(out, device).await {
                DeviceOutcome::Sent(name) => {
                    sent.get_or_insert(name);
                }
                DeviceOutcome::Gone => gone.push(device.clone()),
                DeviceOutcome::Failed(e) => failure = Some(e),
            }
        }
        match (sent, failure) {
            (Some(name), _) => Ok(Sent::Accepted {
                external_id: Some(name),
                stale_devices: gone,
            }),
            (None, Some(e)) => Err(e),
            (None, None) => Err(SendError::Unreachable {
                reason: "every device token is unregistered".to_owned(),
                stale_devices: gone,
            }),
        }
    }

    async fn check(&self) -> Result<(), String> {
        self.access_token().await.map(drop).map_err(|e| e.to_string())
    }
}
