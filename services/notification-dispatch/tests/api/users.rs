//! A user's own pages: preferences (one document, every bad field named, ETags), devices, and
//! what a deleted user leaves behind (nothing).

use serde_json::json;
use test_support::{Backend, invalid_fields};

use crate::on_both_backends;
use crate::support::{eventually, start};

async fn preferences_are_one_document_with_an_etag(backend: Backend) {
    let n = start(backend).await;
    let (status, body, headers) = n.as_user("ana", "GET", "/notifications/preferences", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["time_zone"], "UTC", "defaults: {body}");
    let first = headers["etag"].to_str().unwrap().to_owned();
    let doc = json!({"time_zone": "America/Bogota", "quiet_hours": {"start": "22:00", "end": "07:00"},
        "channels": {"SMS": false}, "providers": {"42": {"advertisements": true, "channels": {"EMAIL": false}}}});
    let (status, body, headers) = n
        .as_user("ana", "PUT", "/notifications/preferences", Some(doc.clone()))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!({"time_zone": "America/Bogota", "quiet_hours": {"start": "22:00", "end": "07:00"},
        "channels": {"SMS": false}, "providers": {"42": {"muted": false, "advertisements": true, "channels": {"EMAIL": false}}}})
    );
    let second = headers["etag"].to_str().unwrap().to_owned();
    assert_ne!(first, second);
    let stale = n
        .api
        .call_from(
            "user-app",
            "PUT",
            "/notifications/preferences",
            test_support::As {
                subject: "ana",
                scope: "notifications",
            },
            Some(doc),
            &[("if-match", &first)],
        )
        .await;
    assert_eq!(stale.0, 412, "{}", stale.1);
    let bad = json!({"time_zone": "Mars/Olympus", "quiet_hours": {"start": "7", "end": "07:00"}, "channels": {"PIGEON": true}});
    let (status, body, _) = n.as_user("ana", "PUT", "/notifications/preferences", Some(bad)).await;
    assert_eq!(status, 422);
    assert_eq!(
        invalid_fields(&body),
        ["time_zone", "quiet_hours.start", "channels.PIGEON"]
    );
    let (status, body, _) = n.as_user("bob", "GET", "/notifications/preferences", None).await;
    assert_eq!(
        (status, body["data"]["time_zone"].as_str()),
        (200, Some("UTC")),
        "each user their own"
    );
    assert_eq!(
        n.as_app("clinic", "GET", "/notifications/preferences", None).await.0,
        403
    );
}

async fn devices_belong_to_their_user(backend: Backend) {
    let n = start(backend).await;
    let (status, body, _) = n
        .as_user(
            "ana",
            "POST",
            "/notifications/devices",
            Some(json!({"token": "tok-1", "platform": "iOS"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["platform"], "ios");
    assert!(body["data"].get("token").is_none(), "a token is not shown back");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    let (status, body, _) = n
        .as_user(
            "ana",
            "POST",
            "/notifications/devices",
            Some(json!({"token": "has space", "platform": "palm"})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(invalid_fields(&body), ["token", "platform"]);
    // The schema's maxLength counts the spaces around the token too (Schemathesis found it).
    let padded = format!(" {} ", "t".repeat(4095));
    let (status, body, _) = n
        .as_user(
            "ana",
            "POST",
            "/notifications/devices",
            Some(json!({"token": padded, "platform": "web"})),
        )
        .await;
    assert_eq!(
        (status, invalid_fields(&body)),
        (422, vec!["token".to_owned()]),
        "{body}"
    );
    // The same token registered by another user moves to them.
    assert_eq!(
        n.as_user(
            "bob",
            "POST",
            "/notifications/devices",
            Some(json!({"token": "tok-1", "platform": "ios"}))
        )
        .await
        .0,
        201
    );
    let (_, listed, _) = n.as_user("ana", "GET", "/notifications/devices", None).await;
    assert_eq!(listed["data"], json!([]));
    assert_eq!(
        n.as_user("ana", "DELETE", &format!("/notifications/devices/{id}"), None)
            .await
            .0,
        404
    );
    let (_, listed, _) = n.as_user("bob", "GET", "/notifications/devices", None).await;
    let bobs = listed["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        n.as_user("bob", "DELETE", &format!("/notifications/devices/{bobs}"), None)
            .await
            .0,
        204
    );
}

async fn a_deleted_user_leaves_nothing_behind(backend: Backend) {
    let mut n = start(backend).await;
    let sender = n.sender("clinic", &["notification"], &["INAPP"]).await;
    n.user("ana", Some("+5491155550000")).await;
    n.consent("ana", "clinic", &["notifications:send"]).await;
    assert_eq!(
        n.as_user(
            "ana",
            "POST",
            "/notifications/devices",
            Some(json!({"token": "tok-ana", "platform": "web"}))
        )
        .await
        .0,
        201
    );
    // Held by quiet hours that cover the whole day but a minute, so it is pending when the
    // user goes.
    n.quiet_all_day("ana").await;
    let (_, accepted, _) = n
        .send(
            &sender,
            sender.body(
                "ana",
                json!({"notification": {"title": "T", "message": "M", "channel": "INAPP"}}),
            ),
        )
        .await;
    let id = accepted["data"]["id"].as_str().unwrap().to_owned();
    n.status_becomes(&sender, &id, "queued").await;
    n.publish(
        "ana",
        &events::catalogue::UserDeleted {
            user_id: "ana".parse().unwrap(),
        },
    )
    .await;
    let failed = n.events.next("notification.failed").await;
    assert_eq!(
        (failed.data["notification_id"].as_str(), failed.data["reason"].as_str()),
        (Some(id.as_str()), Some("user_deleted"))
    );
    let (_, devices, _) = n.as_user("ana", "GET", "/notifications/devices", None).await;
    assert_eq!(devices["data"], json!([]));
    let (_, prefs, _) = n.as_user("ana", "GET", "/notifications/preferences", None).await;
    assert!(prefs["data"]["quiet_hours"].is_null(), "{prefs}");
    let db = n.db.clone();
    let recipient = db
        .run(|c| Ok(notification_dispatch::store::recipient(c, "ana")?))
        .await
        .unwrap();
    assert!(recipient.is_none());
}

/// The platform's account mail (the link confirming an address) goes by e-mail to the address
/// to confirm, without consent and whatever the person's channel choices and quiet hours.
async fn the_platform_emails_the_confirmation_link_whatever_the_preferences(backend: Backend) {
    let n = start(backend).await;
    n.user("ana", None).await;
    let now = chrono::Utc::now();
    let held = json!({"channels": {"EMAIL": false}, "quiet_hours": {
        "start": (now - chrono::Duration::minutes(1)).format("%H:%M").to_string(),
        "end": (now - chrono::Duration::minutes(2)).format("%H:%M").to_string()}});
    assert_eq!(
        n.as_user("ana", "PUT", "/notifications/preferences", Some(held))
            .await
            .0,
        200
    );
    let link = "http://127.0.0.1:8080/oauth2/verify-email?token=t0k3n";
    let requested = events::catalogue::VerificationRequested {
        user_id: "ana".parse().unwrap(),
        email: "ana.new@example.com".into(),
        verify_url: link.into(),
        expires_at: storage::now_millis() + 86_400_000,
    };
    n.publish("ana", &requested).await;
    eventually("the confirmation e-mail is recorded by the sandbox", || async {
        let (_, inbox, _) = n.as_user("ana", "GET", "/notifications/inbox", None).await;
        inbox["data"]["items"].as_array().is_some_and(|items| {
            items
                .iter()
                .any(|i| i["link"] == link && i["channel"] == "EMAIL" && i["provider_id"] == 0)
        })
    })
    .await;
    let db = n.db.clone();
    let recipient = db
        .run(|c| Ok(notification_dispatch::store::recipient(c, "ana")?))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        recipient.email.as_deref(),
        Some("ana.new@example.com"),
        "written to the address to confirm"
    );
}

on_both_backends!(
    the_platform_emails_the_confirmation_link_whatever_the_preferences,
    preferences_are_one_document_with_an_etag,
    devices_belong_to_their_user,
    a_deleted_user_leaves_nothing_behind
);
