//! Asking for the registration-platform role: a person asks once, an administrator approves
//! (the role is added) or refuses; nobody else may decide, and nothing is decided twice.

use crate::common;

use common::{ADMIN, Backend, TestApp, spawn};
use serde_json::{Value, json};

async fn ask(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    let (status, _, body) = app
        .json(
            app.http
                .post(app.url("/accounts/me/role-requests"))
                .bearer_auth(token)
                .json(&body),
        )
        .await;
    (status, body)
}

async fn decide(app: &TestApp, token: &str, id: &str, decision: &str) -> (u16, Value) {
    let (status, _, body) = app
        .json(
            app.http
                .post(app.url(&format!("/accounts/role-requests/{id}/decision")))
                .bearer_auth(token)
                .json(&json!({ "decision": decision })),
        )
        .await;
    (status, body)
}

async fn a_request_is_approved_once_and_grants_the_role(app: TestApp) {
    app.register_user("dora").await;
    let dora = app.login("dora", "password-123").await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    for (body, field) in [
        (json!({"role": "admin"}), "role"),
        (
            json!({"role": "registration_platform", "reason": "x".repeat(501)}),
            "reason",
        ),
    ] {
        let (status, error) = ask(&app, &dora, body).await;
        assert_eq!(status, 422, "{error}");
        assert_eq!(test_support::invalid_fields(&error), [field]);
    }
    let (status, request) = ask(
        &app,
        &dora,
        json!({"role": "registration_platform", "reason": "A sports club app"}),
    )
    .await;
    assert_eq!(status, 201, "{request}");
    let id = request["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(request["data"]["status"], "pending");
    let (status, _) = ask(&app, &dora, json!({"role": "registration_platform"})).await;
    assert_eq!(status, 409, "one pending request at a time");

    let (status, _, _) = app
        .json(app.http.get(app.url("/accounts/role-requests")).bearer_auth(&dora))
        .await;
    assert_eq!(status, 403, "only administrators see the requests");
    assert_eq!(decide(&app, &dora, &id, "approve").await.0, 403, "nor decide them");
    let (status, _, pending) = app
        .json(app.http.get(app.url("/accounts/role-requests")).bearer_auth(&admin))
        .await;
    assert_eq!(status, 200);
    assert_eq!(pending["data"][0]["username"], "dora");
    assert_eq!(decide(&app, &admin, &id, "maybe").await.0, 422);
    assert_eq!(decide(&app, &admin, "no-such-request", "approve").await.0, 404);
    let (status, decided) = decide(&app, &admin, &id, "approve").await;
    assert_eq!(
        (status, decided["data"]["status"].as_str()),
        (200, Some("approved")),
        "{decided}"
    );
    assert_eq!(decide(&app, &admin, &id, "refuse").await.0, 409, "decided once");

    let (_, _, me) = app.json(app.http.get(app.url("/accounts/me")).bearer_auth(&dora)).await;
    assert_eq!(me["data"]["roles"], json!(["registration_platform"]));
    let (status, _, _) = app
        .json(
            app.http
                .post(app.url("/applications"))
                .bearer_auth(&dora)
                .json(&json!({"name": "Club"})),
        )
        .await;
    assert_eq!(status, 201, "the approved role creates applications");
    let (status, _) = ask(&app, &dora, json!({"role": "registration_platform"})).await;
    assert_eq!(status, 409, "she has the role now");
    let (_, _, mine) = app
        .json(app.http.get(app.url("/accounts/me/role-requests")).bearer_auth(&dora))
        .await;
    assert_eq!(mine["data"][0]["status"], "approved");
}

async fn a_refused_request_grants_nothing(app: TestApp) {
    app.register_user("eve").await;
    let eve = app.login("eve", "password-123").await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let (_, request) = ask(&app, &eve, json!({"role": "registration_platform"})).await;
    let id = request["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(decide(&app, &admin, &id, "refuse").await.0, 200);
    let (_, _, me) = app.json(app.http.get(app.url("/accounts/me")).bearer_auth(&eve)).await;
    assert_eq!(me["data"]["roles"], json!([]));
    let (status, _) = ask(&app, &eve, json!({"role": "registration_platform"})).await;
    assert_eq!(status, 201, "after a refusal she may ask again");
}

macro_rules! backend_suite {
    ($name:ident, $backend:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn a_request_is_approved_once_and_grants_the_role() {
                super::a_request_is_approved_once_and_grants_the_role(spawn($backend).await).await;
            }

            #[tokio::test]
            async fn a_refused_request_grants_nothing() {
                super::a_refused_request_grants_nothing(spawn($backend).await).await;
            }
        }
    };
}

backend_suite!(sqlite_in_process, Backend::Sqlite(test_support::TestSqlite::create()));
backend_suite!(
    postgres_rabbitmq,
    Backend::Postgres(test_support::TestDatabase::create())
);
