//! The catalogue is public; endpoints are managed by their application or its owner, every
//! bad field is reported at once, and the SSRF guard refuses at creation.

use events::catalogue::ApplicationDeleted;
use serde_json::json;
use test_support::{Backend, invalid_fields};

use crate::support::{self, eventually};

crate::on_both_backends!(
    endpoints_are_managed_by_their_application_or_its_owner,
    bad_endpoints_are_refused_with_every_reason
);

#[tokio::test]
async fn the_catalogue_offers_public_types_with_their_scope() {
    let hooks = support::start(Backend::Sqlite).await;
    let res = reqwest::get(format!("{}/webhooks/event-types", hooks.api.base))
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "no token needed");
    let body: serde_json::Value = res.json().await.unwrap();
    let types = body["data"].as_array().unwrap();
    let named = |name: &str| types.iter().find(|t| t["name"] == name).cloned();
    let updated = named("user.updated").unwrap();
    assert_eq!(
        (updated["scope"].as_str(), updated["requires_consent"].as_bool()),
        (Some("profile"), Some(true))
    );
    assert_eq!(updated["example"]["type"], "user.updated");
    assert!(updated["schema"]["properties"]["user_id"].is_object(), "{updated}");
    let published = named("article.published").unwrap();
    assert_eq!(
        (published["scope"].as_str(), published["requires_consent"].as_bool()),
        (Some("blog:read"), Some(false))
    );
    assert!(named("webhook.test").is_some() && named("webhook.endpoint.disabled").is_some());
    for internal in [
        "token.revoked",
        "consent.granted",
        "user.registered",
        "application.registered",
    ] {
        assert!(named(internal).is_none(), "{internal} is internal");
    }
}

async fn endpoints_are_managed_by_their_application_or_its_owner(backend: Backend) {
    let hooks = support::start(backend).await;
    let receiver = test_support::receiver::Receiver::start();
    hooks.application("app1", "ana", &["profile"]).await;
    hooks.application("app2", "bob", &["profile"]).await;
    let body = json!({"url": receiver.url, "event_types": ["user.updated"], "application_id": "app1", "description": "CRM sync"});
    let (status, created, headers) = hooks
        .as_user("ana", "POST", "/webhooks/endpoints", Some(body.clone()))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ep_"));
    assert!(created["data"]["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["data"]["application_id"], "app1");
    let etag = headers["etag"].to_str().unwrap().to_owned();

    let (status, _, _) = hooks
        .as_user("bob", "POST", "/webhooks/endpoints", Some(body.clone()))
        .await;
    assert_eq!(status, 404, "bob does not own app1");
    let (status, refused, _) = hooks
        .as_user("ana", "POST", "/webhooks/endpoints", Some(json!({"url": receiver.url})))
        .await;
    assert_eq!(
        (status, invalid_fields(&refused)),
        (422, vec!["application_id".to_owned()])
    );
    let (status, own, _) = hooks
        .as_app(
            "app1",
            "POST",
            "/webhooks/endpoints",
            Some(json!({"url": receiver.url})),
        )
        .await;
    assert_eq!(status, 201, "an application registers its own: {own}");
    let (status, _, _) = hooks
        .as_app(
            "app1",
            "POST",
            "/webhooks/endpoints",
            Some(json!({"url": receiver.url, "application_id": "app2"})),
        )
        .await;
    assert_eq!(status, 403, "not another's");
    let unscoped = hooks
        .api
        .call_from(
            "app1",
            "GET",
            "/webhooks/endpoints",
            test_support::As {
                subject: "app1",
                scope: "profile",
            },
            None,
            &[],
        )
        .await;
    assert_eq!(unscoped.0, 403, "webhooks:manage is needed");

    let (_, listed, _) = hooks.as_user("ana", "GET", "/webhooks/endpoints", None).await;
    assert_eq!(listed["data"]["total"], 2);
    let (_, listed, _) = hooks.as_user("bob", "GET", "/webhooks/endpoints", None).await;
    assert_eq!(listed["data"]["total"], 0);
    let path = format!("/webhooks/endpoints/{id}");
    assert_eq!(
        hooks.as_user("bob", "GET", &path, None).await.0,
        404,
        "another's is missing"
    );
    assert_eq!(hooks.as_app("app2", "GET", &path, None).await.0, 404);

    let stale = hooks
        .api
        .call_from(
            "portal",
            "PATCH",
            &path,
            test_support::As {
                subject: "ana",
                scope: support::MANAGE,
            },
            Some(json!({"description": "x"})),
            &[("if-match", "\"v9\"")],
        )
        .await;
    assert_eq!(stale.0, 412);
    let changed = hooks
        .api
        .call_from(
            "portal",
            "PATCH",
            &path,
            test_support::As {
                subject: "ana",
                scope: support::MANAGE,
            },
            Some(json!({"description": "CRM", "rate_limit": 5})),
            &[("if-match", etag.as_str())],
        )
        .await;
    assert_eq!(changed.0, 200, "{}", changed.1);
    assert_eq!(
        (
            changed.1["data"]["version"].as_i64(),
            changed.1["data"]["rate_limit"].as_i64()
        ),
        (Some(2), Some(5))
    );
    let (_, cleared, _) = hooks
        .as_user(
            "ana",
            "PATCH",
            &path,
            Some(json!({"rate_limit": null, "enabled": false})),
        )
        .await;
    assert_eq!(
        (
            cleared["data"]["rate_limit"].is_null(),
            cleared["data"]["disabled_reason"].as_str()
        ),
        (true, Some("owner"))
    );
    assert_eq!(
        hooks
            .as_user("ana", "PATCH", &path, Some(json!({"colour": "red"})))
            .await
            .0,
        422,
        "unknown fields"
    );

    let secret_path = format!("{path}/secret");
    let (_, secret, _) = hooks.as_user("ana", "GET", &secret_path, None).await;
    assert_eq!(secret["data"]["secret"], created["data"]["secret"]);
    let (status, rotated, _) = hooks
        .as_user("ana", "POST", &format!("{secret_path}/rotate"), None)
        .await;
    assert_eq!(status, 200);
    assert_ne!(rotated["data"]["secret"], created["data"]["secret"]);
    assert!(rotated["data"]["previous_valid_until"].as_i64().unwrap() > storage::now_millis());

    assert_eq!(hooks.as_user("ana", "DELETE", &path, None).await.0, 204);
    assert_eq!(hooks.as_user("ana", "GET", &path, None).await.0, 404);

    hooks
        .publish(
            "app1",
            &ApplicationDeleted {
                client_id: "app1".parse().unwrap(),
            },
        )
        .await;
    eventually("the application's endpoints go with it", || async {
        hooks.as_app("app1", "GET", "/webhooks/endpoints", None).await.1["data"]["total"] == 0
    })
    .await;
}

async fn bad_endpoints_are_refused_with_every_reason(backend: Backend) {
    let hooks = support::start(backend).await;
    hooks.application("app1", "ana", &["profile"]).await;
    let bad = json!({"url": "ftp://example.com/x", "event_types": ["token.revoked"], "rate_limit": 0, "headers": {"Host": "evil"}});
    let (status, body, _) = hooks.as_app("app1", "POST", "/webhooks/endpoints", Some(bad)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        invalid_fields(&body),
        ["url", "event_types", "rate_limit", "headers.Host"]
    );
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.7/hook",
        "http://[::ffff:a9fe:a9fe]/",
        "http://user:pw@127.0.0.1/",
    ] {
        let (status, body, _) = hooks
            .as_app("app1", "POST", "/webhooks/endpoints", Some(json!({"url": url})))
            .await;
        assert_eq!(
            (status, invalid_fields(&body)),
            (422, vec!["url".to_owned()]),
            "{url}: {body}"
        );
    }
    let (status, body, _) = hooks
        .as_app(
            "app1",
            "POST",
            "/webhooks/endpoints",
            Some(json!({"url": "http://127.0.0.1:9/", "retries": 3})),
        )
        .await;
    assert_eq!(status, 422, "unknown fields are refused: {body}");
}
