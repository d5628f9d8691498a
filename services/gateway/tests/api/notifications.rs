//! Seed 004's services API end to end, as a service provider and a user meet it: the provider's
//! application registers through the gateway with its own token, a user signs in to it
//! (granting `notifications:send`), the seed's own body (Spanish keys) is accepted with a real
//! token, the notification reaches the user's inbox, and its status comes back to the provider
//! by webhook. A user who never authorized the provider gets nothing.

use serde_json::json;
use test_support::Backend;
use test_support::receiver::{Receiver, verify_with_packages};

use crate::resources::{Stack, stack};

async fn until_known(s: &Stack, token: &str, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    // The service learns of the application from auth's event: 404 until then.
    let started = std::time::Instant::now();
    loop {
        let answer = s.call("POST", path, token, Some(body.clone())).await;
        if answer.0 != 404 || started.elapsed() > std::time::Duration::from_secs(10) {
            return answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

async fn providers_notify_users_who_authorized_them(backend: Backend) {
    let s = stack(backend).await;
    let clinic =
        s.p.application(
            json!({"name": "Clinic", "grant_types": ["password", "client_credentials"],
            "scopes": ["profile", "notifications", "notifications:send", "webhooks:manage"]}),
        )
        .await;
    let app = s.p.token(&clinic, "notifications:send webhooks:manage").await;
    let (status, provider) = until_known(&s, &app, "/providers", json!({})).await;
    assert_eq!(status, 201, "{provider}");
    let provider_id = provider["data"]["provider_id"].as_i64().unwrap();
    let service =
        json!({"name": "Turnos", "kinds": ["notification", "advertisement"], "channels": ["SMS", "FCM", "INAPP"]});
    let (status, service) = s
        .call(
            "POST",
            &format!("/providers/{provider_id}/services"),
            &app,
            Some(service),
        )
        .await;
    assert_eq!(status, 201, "{service}");
    let receiver = Receiver::start();
    let hook = json!({"url": receiver.url, "event_types": ["notification.delivered"]});
    let (status, endpoint) = until_known(&s, &app, "/webhooks/endpoints", hook).await;
    assert_eq!(status, 201, "{endpoint}");

    let ana = s.user("ana", &clinic, "profile notifications:send").await;
    let (_, me) = s.call("GET", "/users/me", &ana, None).await;
    let ana_id = me["data"]["id"]
        .as_str()
        .or(me["data"]["user_id"].as_str())
        .unwrap()
        .to_owned();
    let body = |user: &str| {
        json!({
            "provider_id": provider_id,
            "service_token": service["data"]["service_token"],
            "service_id": service["data"]["service_id"],
            "parameters": {
                "destination": user,
                "notification": {"titulo": "Clínica Dr. Nano. Turno", "mensaje": "Oftalmologo Lunes 29-10 a las 9:15Hs.", "canal": "SMS"}
            }
        })
    };
    // The consent reaches the notification service by event: until then, 403 no_consent.
    let started = std::time::Instant::now();
    let (status, accepted) = loop {
        let answer = s.call("POST", "/Services", &app, Some(body(&ana_id))).await;
        if answer.0 != 403 || started.elapsed() > std::time::Duration::from_secs(10) {
            break answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    assert_eq!(status, 202, "{accepted}");
    let status_url = accepted["data"]["status_url"].as_str().unwrap().to_owned();
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].json()["type"], "notification.delivered");
    assert_eq!(got[0].json()["data"]["notification_id"], accepted["data"]["id"]);
    verify_with_packages(&got[0], endpoint["data"]["secret"].as_str().unwrap());
    let (status, state) = s.call("GET", &status_url, &app, None).await;
    assert_eq!(
        (status, state["data"]["status"].as_str()),
        (200, Some("delivered")),
        "{state}"
    );
    // No phone, no device: the service's channels fall back to the inbox.
    assert_eq!(state["data"]["channel_used"], "INAPP");

    let inbox_token =
        s.p.password_token(&clinic, "ana", "ana-password-1", "notifications")
            .await;
    let (status, inbox) = s.call("GET", "/notifications/inbox", &inbox_token, None).await;
    assert_eq!(status, 200, "{inbox}");
    // Beside the platform's own "confirm your e-mail", which may land before or after it.
    let titles: Vec<&str> = inbox["data"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["title"].as_str())
        .collect();
    assert!(titles.contains(&"Clínica Dr. Nano. Turno"), "{inbox}");
    let (status, _) = s.call("GET", "/notifications/inbox", &ana, None).await;
    assert_eq!(status, 403, "her inbox needs the `notifications` scope");

    // Her phone number, set in her profile, reaches the notification service: SMS now (the
    // embedded SMS provider is a sandbox).
    let (status, _) = s
        .call("PATCH", "/users/me", &ana, Some(json!({"phone": "+5491155550000"})))
        .await;
    assert_eq!(status, 200);
    s.until(|| async {
        let (_, accepted) = s.call("POST", "/Services", &app, Some(body(&ana_id))).await;
        let url = accepted["data"]["status_url"].as_str().unwrap_or_default().to_owned();
        let mut state = json!(null);
        for _ in 0..100 {
            state = s.call("GET", &url, &app, None).await.1;
            if state["data"]["status"] == "delivered" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        state["data"]["channel_used"] == "SMS"
    })
    .await;

    // Bob never signed in to the clinic's application.
    let other =
        s.p.application(json!({"name": "Other", "grant_types": ["password"], "scopes": ["profile"]}))
            .await;
    s.user("bob", &other, "profile").await;
    let bob_admin = s.p.login("bob", "bob-password-1").await;
    let (_, bob) = s.call("GET", "/users/me", &bob_admin, None).await;
    let bob_id = bob["data"]["id"]
        .as_str()
        .or(bob["data"]["user_id"].as_str())
        .unwrap()
        .to_owned();
    let (status, refused) = s.call("POST", "/Services", &app, Some(body(&bob_id))).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("no_consent")),
        "{refused}"
    );
    let (status, _) = s.call("POST", "/Services", &bob_admin, Some(body(&ana_id))).await;
    assert_eq!(status, 403, "a token without notifications:send");
}

#[tokio::test]
async fn providers_notify_users_who_authorized_them_sqlite() {
    providers_notify_users_who_authorized_them(Backend::Sqlite).await;
}

#[tokio::test]
async fn providers_notify_users_who_authorized_them_postgres() {
    providers_notify_users_who_authorized_them(Backend::Postgres).await;
}
