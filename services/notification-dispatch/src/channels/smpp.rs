//! SMS over SMPP 3.4 (rusmppc): one transceiver bind per provider and replica, opened on the
//! first send and again after the connection drops; enquire_link keeps it alive. A text is
//! GSM-7 when the GSM alphabet holds it, UCS-2 (UTF-16, so emoji survive) otherwise, and split
//! into concatenated parts (UDH) past one SMS: 160/153 GSM characters, 70/67 UCS-2 units.
//! Delivery receipts (`deliver_sm`, esm_class 0x04) are matched to the notification by the
//! first part's message id. At most `window` submit_sm wait for their answer at once: an SMSC
//! throttles (ESME_RTHROTTLED) or drops a bind that sends more, so past the window a send waits
//! its turn instead of failing.

use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use rusmpp::extra::concatenation::{Concatenation, Concatenator, SubmitSmMultipartExt};
use rusmpp::extra::encoding::gsm7bit::Gsm7BitUnpacked;
use rusmpp::pdus::{BindTransceiver, DeliverSm, DeliverSmResp, SubmitSm};
use rusmpp::tlvs::TlvValue;
use rusmpp::types::COctetString;
use rusmpp::values::{DataCoding, EsmClass, InterfaceVersion, MessageType, Npi, RegisteredDelivery, Ton};
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use rusmppc::error::Error as SmppError;
use rusmppc::{Client, ConnectionBuilder, Event};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use settings::Span;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, Semaphore, mpsc};

use super::{Address, Outgoing, SendError, Sender, Sent};

fn thirty_seconds() -> Span {
    Span(Duration::from_secs(30))
}

fn ten() -> usize {
    10
}

#[derive(Debug, Clone, Deserialize)]
pub struct SmppSettings {
    /// `smpp://host:port`.
    pub url: String,
    pub system_id: String,
    pub password: SecretString,
    /// The sender phones show: a name of up to 11 letters, or a number.
    pub source_addr: String,
    /// How often the bind is checked with enquire_link.
    #[serde(default = "thirty_seconds")]
    pub enquire_link: Span,
    /// How many submit_sm may await their answer at once (the window the SMSC grants).
    #[serde(default = "ten")]
    pub window: usize,
}

/// A delivery receipt from an SMSC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub message_id: String,
    /// `DELIVRD`, `UNDELIV`, `EXPIRED`, `REJECTD`, …
    pub stat: String,
}

impl Receipt {
    pub fn delivered(&self) -> bool {
        self.stat.eq_ignore_ascii_case("DELIVRD")
    }

    /// Whether the message will never arrive.
    pub fn failed(&self) -> bool {
        matches!(
            self.stat.to_ascii_uppercase().as_str(),
            "UNDELIV" | "EXPIRED" | "REJECTD" | "DELETED"
        )
    }
}

pub struct Smpp {
    settings: SmppSettings,
    timeout: Duration,
    client: Mutex<Option<Client>>,
    receipts: mpsc::UnboundedSender<Receipt>,
    reference: AtomicU8,
    window: Semaphore,
}

impl Smpp {
    pub fn new(
        settings: &SmppSettings,
        timeout: Duration,
        receipts: mpsc::UnboundedSender<Receipt>,
    ) -> Result<Self, String> {
        if !settings.url.starts_with("smpp://") {
            return Err("url must be smpp://host:port".to_owned());
        }
        COctetString::<1, 16>::from_str(&settings.system_id)
            .map_err(|e| format!("system_id (at most 15 characters): {e}"))?;
        COctetString::<1, 9>::from_str(settings.password.expose_secret())
            .map_err(|_| "password: SMPP allows at most 8 characters".to_owned())?;
        COctetString::<1, 21>::from_str(&settings.source_addr).map_err(|e| format!("source_addr: {e}"))?;
        if settings.window == 0 {
            return Err("window must be at least 1".to_owned());
        }
        Ok(Self {
            settings: settings.clone(),
            timeout,
            client: Mutex::new(None),
            receipts,
            reference: AtomicU8::new(rand::random()),
            window: Semaphore::new(settings.window),
        })
    }

    /// The bound client, binding first when there is none (or it closed).
    async fn client(&self) -> Result<Client, SendError> {
        let mut held = self.client.lock().await;
        // Not `is_active()`: it pings the connection through its queue of actions, of which
        // rusmppc 0.4 reads five per wake-up without waking itself again. With many sends at
        // once, pings filled a wake-up and left submits unread until a timer fired: 10 s stalls.
        if let Some(client) = held.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let client = self.bind().await?;
        *held = Some(client.clone());
        Ok(client)
    }

    async fn bind(&self) -> Result<Client, SendError> {
        let s = &self.settings;
        let transient = |e: &dyn std::fmt::Display| SendError::transient(format!("smpp bind: {e}"));
        let address = s.url.trim_start_matches("smpp://").trim_end_matches('/');
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect(address))
            .await
            .map_err(|e| transient(&e))?
            .map_err(|e| transient(&e))?;
        // PDUs in the window are small: Nagle would hold each back until the last one's ACK.
        stream.set_nodelay(true).map_err(|e| transient(&e))?;
        let (client, events) = ConnectionBuilder::new()
            .enquire_link_interval(s.enquire_link.0)
            .enquire_link_response_timeout(self.timeout)
            .response_timeout(self.timeout)
            .disable_interface_version_check()
            .connected(stream);
        let bind = BindTransceiver::builder()
            .system_id(COctetString::from_str(&s.system_id).map_err(|e| transient(&e))?)
            .password(COctetString::from_str(s.password.expose_secret()).map_err(|e| transient(&e))?)
            .system_type(COctetString::empty())
            .interface_version(InterfaceVersion::Smpp3_4)
            .addr_ton(Ton::Unknown)
            .addr_npi(Npi::Unknown)
            .address_range(COctetString::empty())
            .build();
        client.bind_transceiver(bind).await.map_err(|e| transient(&e))?;
        tokio::spawn(listen(client.clone(), events, self.receipts.clone()));
        Ok(client)
    }

    fn template(&self, to: &str) -> Result<SubmitSm, SendError> {
        let rejected = |e: &dyn std::fmt::Display| SendError::Rejected {
            reason: format!("address: {e}"),
        };
        let source = &self.settings.source_addr;
        let alphanumeric = source.chars().any(|c| c.is_ascii_alphabetic());
        Ok(SubmitSm::builder()
            .source_addr_ton(if alphanumeric {
                Ton::Alphanumeric
            } else {
                Ton::International
            })
            .source_addr_npi(if alphanumeric { Npi::Unknown } else { Npi::Isdn })
            .source_addr(COctetString::from_str(source).map_err(|e| rejected(&e))?)
            .dest_addr_ton(Ton::International)
            .dest_addr_npi(Npi::Isdn)
            .destination_addr(COctetString::from_str(to.trim_start_matches('+')).map_err(|e| rejected(&e))?)
            // Not EsmClass::default(): that is 0x08, a delivery acknowledgement.
            .esm_class(EsmClass::from(0x00))
            .registered_delivery(RegisteredDelivery::from(0x01))
            .build())
    }
}

/// The text an SMS carries: title, message and link.
pub fn text(out: &Outgoing<'_>) -> String {
    let mut text = format!("{}: {}", out.title, out.message);
    if let Some(link) = out.link {
        text.push(' ');
        text.push_str(link);
    }
    text
}

/// UTF-16 big-endian, never splitting a surrogate pair (the crate's UCS-2 refuses emoji).
#[derive(Debug)]
struct Utf16;

#[derive(Debug, thiserror::Error)]
#[error("the text needs {0} parts; an SMS has at most 255")]
struct TooLong(usize);

impl Concatenator for Utf16 {
    type Error = TooLong;

    fn concatenate(&self, message: &str, max: usize, header: usize) -> Result<(Concatenation, DataCoding), TooLong> {
        let units: Vec<u16> = message.encode_utf16().collect();
        let bytes = |u: &[u16]| u.iter().flat_map(|c| c.to_be_bytes()).collect::<Vec<u8>>();
        if units.len() * 2 <= max {
            return Ok((Concatenation::Single(bytes(&units)), DataCoding::Ucs2));
        }
        let per_part = (max - header) / 2;
        let mut parts = Vec::new();
        let mut start = 0;
        while start < units.len() {
            let mut end = (start + per_part).min(units.len());
            if end < units.len() && (0xD800..0xDC00).contains(&units[end - 1]) {
                end -= 1;
            }
            parts.push(bytes(&units[start..end]));
            start = end;
        }
        if parts.len() > 255 {
            return Err(TooLong(parts.len()));
        }
        Ok((Concatenation::Concatenated(parts), DataCoding::Ucs2))
    }
}

/// The submit_sm PDUs of `text`: GSM-7 when it fits the alphabet, else UTF-16.
pub fn parts(template: SubmitSm, text: &str, reference: u8) -> Result<Vec<SubmitSm>, String> {
    // The concatenation header (05 00 03 ref total seq), which the builder subtracts.
    const UDH: usize = 6;
    let gsm = Gsm7BitUnpacked::new();
    match gsm.encode_to_vec(text) {
        // Unpacked septets: the SMSC packs them, so a part holds 160, or 153 when concatenated.
        Ok(septets) => template
            .multipart(text)
            .reference_u8(reference)
            .max_short_message_size(if septets.len() <= 160 { 160 } else { 153 + UDH })
            .build()
            .map_err(|e| e.to_string()),
        Err(_) => template
            .multipart(text)
            .reference_u8(reference)
            .encoder(Utf16)
            .build()
            .map_err(|e| e.to_string()),
    }
}

/// What a refused submit_sm means: the address or content is bad, or the SMSC is busy.
fn refused(status: CommandStatus) -> SendError {
    let reason = format!("SMSC refused: {status:?} (0x{:08X})", u32::from(status));
    match status {
        CommandStatus::EsmeRinvdstadr
        | CommandStatus::EsmeRinvdstton
        | CommandStatus::EsmeRinvdstnpi
        | CommandStatus::EsmeRinvmsglen => SendError::Rejected { reason },
        _ => SendError::transient(reason),
    }
}

#[async_trait]
impl Sender for Smpp {
    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, SendError> {
        let Address::Phone(to) = out.to else {
            return Err(SendError::Rejected {
                reason: "SMS needs a phone number".to_owned(),
            });
        };
        let reference = self.reference.fetch_add(1, Ordering::Relaxed);
        let pdus = parts(self.template(to)?, &text(out), reference).map_err(|reason| SendError::Rejected { reason })?;
        let client = self.client().await?;
        let mut first = None;
        for pdu in pdus {
            // Never closed: acquiring only waits.
            let Ok(_turn) = self.window.acquire().await else {
                return Err(SendError::transient("smpp: window closed"));
            };
            match client.submit_sm(pdu).await {
                Ok(resp) => {
                    first.get_or_insert_with(|| resp.message_id().as_str().to_owned());
                }
                Err(SmppError::UnexpectedResponse { response }) => return Err(refused(response.status())),
                Err(e) => {
                    // The bind is gone or stuck: the next send binds again.
                    self.client.lock().await.take();
                    return Err(SendError::transient(format!("smpp: {e}")));
                }
            }
        }
        Ok(Sent::Accepted {
            external_id: first,
            stale_devices: Vec::new(),
        })
    }

    async fn check(&self) -> Result<(), String> {
        self.client().await.map(drop).map_err(|e| e.to_string())
    }
}

/// Answers what the SMSC sends: receipts (passed on) and unbind.
async fn listen(
    client: Client,
    mut events: impl futures_util::Stream<Item = Event> + Unpin,
    receipts: mpsc::UnboundedSender<Receipt>,
) {
    while let Some(event) = events.next().await {
        let Event::Incoming(command) = event else { continue };
        incoming(&client, command, &receipts).await;
    }
}

async fn incoming(client: &Client, command: Command, receipts: &mpsc::UnboundedSender<Receipt>) {
    let sequence = command.sequence_number();
    match command.pdu() {
        Some(Pdu::DeliverSm(sm)) => {
            // Answered first: an SMSC waiting for the answer resends or throttles.
            if let Err(error) = client.deliver_sm_resp(sequence, DeliverSmResp::default()).await {
                tracing::warn!(%error, "deliver_sm not answered");
            }
            if let Some(receipt) = receipt(sm) {
                let _ = receipts.send(receipt);
            }
        }
        _ if command.id() == CommandId::Unbind => {
            let _ = client.unbind_resp(sequence).await;
        }
        _ => {}
    }
}

/// A `key:value` field of a receipt's text (`id:`, `stat:`).
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.split(' ').find_map(|word| {
        word.split_once(':')
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn receipt(sm: &DeliverSm) -> Option<Receipt> {
    if sm.esm_class.message_type != MessageType::ShortMessageContainsMCDeliveryReceipt {
        // A message from a phone, not a receipt.
        return None;
    }
    let text = String::from_utf8_lossy(sm.short_message().as_ref()).into_owned();
    let tlv_id = sm.tlvs().iter().find_map(|tlv| match tlv.value() {
        Some(TlvValue::ReceiptedMessageId(id)) => Some(id.as_str().to_owned()),
        _ => None,
    });
    Some(Receipt {
        message_id: tlv_id.or_else(|| field(&text, "id").map(str::to_owned))?,
        stat: field(&text, "stat").unwrap_or_default().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> SubmitSm {
        SubmitSm::builder()
            .destination_addr(COctetString::from_str("5491155550000").unwrap())
            .esm_class(EsmClass::from(0x00))
            .build()
    }

    #[test]
    fn texts_split_into_concatenated_parts_by_their_alphabet() {
        assert_eq!(parts(template(), &"a".repeat(160), 1).unwrap().len(), 1);
        let long = parts(template(), &"a".repeat(300), 1).unwrap();
        assert_eq!(long.len(), 2, "153 + 147");
        assert_eq!(long[0].data_coding, DataCoding::McSpecific);
        let accented = parts(template(), &"ç".repeat(70), 1).unwrap();
        assert_eq!(
            (accented.len(), accented[0].data_coding),
            (1, DataCoding::Ucs2),
            "ç is not GSM-7: UCS-2, 70 fit"
        );
        assert_eq!(parts(template(), &"ç".repeat(71), 1).unwrap().len(), 2);
        let emoji = parts(template(), &"🎉".repeat(40), 1).unwrap();
        assert_eq!(emoji.len(), 2, "surrogate pairs kept whole");
    }

    #[test]
    fn receipt_fields_are_read_from_the_text() {
        let text =
            "id:0a1b2c sub:001 dlvrd:001 submit date:2612011226 done date:2612011226 stat:DELIVRD err:000 text:Hi";
        assert_eq!(field(text, "id"), Some("0a1b2c"));
        assert_eq!(field(text, "stat"), Some("DELIVRD"));
        let r = Receipt {
            message_id: "x".into(),
            stat: "UNDELIV".into(),
        };
        assert!(r.failed() && !r.delivered());
    }
}
