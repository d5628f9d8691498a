//! E-mail over SMTP (lettre): one message per notification, its `Message-ID` derived from the
//! notification id so a receiving server (or a person) can tell a retry from a second message;
//! pictures and QR codes travel as inline attachments.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{Address, Outgoing, SendError, Sender, Sent};

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP: a relay on the same host or network only.
    None,
    /// STARTTLS required (submission, port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// The sender: `Notifications <notifications@example.com>`.
    pub from: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
}

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
}

impl Smtp {
    pub fn new(settings: &SmtpSettings, timeout: Duration) -> Result<Self, String> {
        let from: Mailbox = settings.from.parse().map_err(|e| format!("from: {e}"))?;
        let tls = match settings.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls | SmtpTls::Tls => {
                let parameters = TlsParameters::new(settings.host.clone()).map_err(|e| format!("tls: {e}"))?;
                if settings.tls == SmtpTls::Tls {
                    Tls::Wrapper(parameters)
                } else {
                    Tls::Required(parameters)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose_secret().to_owned()));
        }
        Ok(Self {
            transport: builder.build(),
            domain: from.email.domain().to_owned(),
            from,
        })
    }

    fn message(&self, out: &Outgoing<'_>, to: &str) -> Result<Message, SendError> {
        let to: Mailbox = to.parse().map_err(|e| SendError::Rejected {
            reason: format!("recipient address: {e}"),
        })?;
        let text = match out.link {
            Some(link) => format!("{}\n\n{link}\n", out.message),
            None => format!("{}\n", out.message),
        };
        let mut body = MultiPart::mixed().singlepart(SinglePart::plain(text));
        if let Some(picture) = out.picture.and_then(|p| STANDARD.decode(p).ok()) {
            let kind = if picture.starts_with(b"\x89PNG") {
                "image/png"
            } else {
                "image/jpeg"
            };
            body = body.singlepart(attachment("picture", picture, kind));
        }
        if let Some(svg) = out.qr_svg {
            body = body.singlepart(attachment("qr-code.svg", svg.as_bytes().to_vec(), "image/svg+xml"));
        }
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(out.title)
            .message_id(Some(format!("<{}@{}>", out.id, self.domain)))
            .multipart(body)
            .map_err(|e| SendError::Rejected {
                reason: format!("message: {e}"),
            })
    }
}

fn attachment(name: &str, bytes: Vec<u8>, kind: &str) -> SinglePart {
    let content_type = ContentType::parse(kind).unwrap_or(ContentType::TEXT_PLAIN);
    Attachment::new_inline(name.to_owned()).body(bytes, content_type)
}

#[async_trait]
impl Sender for Smtp {
    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, SendError> {
        let Address::Email(to) = out.to else {
            return Err(SendError::Rejected {
                reason: "e-mail needs an address".to_owned(),
            });
        };
        let message = self.message(out, to)?;
        match self.transport.send(message).await {
            Ok(response) => Ok(Sent::Accepted {
                external_id: response.message().next().map(str::to_owned),
                stale_devices: Vec::new(),
            }),
            Err(e) if e.is_permanent() => Err(SendError::Rejected {
                reason: format!("smtp: {e}"),
            }),
            Err(e) => Err(SendError::transient(format!("smtp: {e}"))),
        }
    }

    async fn check(&self) -> Result<(), String> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err("the server did not answer NOOP".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }
}
