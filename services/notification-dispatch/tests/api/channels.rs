//! Each channel end to end against its stand-in: SMS through a real SMPP session (long texts
//! in concatenated parts, GSM-7 or UCS-2 by content, the receipt turning the status to
//! delivered, failover to a second SMSC) and e-mail through a real SMTP server.

use notification_dispatch::channels::ProviderKind;
use notification_dispatch::channels::http::HttpSettings;
use serde_json::json;
use settings::Span;
use test_support::Backend;

use crate::fake_fcm::FakeFcm;
use crate::on_both_backends;
use crate::stand_ins::{Smsc, SmtpServer, entry};
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
    let mut n = start_with(backend, |s| s.channels.sms = vec![smsc.provider("smsc-primary")]).await;
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
    let providers = vec![down.provider("smsc-primary"), up.provider("smsc-secondary")];
    let n = start_with(backend, |s| s.channels.sms = providers).await;
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

async fn a_dropped_smpp_session_is_bound_again(backend: Backend) {
    let mut smsc = Smsc::start();
    let n = start_with(backend, |s| {
        s.channels.sms = vec![smsc.provider("smsc")];
        let second = Span::from_secs(1);
        s.dispatch.schedule = vec![Span::from_secs(0), second, second, second, second, second];
    })
    .await;
    let sender = ready(&n, "SMS").await;
    let first = accept(
        &n,
        &sender,
        json!({"title": "Turno", "message": "Lunes", "channel": "SMS"}),
    )
    .await;
    n.status_becomes(&sender, &first, "delivered").await;
    // The SMSC goes away: the bind is gone, and the next try fails, to be tried again.
    smsc.stop();
    let second = accept(
        &n,
        &sender,
        json!({"title": "Turno", "message": "Martes", "channel": "SMS"}),
    )
    .await;
    let started = std::time::Instant::now();
    loop {
        let (_, status, _) = n.as_app("clinic", "GET", &format!("/Services/{second}"), None).await;
        if status["data"]["attempts"].as_i64() >= Some(1) {
            assert_eq!(status["data"]["status"], "queued", "{status}");
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{status}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Back on the same port: the service binds again and the queued SMS goes.
    let smsc = smsc.restart();
    let status = n.status_becomes(&sender, &second, "delivered").await;
    assert!(status["attempts"].as_i64().unwrap() >= 2, "{status}");
    let last = smsc.submits().into_iter().last().unwrap();
    assert_eq!(last["text"], "Turno: Martes");
}

async fn an_undelivered_receipt_fails_the_notification(backend: Backend) {
    let smsc = Smsc::undelivering();
    let mut n = start_with(backend, |s| s.channels.sms = vec![smsc.provider("smsc")]).await;
    let sender = ready(&n, "SMS").await;
    let id = accept(
        &n,
        &sender,
        json!({"title": "Turno", "message": "Lunes", "channel": "SMS"}),
    )
    .await;
    let status = n.status_becomes(&sender, &id, "failed").await;
    assert_eq!(status["reason"], "undelivered: UNDELIV", "{status}");
    let failed = n.events.next("notification.failed").await;
    assert_eq!(failed.data["notification_id"], id.as_str());
    assert_eq!(smsc.submits().len(), 1, "not sent again: the SMSC took it");
}

/// A distant SMSC that throttles past 3 unanswered submit_sm: the sends fill the window,
/// none overruns it, and every one goes through first time.
async fn sends_keep_within_the_smscs_window_and_fill_it(backend: Backend) {
    let smsc = Smsc::distant(std::time::Duration::from_millis(200), 3);
    let n = start_with(backend, |s| s.channels.sms = vec![smsc.provider("smsc")]).await;
    let sender = ready(&n, "SMS").await;
    let mut ids = Vec::new();
    for i in 0..12 {
        let content = json!({"title": "Turno", "message": format!("Recordatorio {i}"), "channel": "SMS"});
        ids.push(accept(&n, &sender, content).await);
    }
    for id in &ids {
        n.status_becomes(&sender, id, "delivered").await;
    }
    let submits = smsc.submits();
    assert_eq!(submits.len(), 12, "each sent once, none throttled and sent again");
    assert!(submits.iter().all(|s| s["command_status"] == 0), "{submits:?}");
    let widest = submits.iter().filter_map(|s| s["outstanding"].as_u64()).max();
    assert_eq!(widest, Some(3), "sends wait for each other only past the window");
}

async fn an_email_reaches_the_smtp_server(backend: Backend) {
    let smtp = SmtpServer::start();
    let n = start_with(backend, |s| s.channels.email = vec![smtp.provider("smtp-primary")]).await;
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

async fn a_push_reaches_fcm_with_a_valid_oauth2_token(backend: Backend) {
    let fcm = FakeFcm::start();
    let n = start_with(backend, |s| s.channels.fcm = vec![fcm.provider("fcm")]).await;
    let sender = n.sender("clinic", &["notification"], &["FCM", "INAPP"]).await;
    n.user("ana", None).await;
    n.consent("ana", "clinic", &["notifications:send"]).await;
    for token in ["phone-of-ana", "old-tablet-of-ana"] {
        let device = json!({"token": token, "platform": "android"});
        assert_eq!(
            n.as_user("ana", "POST", "/notifications/devices", Some(device)).await.0,
            201
        );
    }
    fcm.unregister("old-tablet-of-ana");
    let id = accept(
        &n,
        &sender,
        json!({"title": "Turno", "message": "Lunes 9:15", "channel": "FCM", "urgent": true}),
    )
    .await;
    let status = n.status_becomes(&sender, &id, "sent").await;
    assert_eq!(status["sent_by"], "fcm");
    let messages = fcm.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0]["message"];
    assert_eq!(message["token"], "phone-of-ana");
    assert_eq!(message["notification"], json!({"title": "Turno", "body": "Lunes 9:15"}));
    assert_eq!(message["data"]["notification_id"], id.as_str());
    assert_eq!(
        message["android"]["collapse_key"],
        id.as_str(),
        "a retry replaces, not doubles"
    );
    let (_, devices, _) = n.as_user("ana", "GET", "/notifications/devices", None).await;
    assert_eq!(
        devices["data"].as_array().unwrap().len(),
        1,
        "the unregistered token was dropped: {devices}"
    );
    // 503 with Retry-After: tried again later, with the cached access token.
    fcm.answer(&[(503, Some(1))]);
    let id = accept(
        &n,
        &sender,
        json!({"title": "Turno", "message": "Martes", "channel": "FCM"}),
    )
    .await;
    let status = n.status_becomes(&sender, &id, "sent").await;
    let sends = status["sends"].as_array().unwrap();
    assert_eq!(sends.len(), 2, "{status}");
    assert!(
        sends[1]["attempted_at"].as_i64().unwrap() - sends[0]["attempted_at"].as_i64().unwrap() >= 1000,
        "{status}"
    );
    assert_eq!(fcm.tokens_issued(), 1, "the access token is cached");
    // No registered device left: push gives way to the inbox.
    fcm.unregister("phone-of-ana");
    let id = accept(
        &n,
        &sender,
        json!({"title": "Turno", "message": "Miércoles", "channel": "FCM"}),
    )
    .await;
    let status = n.status_becomes(&sender, &id, "delivered").await;
    assert_eq!(status["channel_used"], "INAPP", "{status}");
}

async fn sat_goes_to_a_signed_http_provider(backend: Backend) {
    let gateway = test_support::receiver::Receiver::start();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let sat = HttpSettings {
        url: gateway.url.clone(),
        secret: secret.into(),
    };
    let n = start_with(backend, |s| {
        s.channels.sat = vec![entry("sat-gateway", ProviderKind::Http(sat))]
    })
    .await;
    let sender = ready(&n, "SAT").await;
    gateway.answer(&[(500, &[])]);
    let id = accept(
        &n,
        &sender,
        json!({"title": "Alerta", "message": "Tormenta en la ruta 40", "channel": "SAT"}),
    )
    .await;
    let status = n.status_becomes(&sender, &id, "sent").await;
    assert_eq!(
        status["sends"].as_array().unwrap().len(),
        2,
        "a 500 is tried again: {status}"
    );
    let got = gateway.wait_for(2).await;
    assert_eq!(got[0].header("webhook-id"), id.as_str());
    assert_eq!(got[1].header("webhook-id"), id.as_str(), "stable across retries");
    assert_eq!(got[1].json()["data"]["user_id"], "ana");
    assert_eq!(got[1].json()["data"]["title"], "Alerta");
    test_support::receiver::verify_with_packages(&got[1], secret);
}

on_both_backends!(
    sat_goes_to_a_signed_http_provider,
    a_push_reaches_fcm_with_a_valid_oauth2_token,
    a_long_sms_arrives_in_parts_and_its_receipt_delivers_it,
    a_second_smsc_takes_over_from_a_failing_one,
    a_dropped_smpp_session_is_bound_again,
    sends_keep_within_the_smscs_window_and_fill_it,
    an_undelivered_receipt_fails_the_notification,
    an_email_reaches_the_smtp_server
);
