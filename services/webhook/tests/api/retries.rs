//! Failed attempts are retried on the schedule and logged; `Retry-After` is honoured; `410`
//! disables the endpoint and says so; resend and recover make messages due again.

use std::time::Duration;

use events::catalogue::WebhookEndpointDisabled;
use serde_json::json;
use settings::Span;
use test_support::Backend;

use crate::support;
use test_support::receiver::Receiver;

crate::on_both_backends!(
    failures_are_retried_and_logged_then_delivered_once,
    retry_after_is_honoured_and_gone_endpoints_are_disabled,
    resend_and_recover_make_messages_due_again,
    an_endpoint_failing_too_long_is_disabled,
);

async fn an_endpoint_failing_too_long_is_disabled(backend: Backend) {
    let mut hooks = support::start_with(backend, |s| {
        let retry = Span::from_millis(400);
        s.delivery.schedule = vec![Span::from_secs(0), retry, retry, retry, retry, retry];
        s.delivery.disable_after = Span::from_secs(1);
    })
    .await;
    let receiver = Receiver::start();
    let no_headers: &[(&str, &str)] = &[];
    receiver.answer(&[(500, no_headers); 10]);
    hooks.application("crm", "owner", &[]).await;
    let (id, _) = hooks.endpoint("crm", json!({"url": receiver.url})).await;
    hooks
        .as_app("crm", "POST", &format!("/webhooks/endpoints/{id}/test"), None)
        .await;
    let disabled: WebhookEndpointDisabled = hooks
        .events
        .next("webhook.endpoint.disabled")
        .await
        .payload()
        .unwrap()
        .unwrap();
    assert_eq!(
        (disabled.endpoint_id.as_str(), disabled.reason.as_str()),
        (id.as_str(), "failing")
    );
    let attempts = receiver.received().len();
    assert!(
        (3..=5).contains(&attempts),
        "{attempts} attempts in a second of failing"
    );
    let metrics = reqwest::get(format!("{}/metrics", hooks.api.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("webhook_attempts_total{outcome=\"disabled\",service=\"webhook\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("webhook_attempts_total{outcome=\"retrying\","),
        "{metrics}"
    );
}

async fn failures_are_retried_and_logged_then_delivered_once(backend: Backend) {
    let hooks = support::start(backend).await;
    let receiver = Receiver::start();
    hooks.application("crm", "owner", &[]).await;
    let (id, _) = hooks.endpoint("crm", json!({"url": receiver.url})).await;
    receiver.answer(&[(500, &[]), (500, &[])]);
    hooks
        .as_app("crm", "POST", &format!("/webhooks/endpoints/{id}/test"), None)
        .await;
    let got = receiver.wait_for(3).await;
    assert!(
        got.iter()
            .all(|r| r.header("webhook-id") == got[0].header("webhook-id")),
        "one id across retries"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.received().len(), 3, "no attempt after the success");
    let attempts = hooks.attempts("crm", &id).await;
    let statuses: Vec<_> = attempts.iter().map(|a| a["status_code"].as_i64().unwrap()).collect();
    assert_eq!(statuses, [200, 500, 500], "newest first");
    assert_eq!(attempts[1]["error_kind"], "status");
    assert_eq!(attempts[1]["response_body"], "answered 500");
    let (_, failed, _) = hooks
        .as_app(
            "crm",
            "GET",
            &format!("/webhooks/endpoints/{id}/attempts?status=failed"),
            None,
        )
        .await;
    assert_eq!(failed["data"]["total"], 2);
}

async fn retry_after_is_honoured_and_gone_endpoints_are_disabled(backend: Backend) {
    let mut hooks = support::start(backend).await;
    let receiver = Receiver::start();
    hooks.application("crm", "owner", &[]).await;
    let (id, _) = hooks.endpoint("crm", json!({"url": receiver.url})).await;
    receiver.answer(&[(429, &[("retry-after", "2")])]);
    hooks
        .as_app("crm", "POST", &format!("/webhooks/endpoints/{id}/test"), None)
        .await;
    let got = receiver.wait_for(2).await;
    let waited = got[1].at - got[0].at;
    assert!(
        waited >= Duration::from_secs(2),
        "the second attempt came after {waited:?}"
    );

    receiver.answer(&[(410, &[])]);
    hooks
        .as_app("crm", "POST", &format!("/webhooks/endpoints/{id}/test"), None)
        .await;
    let disabled: WebhookEndpointDisabled = hooks
        .events
        .next("webhook.endpoint.disabled")
        .await
        .payload()
        .unwrap()
        .unwrap();
    assert_eq!(
        (disabled.endpoint_id.as_str(), disabled.reason.as_str()),
        (id.as_str(), "gone")
    );
    let (_, endpoint, _) = hooks
        .as_app("crm", "GET", &format!("/webhooks/endpoints/{id}"), None)
        .await;
    assert_eq!(
        (
            endpoint["data"]["enabled"].as_bool(),
            endpoint["data"]["disabled_reason"].as_str()
        ),
        (Some(false), Some("gone"))
    );
    hooks
        .as_app("crm", "POST", &format!("/webhooks/endpoints/{id}/test"), None)
        .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.received().len(), 3, "a disabled endpoint receives nothing");
}

async fn resend_and_recover_make_messages_due_again(backend: Backend) {
    let hooks = support::start(backend).await;
    let receiver = Receiver::start();
    hooks.application("crm", "owner", &[]).await;
    let (id, _) = hooks.endpoint("crm", json!({"url": receiver.url})).await;
    let (_, test, _) = hooks
        .as_app("crm", "POST", &format!("/webhooks/endpoints/{id}/test"), None)
        .await;
    let message = test["data"]["message_id"].as_str().unwrap().to_owned();
    receiver.wait_for(1).await;
    let (status, _, _) = hooks
        .as_app(
            "crm",
            "POST",
            &format!("/webhooks/endpoints/{id}/messages/{message}/resend"),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].header("webhook-id"), message, "the same message again");
    let (status, _, _) = hooks
        .as_app(
            "crm",
            "POST",
            &format!("/webhooks/endpoints/{id}/messages/msg_none/resend"),
            None,
        )
        .await;
    assert_eq!(status, 404);

    receiver.answer(&[(500, &[]), (500, &[]), (500, &[])]);
    hooks
        .as_app("crm", "POST", &format!("/webhooks/endpoints/{id}/test"), None)
        .await;
    receiver.wait_for(5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received().len(),
        5,
        "the schedule is spent after three attempts"
    );
    let since = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let (status, recovered, _) = hooks
        .as_app(
            "crm",
            "POST",
            &format!("/webhooks/endpoints/{id}/recover"),
            Some(json!({"since": since})),
        )
        .await;
    assert_eq!(
        (status, recovered["data"]["recovered"].as_i64()),
        (202, Some(1)),
        "{recovered}"
    );
    let got = receiver.wait_for(6).await;
    assert_eq!(got[5].header("webhook-id"), got[4].header("webhook-id"));
    let (status, _, _) = hooks
        .as_app(
            "crm",
            "POST",
            &format!("/webhooks/endpoints/{id}/recover"),
            Some(json!({"since": "2020-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, 422, "beyond the recover window");

    let purged = hooks
        .db
        .run(|c| Ok(webhook::store::purge(c, storage::now_millis() + 1)?))
        .await
        .unwrap();
    assert_eq!(purged, 2, "messages past retention go: the two test messages");
    assert!(hooks.attempts("crm", &id).await.is_empty(), "with their attempts");
}
