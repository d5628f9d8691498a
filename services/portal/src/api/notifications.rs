//! Notification-dispatch's API for the person themself: preferences (one document, replaced
//! whole, conditional on its ETag) and the in-app inbox.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{Api, Outcome, Paged, segment};
use crate::error::PortalError;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuietHours {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProviderChoice {
    #[serde(default)]
    pub muted: bool,
    #[serde(default)]
    pub advertisements: bool,
    #[serde(default)]
    pub channels: BTreeMap<String, bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Preferences {
    pub time_zone: String,
    pub quiet_hours: Option<QuietHours>,
    #[serde(default)]
    pub channels: BTreeMap<String, bool>,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderChoice>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InboxItem {
    pub id: String,
    pub provider_id: i64,
    pub kind: String,
    pub channel: String,
    pub sandbox: bool,
    pub title: String,
    pub message: String,
    pub link: Option<String>,
    pub created_at: i64,
    pub read_at: Option<i64>,
}

impl Api {
    /// The preferences and their ETag.
    pub async fn preferences(&self, token: &str) -> Result<(Preferences, String), PortalError> {
        let reply = self
            .send(Method::GET, "/notifications/preferences", token, None)
            .await?;
        let etag = reply.etag.clone().unwrap_or_default();
        Ok((reply.data()?, etag))
    }

    pub async fn replace_preferences(
        &self,
        token: &str,
        prefs: &Preferences,
        etag: &str,
    ) -> Result<Outcome<Preferences>, PortalError> {
        let body = serde_json::to_value(prefs).map_err(PortalError::unavailable)?;
        self.send_if(Method::PUT, "/notifications/preferences", token, Some(body), Some(etag))
            .await?
            .outcome()
    }

    pub async fn inbox(&self, token: &str) -> Result<Vec<InboxItem>, PortalError> {
        let page: Paged<InboxItem> = self
            .send(Method::GET, "/notifications/inbox?size=50", token, None)
            .await?
            .data()?;
        Ok(page.items)
    }

    pub async fn mark_read(&self, token: &str, id: &str) -> Result<(), PortalError> {
        let path = format!("/notifications/inbox/{}/read", segment(id));
        self.send(Method::POST, &path, token, None)
            .await?
            .data::<Option<serde_json::Value>>()
            .map(drop)
    }
}
