//! Each channel end to end against its stand-in: SMS through a real SMPP session (long texts
//! in concatenated parts, GSM-7 or UCS-2 by content, the receipt turning the status to
//! delivered, failover to a second SMSC) and e-mail through a real SMTP server.

use serde_json::json;
use test_support::Backend;

use crate::on_both_backends;
use crate::stand_ins::{Smsc, SmtpServer};
use crate::support::{Notifier, Sender, start_with};

const PHONE: &str = "+5491155550000";

async fn ready(n: &Notifier, channel: &str) -> Sender {
    let sender = n.sender("clinic", &["notification"], &[channel]).await;
    n.user("ana", Some(PHONE)).await;
    n.consent("ana", "clinic", &["notifications:send"]).await;
    sender
}

async fn accept(n: &Notifier, sender: &Sender, content: serde_json::Value) -> String {
    let (status, body, _) = n
        .send(sender, sender.body("ana", json!({"notification": content})))
        .await;
    assert_eq!(status, 202, "{body}");
    body["data"]["id"].as_str().unwrap().to_owned()
}

async fn a_long_sms_arrives_in_parts_and_its_receipt_delivers_it(backend: Backend) {
    let smsc = Smsc::start();
    let mut n = start_with(backend, &[("channels.sms", json!([smsc.provider("smsc-primary")]))]).await;
    let sender = ready(&n, "SMS").await;
    let title = "Clinica Dr. Nano. Turno";
    let message = "Oftalmologo lunes 29-10 a las 9:15. Traiga su documento y la orden medica. ".repeat(3);
    let message = &message[..166];
    let link = "https://clinic.example/turnos/2026/10/29/0915/confirmar?paciente=ana&sede=centro";
    let id = accept(
        &n,
        &sender,
        json!({"title": title, "message": message, "channel": "SMS", "link": link}),
    )
    .await;
    let parts = smsc.wait_for(2).await;
    let text = format!("{title}: {message} {link}");
    assert!(text.chars().count() >= 270, "{}", text.chars().count());
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert_eq!(parts[0]["destination_addr"], "5491155550000");
    assert_eq!(parts[0]["source_addr"], "Clinic");
    assert_eq!(parts[0]["data_coding"], 0, "GSM-7");
    assert_eq!(
        (parts[0]["concat"]["total"].as_u64(), parts[1]["concat"]["seq"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(parts[1]["reassembled_text"], text.as_str());
    let status = n.status_becomes(&sender, &id, "delivered").await;
    assert_eq!(status["sent_by"], "smsc-primary");
    assert_eq!(status["sandbox"], false);
    n.events.next("notification.sent").await;
    let delivered = n.events.next("notification.delivered").await;
    assert_eq!(
        (
            delivered.data["notification_id"].as_str(),
            delivered.data["channel"].as_str()
        ),
        (Some(id.as_str()), Some("SMS"))
    );
    // Accents outside the GSM alphabet: UCS-2.
    let id = accept(
        &n,
        &sender,
        json!({"title": "Turno confirmado ✓", "message": "Día 29, 9:15 h", "channel": 1}),
    )
    .await;
    let third = &smsc.wait_for(3).await[2];
    assert_eq!(third["data_coding"], 8, "{third}");
    assert_eq!(third["text"], "Turno confirmado ✓: Día 29, 9:15 h");
    n.status_becomes(&sender, &id, "delivered").await;
}

async fn a_second_smsc_takes_over_from_a_failing_one(backend: Backend) {
    let (down, up) = (Smsc::failing(), Smsc::start());
    let providers = json!([down.provider("smsc-primary"), up.provider("smsc-secondary")]);
    let n = start_with(backend, &[("channels.sms", providers)]).await;
    let sender = ready(&n, "SMS").await;
    let id = accept(
        &n,
        &sender,
        json!({"title": "Turno", "message": "Lunes 9:15", "channel": "SMS"}),
    )
    .await;
    let status = n.status_becomes(&sender, &id, "delivered").await;
    assert_eq!(status["sent_by"], "smsc-secondary", "{status}");
    let sends = status["sends"].as_array().unwrap();
    assert_eq!(
        (sends[0]["provider"].as_str(), sends[0]["outcome"].as_str()),
        (Some("smsc-primary"), Some("failed"))
    );
    assert!(
        sends[0]["error"].as_str().unwrap().contains("EsmeRsyserr"),
        "{}",
        sends[0]
    );
    assert_eq!(down.submits().len(), 1, "the primary refused it once");
    assert_eq!(up.submits().len(), 1, "the secondary took it, once");
}

async fn an_email_reaches_the_smtp_server(backend: Backend) {
    let smtp = SmtpServer::start();
    let n = start_with(backend, &[("channels.email", json!([smtp.provider("smtp-primary")]))]).await;
    let sender = n.sender("clinic", &["notification", "qr_code"], &["EMAIL"]).await;
    n.user("ana", None).await;
    n.consent("ana", "clinic", &["notifications:send"]).await;
    let id = accept(
        &n,
        &sender,
        json!({"title": "Turno", "message": "Oftalmólogo lunes 9:15", "channel": "EMAIL"}),
    )
    .await;
    // SMTP has no delivery receipts: `sent` is as far as it goes.
    let status = n.status_becomes(&sender, &id, "sent").await;
    assert_eq!(status["sent_by"], "smtp-primary");
    let mail = &smtp.wait_for(1).await[0];
    assert!(mail.contains("To: ana@example.com"), "{mail}");
    assert!(mail.contains("Subject: Turno"), "{mail}");
    assert!(mail.contains(&format!("Message-ID: <{id}@clinic.example>")), "{mail}");
    let (_, ticket, _) = n
        .send(
            &sender,
            sender.body(
                "ana",
                json!({"qr_code": {"title": "Entrada", "message": "Fila 3", "channel": "EMAIL", "data": "TICKET-42"}}),
            ),
        )
        .await;
    n.status_becomes(&sender, ticket["data"]["id"].as_str().unwrap(), "sent")
        .await;
    let mails = smtp.wait_for(2).await;
    let with_qr = mails.iter().find(|m| m.contains("Subject: Entrada")).unwrap();
    assert!(
        with_qr.contains("image/svg+xml") && with_qr.contains("qr-code.svg"),
        "{with_qr}"
    );
}

on_both_backends!(
    a_long_sms_arrives_in_parts_and_its_receipt_delivers_it,
    a_second_smsc_takes_over_from_a_failing_one,
    an_email_reaches_the_smtp_server
);
