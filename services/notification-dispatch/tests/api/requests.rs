//! `POST /Services` as seed 004 writes it: the seed's own body accepted, every refusal answered
//! as the seed's table says (none a 500), and a repeated request never sent twice.

use base64::Engine;
use serde_json::{Value, json};
use test_support::{Backend, invalid_fields};

use crate::on_both_backends;
use crate::support::{Notifier, Sender, start};

async fn ready(n: &Notifier) -> Sender {
    let sender = n
        .sender(
            "clinic",
            &["notification", "advertisement", "qr_code"],
            &["SMS", "FCM", "INAPP"],
        )
        .await;
    n.user("ana", Some("+5491155550000")).await;
    n.consent("ana", "clinic", &["profile", "notifications:send"]).await;
    let prefs = json!({"providers": {sender.provider_id.to_string(): {"advertisements": true}}});
    assert_eq!(
        n.as_user("ana", "PUT", "/notifications/preferences", Some(prefs))
            .await
            .0,
        200
    );
    sender
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

async fn the_seeds_own_example_is_accepted(backend: Backend) {
    let n = start(backend).await;
    let sender = ready(&n).await;
    // Seed 004's example, its Spanish keys and all.
    let body = sender.body(
        "ana",
        json!({
            "notification": {"titulo": "Clínica Dr. Nano. Turno", "mensaje": "Oftalmologo Lunes 29-10 a las 9:15Hs.", "canal": "SMS"},
            "advertisement": {"titulo": "Autos usados CHECHO", "mensaje": "Lleve su auto usado con Financiameiento ...", "canal": "FCM"}
        }),
    );
    let (status, answer, headers) = n.send(&sender, body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(keys(&answer), ["code", "data", "message", "success"]);
    assert_eq!(answer["success"], true);
    assert_eq!(answer["code"], "accepted");
    let data = &answer["data"];
    assert_eq!(keys(data), ["id", "notifications", "status_url"]);
    let parts = data["notifications"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(keys(&parts[0]), ["id", "kind", "status", "status_url"]);
    assert_eq!(parts[0]["kind"], "notification");
    assert_eq!(parts[1]["kind"], "advertisement");
    assert_eq!(parts[0]["status"], "queued");
    let id = data["id"].as_str().unwrap();
    assert!(id.starts_with("ntf_"), "{id}");
    assert_eq!(data["status_url"], format!("/Services/{id}"));
    assert_eq!(headers["location"], format!("/Services/{id}").as_str());
    let status = n.status_becomes(&sender, id, "delivered").await;
    assert_eq!(status["channel"], "SMS");
    assert_eq!(status["channel_used"], "SMS");
    assert_eq!(status["sandbox"], true, "make run's SMS is a sandbox: {status}");
    assert_eq!(status["sends"][0]["provider"], "sandbox-sms");
}

async fn every_bad_field_answers_400_naming_it(backend: Backend) {
    let n = start(backend).await;
    let sender = ready(&n).await;
    let not_an_image = base64::engine::general_purpose::STANDARD.encode(b"GIF89a, not a PNG");
    let body = sender.body(
        "ana",
        json!({
            // 33 accented letters: over 32 characters, though many more bytes.
            "notification": {"Tittle": "é".repeat(33), "Message": "m".repeat(167), "Cannel": "PIGEON", "Link": "javascript:alert(1)"},
            "advertisement": {"title": "Autos", "message": "Financiación", "channel": 2, "picture": not_an_image},
            "microPayment": {"amount": 10}
        }),
    );
    let (status, answer, _) = n.send(&sender, body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["success"], false);
    assert_eq!(
        invalid_fields(&answer),
        [
            "parameters.microPayment",
            "parameters.notification.title",
            "parameters.notification.message",
            "parameters.notification.channel",
            "parameters.notification.link",
            "parameters.advertisement.picture",
        ]
    );
    let reasons = answer["errors"].to_string();
    assert!(reasons.contains("service_not_offered"), "{reasons}");
    assert!(reasons.contains("33 given"), "{reasons}");
    // Fields the service does not offer, and a user nobody knows, in one answer.
    let sat = sender.body(
        "nobody",
        json!({"notification": {"title": "Hola", "message": "Satélite", "channel": "SAT"}}),
    );
    let (status, answer, _) = n.send(&sender, sat).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        invalid_fields(&answer),
        ["parameters.notification.channel", "parameters.destination"]
    );
    let (status, answer, _) = n.send(&sender, json!("not an object")).await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer, headers) = n.as_app("clinic", "GET", "/Services", None).await;
    assert_eq!(status, 405, "{answer}");
    assert_eq!(headers["allow"], "POST");
}

async fn the_wrong_caller_is_refused_403(backend: Backend) {
    let n = start(backend).await;
    let sender = ready(&n).await;
    let other = n.sender("garage", &["notification"], &["INAPP"]).await;
    let content = json!({"notification": {"title": "Turno", "message": "Lunes", "channel": "SMS"}});
    let mut wrong_token = sender.body("ana", content.clone());
    wrong_token["service_token"] = json!(other.token);
    let (status, answer, _) = n.send(&sender, wrong_token).await;
    assert_eq!((status, answer["code"].as_str()), (403, Some("invalid_service_token")));
    // The clinic's provider id, sent by the garage's application.
    let (status, answer, _) = n.send(&other, sender.body("ana", content.clone())).await;
    assert_eq!((status, answer["code"].as_str()), (403, Some("provider_not_yours")));
    let mut no_service = sender.body("ana", content);
    no_service["service_id"] = json!(77);
    assert_eq!(n.send(&sender, no_service).await.0, 404);
}

async fn users_decide_what_reaches_them(backend: Backend) {
    let n = start(backend).await;
    let sender = ready(&n).await;
    n.user("bob", None).await;
    let note = json!({"notification": {"title": "Turno", "message": "Lunes", "channel": "INAPP"}});
    let (status, answer, _) = n.send(&sender, sender.body("bob", note.clone())).await;
    assert_eq!((status, answer["code"].as_str()), (403, Some("no_consent")), "{answer}");
    n.consent("bob", "clinic", &["notifications:send"]).await;
    assert_eq!(n.send(&sender, sender.body("bob", note.clone())).await.0, 202);
    let ad = json!({"advertisement": {"title": "Autos", "message": "Oferta", "channel": "INAPP"}});
    let (status, answer, _) = n.send(&sender, sender.body("bob", ad)).await;
    assert_eq!((status, answer["code"].as_str()), (403, Some("no_opt_in")), "{answer}");
    // SMS only, and Bob has no phone number.
    let sms = json!({"notification": {"title": "Turno", "message": "Lunes", "channel": "SMS"}});
    let prefs = json!({"channels": {"INAPP": false, "FCM": false}});
    assert_eq!(
        n.as_user("bob", "PUT", "/notifications/preferences", Some(prefs))
            .await
            .0,
        200
    );
    let (status, answer, _) = n.send(&sender, sender.body("bob", sms)).await;
    assert_eq!((status, answer["code"].as_str()), (403, Some("no_contact")), "{answer}");
    let muted = json!({"providers": {sender.provider_id.to_string(): {"muted": true}}});
    assert_eq!(
        n.as_user("bob", "PUT", "/notifications/preferences", Some(muted))
            .await
            .0,
        200
    );
    let (status, answer, _) = n.send(&sender, sender.body("bob", note)).await;
    assert_eq!((status, answer["code"].as_str()), (403, Some("muted")), "{answer}");
    n.withdraw("ana", "clinic").await;
    let (status, answer, _) = n
        .send(
            &sender,
            sender.body(
                "ana",
                json!({"notification": {"title": "T", "message": "M", "channel": "INAPP"}}),
            ),
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (403, Some("no_consent")),
        "withdrawn: {answer}"
    );
}

async fn a_repeated_request_is_sent_once(backend: Backend) {
    let n = start(backend).await;
    let sender = ready(&n).await;
    let body = sender.body(
        "ana",
        json!({"notification": {"title": "Turno", "message": "Lunes", "channel": "INAPP"}}),
    );
    let key = [("idempotency-key", "turno-42")];
    let (status, first, _) = n
        .as_app_with("clinic", "POST", "/Services", Some(body.clone()), &key)
        .await;
    assert_eq!(status, 202, "{first}");
    let keyed = first["data"]["id"].as_str().unwrap().to_owned();
    let (status, again, headers) = n
        .as_app_with("clinic", "POST", "/Services", Some(body.clone()), &key)
        .await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["data"]["id"], first["data"]["id"]);
    assert_eq!(headers["idempotent-replayed"], "true");
    let mut other = body.clone();
    other["parameters"]["notification"]["message"] = json!("Martes");
    let (status, answer, _) = n.as_app_with("clinic", "POST", "/Services", Some(other), &key).await;
    assert_eq!((status, answer["code"].as_str()), (409, Some("idempotency_key_reused")));
    // The body's own reference works the same way.
    let mut referenced = body;
    referenced["reference"] = json!("turno-43");
    let first = n.send(&sender, referenced.clone()).await.1;
    let again = n.send(&sender, referenced).await.1;
    assert_eq!(first["data"]["id"], again["data"]["id"]);
    let id = first["data"]["id"].as_str().unwrap();
    n.status_becomes(&sender, &keyed, "delivered").await;
    n.status_becomes(&sender, id, "delivered").await;
    let (_, inbox, _) = n.as_user("ana", "GET", "/notifications/inbox", None).await;
    assert_eq!(inbox["data"]["total"], 2, "two requests, two entries: {inbox}");
}

/// Requests at the same time are queued together; those repeating one `Idempotency-Key` among
/// them still make one notification, and every other is accepted.
async fn requests_at_once_are_each_accepted_and_a_repeated_key_once(backend: Backend) {
    let n = start(backend).await;
    let sender = ready(&n).await;
    let body = |text: String| {
        sender.body(
            "ana",
            json!({"notification": {"title": "Turno", "message": text, "channel": "INAPP"}}),
        )
    };
    let key = [("idempotency-key", "same-for-all")];
    let distinct = (0..20).map(|i| n.as_app_with("clinic", "POST", "/Services", Some(body(format!("n{i}"))), &[]));
    let repeated = (0..5).map(|_| n.as_app_with("clinic", "POST", "/Services", Some(body("keyed".into())), &key));
    let (distinct, repeated) = tokio::join!(
        futures_util::future::join_all(distinct),
        futures_util::future::join_all(repeated)
    );
    let mut ids = std::collections::HashSet::new();
    for (status, answer, _) in &distinct {
        assert_eq!(*status, 202, "{answer}");
        ids.insert(answer["data"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 20, "twenty requests, twenty notifications");
    let keyed: std::collections::HashSet<_> = repeated
        .iter()
        .map(|(status, answer, _)| {
            assert_eq!(*status, 202, "{answer}");
            answer["data"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(keyed.len(), 1, "one key, one notification: {keyed:?}");
    for id in ids.iter().chain(&keyed) {
        n.status_becomes(&sender, id, "delivered").await;
    }
    let (_, inbox, _) = n.as_user("ana", "GET", "/notifications/inbox?size=50", None).await;
    assert_eq!(inbox["data"]["total"], 21, "{inbox}");
}

on_both_backends!(
    the_seeds_own_example_is_accepted,
    every_bad_field_answers_400_naming_it,
    the_wrong_caller_is_refused_403,
    users_decide_what_reaches_them,
    a_repeated_request_is_sent_once,
    requests_at_once_are_each_accepted_and_a_repeated_key_once
);
