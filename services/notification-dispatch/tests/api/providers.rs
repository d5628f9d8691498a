//! Providers and their services: who may register them, the service token shown once and
//! rotated, and every bad field of a service named.

use serde_json::json;
use test_support::{Backend, invalid_fields};

use crate::on_both_backends;
use crate::support::start;

async fn an_application_becomes_a_provider_once(backend: Backend) {
    let n = start(backend).await;
    n.application("clinic", "dr-nano").await;
    n.application("garage", "checho").await;
    let (status, body, _) = n.as_app("clinic", "POST", "/providers", Some(json!({}))).await;
    assert_eq!(status, 201, "{body}");
    let id = body["data"]["provider_id"].as_i64().unwrap();
    assert!(id > 0 && id < (1 << 53), "a JavaScript-safe int64: {id}");
    assert_eq!(body["data"]["application_id"], "clinic");
    let (status, body, _) = n.as_app("clinic", "POST", "/providers", Some(json!({}))).await;
    assert_eq!(status, 409, "{body}");
    let path = format!("/providers/{id}");
    assert_eq!(n.as_app("clinic", "GET", &path, None).await.0, 200);
    assert_eq!(n.as_owner("dr-nano", "GET", &path, None).await.0, 200, "its owner");
    assert_eq!(
        n.as_app("garage", "GET", &path, None).await.0,
        404,
        "another's is missing"
    );
    assert_eq!(n.as_owner("checho", "GET", &path, None).await.0, 404);
    assert_eq!(n.as_app("clinic", "GET", "/providers/abc", None).await.0, 404);
    let (status, body, _) = n
        .as_app(
            "clinic",
            "POST",
            "/providers",
            Some(json!({"application_id": "garage"})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body, _) = n.as_owner("checho", "POST", "/providers", Some(json!({}))).await;
    assert_eq!(status, 422, "a user names the application: {body}");
    let (status, body, _) = n
        .as_owner(
            "checho",
            "POST",
            "/providers",
            Some(json!({"application_id": "clinic"})),
        )
        .await;
    assert_eq!(status, 404, "not their application: {body}");
    let (status, body, _) = n
        .as_owner(
            "checho",
            "POST",
            "/providers",
            Some(json!({"application_id": "garage"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body, _) = n
        .as_owner("dr-nano", "GET", "/providers?application_id=clinic", None)
        .await;
    assert_eq!(
        (status, body["data"][0]["provider_id"].as_i64()),
        (200, Some(id)),
        "found by application: {body}"
    );
    let (_, body, _) = n.as_app("clinic", "GET", "/providers", None).await;
    assert_eq!(
        body["data"][0]["provider_id"].as_i64(),
        Some(id),
        "an application finds itself"
    );
    let (_, body, _) = n
        .as_owner("checho", "GET", "/providers?application_id=clinic", None)
        .await;
    assert_eq!(body["data"], json!([]), "not theirs: nothing to find");
    assert_eq!(n.as_owner("checho", "GET", "/providers", None).await.0, 422);
}

async fn services_show_their_token_once_and_rotate_it(backend: Backend) {
    let n = start(backend).await;
    let sender = n.sender("clinic", &["notification"], &["INAPP"]).await;
    let services = format!("/providers/{}/services", sender.provider_id);
    let (status, body, _) = n.as_app("clinic", "GET", &services, None).await;
    assert_eq!(status, 200);
    let listed = &body["data"][0];
    assert_eq!(listed["service_id"], sender.service_id);
    assert_eq!(listed["kinds"], json!(["notification"]));
    assert_eq!(listed["channels"], json!(["INAPP"]));
    assert!(listed.get("service_token").is_none(), "never listed: {listed}");
    let (status, body, _) = n
        .as_app(
            "clinic",
            "POST",
            &services,
            Some(json!({"name": " ", "kinds": ["coupon"], "channels": ["SMS", "sms", "PIGEON"], "rate_limit": 0})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        invalid_fields(&body),
        ["name", "kinds[0]", "channels[1]", "channels[2]", "rate_limit"]
    );
    let rotate = format!("{services}/{}/token", sender.service_id);
    let (status, body, _) = n.as_app("clinic", "POST", &rotate, None).await;
    assert_eq!(status, 200, "{body}");
    let fresh = body["data"]["service_token"].as_str().unwrap().to_owned();
    assert_ne!(fresh, sender.token);
    n.user("ana", None).await;
    n.consent("ana", "clinic", &["notifications:send"]).await;
    let content = json!({"notification": {"title": "Turno", "message": "Lunes 9:15", "channel": "INAPP"}});
    let (status, body, _) = n.send(&sender, sender.body("ana", content.clone())).await;
    assert_eq!(status, 403, "the old token stopped working: {body}");
    assert_eq!(body["code"], "invalid_service_token");
    let mut with_fresh = sender.body("ana", content);
    with_fresh["service_token"] = json!(fresh);
    let (status, body, _) = n.send(&sender, with_fresh).await;
    assert_eq!(status, 202, "{body}");
    let recent = format!("{services}/{}/notifications", sender.service_id);
    let (status, body, _) = n.as_app("clinic", "GET", &recent, None).await;
    assert_eq!(status, 200, "{body}");
    let listed = body["data"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "the accepted one, not the refused: {body}");
    assert_eq!(listed[0]["kind"], "notification");
    assert!(listed[0]["status"].is_string());
    assert_eq!(
        n.as_app("clinic", "GET", &format!("{recent}?size=0"), None).await.0,
        422
    );
    assert_eq!(
        n.as_app("clinic", "GET", &format!("{services}/99/notifications"), None)
            .await
            .0,
        404
    );
    assert_eq!(
        n.as_app("clinic", "POST", &format!("{services}/99/token"), None)
            .await
            .0,
        404
    );
}

on_both_backends!(
    an_application_becomes_a_provider_once,
    services_show_their_token_once_and_rotate_it
);
