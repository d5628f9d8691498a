//! Webhooks end to end, as partners and users meet them: an application subscribes through the
//! gateway with its own token; a user who signed in to it (the password grant records the
//! consent) changes their profile and the delivery arrives, verified by the `standardwebhooks`
//! packages of PyPI and npm; after the user withdraws the consent the application's tokens for
//! them stop working at once and nothing more about them arrives.

use serde_json::json;
use test_support::Backend;
use test_support::receiver::{Receiver, verify_with_packages};

use crate::resources::stack;

async fn users_decide_what_reaches_applications(backend: Backend) {
    let s = stack(backend).await;
    let receiver = Receiver::start();
    let crm = s
        .p
        .application(json!({"name": "CRM", "grant_types": ["password", "client_credentials"], "scopes": ["profile", "webhooks:manage"]}))
        .await;
    let res =
        s.p.http
            .get(format!("{}/webhooks/event-types", s.gw))
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 200, "the catalogue needs no token");

    let app_token = s.p.token(&crm, "webhooks:manage").await;
    let subscription = json!({"url": receiver.url, "event_types": ["user.updated"]});
    // The webhook service learns of the application from auth's event: 404 until then.
    let started = std::time::Instant::now();
    let (status, created) = loop {
        let answer = s
            .call("POST", "/webhooks/endpoints", &app_token, Some(subscription.clone()))
            .await;
        if answer.0 != 404 || started.elapsed() > std::time::Duration::from_secs(10) {
            break answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    assert_eq!(status, 201, "{created}");
    let secret = created["data"]["secret"].as_str().unwrap().to_owned();

    let ana = s.user("ana", &crm, "profile").await;
    let (status, _) = s
        .call("PATCH", "/users/me", &ana, Some(json!({"first_name": "Ana"})))
        .await;
    assert_eq!(status, 200);
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].json()["type"], "user.updated");
    let ana_id = got[0].json()["data"]["user_id"].as_str().unwrap().to_owned();
    verify_with_packages(&got[0], &secret);

    let (status, consents) = s.call("GET", "/accounts/me/consents", &ana, None).await;
    assert_eq!(
        (status, consents["data"][0]["client_id"].as_str()),
        (200, Some(crm.0.as_str())),
        "{consents}"
    );
    // A second token of hers at the same application: withdrawing ends it too.
    let ana_again = s.p.password_token(&crm, "ana", "ana-password-1", "profile").await;
    let (status, _) = s.call("GET", "/users/me", &ana_again, None).await;
    assert_eq!(status, 200, "the gateway has it cached now");
    let path = format!("/accounts/me/consents/{}", crm.0);
    let (status, _) = s.call("DELETE", &path, &ana, None).await;
    assert_eq!(status, 204);
    s.until(|| async { s.call("GET", "/users/me", &ana_again, None).await.0 == 401 })
        .await;
    // Her profile changes again, through the platform's own application.
    let own = s.p.login("ana", "ana-password-1").await;
    let change = json!({"first_name": "Ana Maria"});
    let (status, _) = s.call("PATCH", "/users/me", &own, Some(change)).await;
    assert_eq!(status, 200, "her other applications' tokens go on working");
    let carl = s.user("carl", &crm, "profile").await;
    s.call("PATCH", "/users/me", &carl, Some(json!({"first_name": "Carl"})))
        .await;
    let got = receiver.wait_for(2).await;
    assert_ne!(
        got[1].json()["data"]["user_id"],
        ana_id.as_str(),
        "nothing about ana after she withdrew"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn users_decide_what_reaches_applications_sqlite() {
    users_decide_what_reaches_applications(Backend::Sqlite).await;
}

#[tokio::test]
async fn users_decide_what_reaches_applications_postgres() {
    users_decide_what_reaches_applications(Backend::Postgres).await;
}
