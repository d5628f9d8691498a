//! The providers behind each channel, tried in the configured order (the second is the first's
//! failover), each behind the small [`Sender`] trait: `sandbox` (records what would have been
//! sent), `smtp` (e-mail), `smpp` (SMS), `fcm` (push), `http` (SAT, signed JSON). A provider that keeps failing is skipped for a while
//! (its breaker).

mod breaker;
pub mod fcm;
pub mod http;
pub mod sandbox;
pub mod smpp;
pub mod smtp;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use settings::SettingsError;

use crate::DispatchSettings;
use crate::domain::{Channel, Kind};
pub use breaker::Breaker;

/// `[[channels.<channel>]]`: one provider of a channel.
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderEntry {
    pub name: String,
    /// Sends per second at most, shared by replicas.
    #[serde(default)]
    pub rate_limit: Option<f64>,
    #[serde(flatten)]
    pub kind: ProviderKind,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProviderKind {
    Sandbox,
    Smtp(smtp::SmtpSettings),
    Smpp(smpp::SmppSettings),
    Fcm(fcm::FcmSettings),
    Http(http::HttpSettings),
}

/// `[channels]`: each channel's providers, in order. The in-app inbox needs none.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChannelsSettings {
    #[serde(default)]
    pub sms: Vec<ProviderEntry>,
    #[serde(default)]
    pub fcm: Vec<ProviderEntry>,
    #[serde(default)]
    pub email: Vec<ProviderEntry>,
    #[serde(default)]
    pub sat: Vec<ProviderEntry>,
}

impl ChannelsSettings {
    fn entries(&self) -> [(Channel, &[ProviderEntry]); 4] {
        [
            (Channel::Sms, &self.sms),
            (Channel::Fcm, &self.fcm),
            (Channel::Email, &self.email),
            (Channel::Sat, &self.sat),
        ]
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        let mut names = HashSet::new();
        for (channel, entries) in self.entries() {
            let key = format!("channels.{}", channel.name().to_lowercase());
            for entry in entries {
                if entry.name.trim().is_empty() || !names.insert(entry.name.clone()) {
                    return Err(settings::rule(&key, "every provider needs a name of its own"));
                }
                if entry.rate_limit.is_some_and(|r| r.is_nan() || r <= 0.0) {
                    return Err(settings::rule(&key, "rate_limit must be more than 0"));
                }
                let fits = match &entry.kind {
                    ProviderKind::Sandbox => true,
                    ProviderKind::Smtp(_) => channel == Channel::Email,
                    ProviderKind::Smpp(_) => channel == Channel::Sms,
                    ProviderKind::Fcm(_) => channel == Channel::Fcm,
                    // Addressed by user id: SAT's only kind of address.
                    ProviderKind::Http(_) => channel == Channel::Sat,
                };
                if !fits {
                    return Err(settings::rule(
                        &key,
                        "this kind of provider does not carry this channel",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Where one notification goes on one channel.
#[derive(Debug, Clone, Copy)]
pub enum Address<'a> {
    Phone(&'a str),
    Email(&'a str),
    Devices(&'a [String]),
    User(&'a str),
}

/// One notification as a provider sends it.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub id: &'a str,
    pub kind: Kind,
    pub title: &'a str,
    pub message: &'a str,
    pub link: Option<&'a str>,
    /// Base64 PNG or JPEG.
    pub picture: Option<&'a str>,
    /// A ticket or coupon as an SVG image.
    pub qr_svg: Option<&'a str>,
    pub to: Address<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Taken by the provider; a delivery receipt may follow, matched by `external_id`. Device
    /// tokens the provider no longer knows are dropped.
    Accepted {
        external_id: Option<String>,
        stale_devices: Vec<String>,
    },
    /// A sandbox recorded it: delivered to the sandbox log (the user's inbox, labelled).
    Recorded,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again, here later or with the next provider.
    #[error("{reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// This notification will never be taken (refused content or address).
    #[error("{reason}")]
    Rejected { reason: String },
    /// The address is gone (a device token unregistered): try another channel.
    #[error("{reason}")]
    Unreachable { reason: String, stale_devices: Vec<String> },
}

impl SendError {
    pub fn transient(reason: impl Into<String>) -> Self {
        Self::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }
}

#[async_trait]
pub trait Sender: Send + Sync + 'static {
    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, SendError>;

    /// Whether the provider can be reached now (for `/readyz` and the log at start).
    async fn check(&self) -> Result<(), String>;

    fn sandbox(&self) -> bool {
        false
    }
}

/// `Retry-After` in seconds, when an HTTP provider's answer has one.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let secs = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// A configured provider with its breaker.
pub struct Provider {
    pub name: String,
    pub channel: Channel,
    pub rate_limit: Option<f64>,
    pub sender: Arc<dyn Sender>,
    pub breaker: Breaker,
    kind: &'static str,
}

/// Every channel's providers, in order.
pub struct Senders {
    by_channel: BTreeMap<Channel, Vec<Arc<Provider>>>,
}

impl Senders {
    /// The configured providers; SMSCs' delivery receipts go to `receipts`.
    pub fn build(
        settings: &ChannelsSettings,
        dispatch: &DispatchSettings,
        receipts: &tokio::sync::mpsc::UnboundedSender<smpp::Receipt>,
    ) -> Result<Self, String> {
        let mut by_channel = BTreeMap::new();
        for (channel, entries) in settings.entries() {
            let mut providers = Vec::new();
            for entry in entries {
                let named = |e: String| format!("{}: {e}", entry.name);
                let timeout = dispatch.send_timeout.0;
                let (sender, kind): (Arc<dyn Sender>, &'static str) = match &entry.kind {
                    ProviderKind::Sandbox => (Arc::new(sandbox::Sandbox), "sandbox"),
                    ProviderKind::Smtp(s) => (Arc::new(smtp::Smtp::new(s, timeout).map_err(named)?), "smtp"),
                    ProviderKind::Smpp(s) => (
                        Arc::new(smpp::Smpp::new(s, timeout, receipts.clone()).map_err(named)?),
                        "smpp",
                    ),
                    ProviderKind::Fcm(s) => (Arc::new(fcm::Fcm::new(s, timeout).map_err(named)?), "fcm"),
                    ProviderKind::Http(s) => (Arc::new(http::SignedHttp::new(s, timeout).map_err(named)?), "http"),
                };
                providers.push(Arc::new(Provider {
                    name: entry.name.clone(),
                    channel,
                    rate_limit: entry.rate_limit,
                    sender,
                    breaker: Breaker::new(dispatch.breaker_failures, dispatch.breaker_cooldown.0),
                    kind,
                }));
            }
            by_channel.insert(channel, providers);
        }
        Ok(Self { by_channel })
    }

    /// From tests: given providers for channels.
    pub fn of(providers: Vec<Arc<Provider>>) -> Self {
        let mut by_channel: BTreeMap<Channel, Vec<Arc<Provider>>> = BTreeMap::new();
        for p in providers {
            by_channel.entry(p.channel).or_default().push(p);
        }
        Self { by_channel }
    }

    pub fn of_channel(&self, channel: Channel) -> &[Arc<Provider>] {
        self.by_channel.get(&channel).map_or(&[], Vec::as_slice)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.by_channel.values().flatten()
    }

    /// One line per channel for the log at start; sandboxes are named as such.
    pub fn describe(&self) -> Vec<String> {
        Channel::ALL
            .iter()
            .filter(|c| **c != Channel::Inapp)
            .map(|c| {
                let names: Vec<String> = self
                    .of_channel(*c)
                    .iter()
                    .map(|p| {
                        if p.sender.sandbox() {
                            format!("{} (SANDBOX: recorded, not sent)", p.name)
                        } else {
                            format!("{} ({})", p.name, p.kind)
                        }
                    })
                    .collect();
                let names = if names.is_empty() {
                    "none: notifications fall back to other channels".to_owned()
                } else {
                    names.join(", then ")
                };
                format!("channel {}: {names}", c.name())
            })
            .collect()
    }
}

impl Provider {
    /// From tests: a provider of `channel` sending with `sender`.
    pub fn new(name: &str, channel: Channel, sender: Arc<dyn Sender>, breaker: Breaker) -> Self {
        Self {
            name: name.to_owned(),
            channel,
            rate_limit: None,
            sender,
            breaker,
            kind: "custom",
        }
    }
}
