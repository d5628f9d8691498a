//! Dispatch: each channel's way to the user, fallbacks, quiet hours, failover between
//! providers and retries until the schedule is spent, with the statuses and events the
//! provider learns them from.

use notification_dispatch::channels::{ProviderEntry, ProviderKind};
use serde_json::json;
use settings::Span;
use test_support::Backend;

use crate::on_both_backends;
use crate::stand_ins::{entry, plain_smtp};
use crate::support::{Notifier, Sender, start, start_with};

async fn consenting(n: &Notifier, kinds: &[&str], channels: &[&str], phone: Option<&str>) -> Sender {
    let sender = n.sender("clinic", kinds, channels).await;
    n.user("ana", phone).await;
    n.consent("ana", "clinic", &["notifications:send"]).await;
    sender
}

fn note(channel: &str) -> serde_json::Value {
    json!({"notification": {"title": "Turno", "message": "Oftalmólogo lunes 9:15", "channel": channel, "link": "https://clinic.example/t/42"}})
}

async fn accept(n: &Notifier, sender: &Sender, parameters: serde_json::Value) -> String {
    let (status, body, _) = n.send(sender, sender.body("ana", parameters)).await;
    assert_eq!(status, 202, "{body}");
    body["data"]["id"].as_str().unwrap().to_owned()
}

async fn in_app_notifications_reach_the_inbox(backend: Backend) {
    let mut n = start(backend).await;
    let sender = consenting(&n, &["notification", "qr_code"], &["INAPP"], None).await;
    let id = accept(&n, &sender, note("INAPP")).await;
    let status = n.status_becomes(&sender, &id, "delivered").await;
    assert_eq!(status["channel_used"], "INAPP");
    assert_eq!(status["sandbox"], false);
    let requested = n.events.next("notification.requested").await;
    assert_eq!(
        requested.data["notification_id"],
        id.as_str(),
        "published with the acceptance"
    );
    let sent = n.events.next("notification.sent").await;
    assert_eq!(
        (sent.data["channel"].as_str(), sent.data["client_id"].as_str()),
        (Some("INAPP"), Some("clinic"))
    );
    let delivered = n.events.next("notification.delivered").await;
    assert_eq!(delivered.data["notification_id"], id.as_str());
    assert_eq!(delivered.source, "/notification-dispatch");
    let ticket = accept(&n, &sender, json!({"qr_code": {"title": "Entrada", "message": "Fila 3, asiento 12", "channel": 5, "data": "TICKET-2026-0042"}})).await;
    n.status_becomes(&sender, &ticket, "delivered").await;
    let (_, inbox, _) = n.as_user("ana", "GET", "/notifications/inbox", None).await;
    let items = inbox["data"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{inbox}");
    assert_eq!(items[0]["qr_code"], "TICKET-2026-0042");
    assert_eq!(items[1]["title"], "Turno");
    assert_eq!(items[1]["link"], "https://clinic.example/t/42");
    assert_eq!(items[1]["sandbox"], false);
    let entry = items[1]["id"].as_str().unwrap();
    let (status, read, _) = n
        .as_user("ana", "POST", &format!("/notifications/inbox/{entry}/read"), None)
        .await;
    assert_eq!(status, 200, "{read}");
    assert!(read["data"]["read_at"].is_i64());
    let (_, unread, _) = n.as_user("ana", "GET", "/notifications/inbox?unread=true", None).await;
    assert_eq!(unread["data"]["total"], 1);
    assert_eq!(
        n.as_user("bob", "POST", &format!("/notifications/inbox/{entry}/read"), None)
            .await
            .0,
        404
    );
    assert_eq!(
        n.as_app("clinic", "GET", "/notifications/inbox", None).await.0,
        403,
        "a user's own"
    );
}

async fn push_falls_back_to_sms_without_a_device(backend: Backend) {
    let n = start(backend).await;
    let sender = consenting(&n, &["notification"], &["FCM", "SMS"], Some("+5491155550000")).await;
    let id = accept(&n, &sender, note("FCM")).await;
    let status = n.status_becomes(&sender, &id, "delivered").await;
    assert_eq!(status["channel"], "FCM");
    assert_eq!(status["channel_used"], "SMS", "{status}");
    let (_, inbox, _) = n.as_user("ana", "GET", "/notifications/inbox", None).await;
    let entry = &inbox["data"]["items"][0];
    assert_eq!(
        (entry["channel"].as_str(), entry["sandbox"].as_bool()),
        (Some("SMS"), Some(true)),
        "labelled: {entry}"
    );
    // With a device, push goes first.
    let device = json!({"token": "fcm-token-ana-1", "platform": "android"});
    assert_eq!(
        n.as_user("ana", "POST", "/notifications/devices", Some(device)).await.0,
        201
    );
    let id = accept(&n, &sender, note("FCM")).await;
    assert_eq!(n.status_becomes(&sender, &id, "delivered").await["channel_used"], "FCM");
}

async fn quiet_hours_hold_what_is_not_urgent(backend: Backend) {
    let n = start(backend).await;
    let sender = consenting(&n, &["notification"], &["INAPP"], None).await;
    let now = chrono::Utc::now();
    let (start, end) = (now - chrono::Duration::hours(1), now + chrono::Duration::hours(2));
    let prefs = json!({"time_zone": "UTC", "quiet_hours": {"start": start.format("%H:%M").to_string(), "end": end.format("%H:%M").to_string()}});
    assert_eq!(
        n.as_user("ana", "PUT", "/notifications/preferences", Some(prefs))
            .await
            .0,
        200
    );
    let later = accept(&n, &sender, note("INAPP")).await;
    let mut urgent = note("INAPP");
    urgent["notification"]["urgent"] = json!(true);
    let now_id = accept(&n, &sender, urgent).await;
    n.status_becomes(&sender, &now_id, "delivered").await;
    let held = n.status_becomes(&sender, &later, "queued").await;
    // Give the dispatcher a moment: it must have looked at it and put it back.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let held = if held["reason"].is_null() {
        n.status_becomes(&sender, &later, "queued").await
    } else {
        held
    };
    assert_eq!(held["reason"], "quiet_hours", "{held}");
    let until = held["next_attempt_at"].as_i64().unwrap();
    let end_minute = end.timestamp_millis() / 60_000 * 60_000;
    assert_eq!(until, end_minute, "held until quiet hours end");
    assert_eq!(held["sends"].as_array().unwrap().len(), 0, "nothing was sent");
}

/// Quiet hours hold a notification from each of two applications; ana withdraws one's
/// authorization: its notification fails at once (not when the hours end), the other's waits.
async fn a_withdrawn_consent_fails_what_quiet_hours_held(backend: Backend) {
    let mut n = start(backend).await;
    let clinic = consenting(&n, &["notification"], &["INAPP"], None).await;
    let lab = n.sender("lab", &["notification"], &["INAPP"]).await;
    n.consent("ana", "lab", &["notifications:send"]).await;
    n.quiet_all_day("ana").await;
    let from_clinic = accept(&n, &clinic, note("INAPP")).await;
    let from_lab = accept(&n, &lab, note("INAPP")).await;
    for (sender, id) in [(&clinic, &from_clinic), (&lab, &from_lab)] {
        n.status_becomes(sender, id, "queued").await;
    }
    let withdrawn = events::catalogue::ConsentRevoked {
        user_id: "ana".parse().unwrap(),
        client_id: "clinic".parse().unwrap(),
        revoked_at: storage::now_millis(),
    };
    n.publish("ana", &withdrawn).await;
    let failed = n.events.next("notification.failed").await;
    assert_eq!(
        (failed.data["notification_id"].as_str(), failed.data["reason"].as_str()),
        (Some(from_clinic.as_str()), Some("no_consent"))
    );
    let state = n.status_becomes(&clinic, &from_clinic, "failed").await;
    assert_eq!(state["reason"], "no_consent", "{state}");
    let (_, lab_state, _) = n.as_app("lab", "GET", &format!("/Services/{from_lab}"), None).await;
    assert_eq!(
        lab_state["data"]["status"], "queued",
        "the lab's authorization stands: {lab_state}"
    );
}

/// Two e-mail providers where nothing listens: `smtp-down` and `smtp-down-2`.
fn dead_smtp(name: &str) -> ProviderEntry {
    let smtp = plain_smtp(test_support::free_port(), "Clinic <notify@clinic.example>");
    entry(name, ProviderKind::Smtp(smtp))
}

async fn the_second_provider_takes_over_from_the_first(backend: Backend) {
    let n = start_with(backend, |s| {
        s.channels.email = vec![dead_smtp("smtp-down"), entry("backup-email", ProviderKind::Sandbox)];
        s.dispatch.breaker_failures = 1;
        s.dispatch.breaker_cooldown = Span::from_secs(3600);
    })
    .await;
    let sender = consenting(&n, &["notification"], &["EMAIL"], None).await;
    let id = accept(&n, &sender, note("EMAIL")).await;
    let status = n.status_becomes(&sender, &id, "delivered").await;
    assert_eq!(status["sent_by"], "backup-email", "{status}");
    let sends = status["sends"].as_array().unwrap();
    assert_eq!(sends.len(), 2, "{status}");
    assert_eq!(
        (sends[0]["provider"].as_str(), sends[0]["outcome"].as_str()),
        (Some("smtp-down"), Some("failed"))
    );
    assert!(sends[0]["error"].as_str().unwrap().contains("smtp"), "{}", sends[0]);
    assert_eq!(sends[1]["outcome"], "recorded");
    // Its breaker is open now: the next notification goes straight to the backup.
    let next = accept(&n, &sender, note("EMAIL")).await;
    let status = n.status_becomes(&sender, &next, "delivered").await;
    let sends = status["sends"].as_array().unwrap();
    assert_eq!(
        (sends.len(), sends[0]["provider"].as_str()),
        (1, Some("backup-email")),
        "{status}"
    );
    // Ready, degraded: a provider down delays notifications, it does not refuse them.
    let ready = n.api.http.get(format!("{}/readyz", n.api.base)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["data"]["status"], "degraded", "{ready}");
    let check = ready["data"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "provider smtp-down")
        .cloned()
        .unwrap();
    assert_eq!(
        (check["ok"].as_bool(), check["required"].as_bool()),
        (Some(false), Some(false)),
        "{check}"
    );
}

/// The status once the dispatcher has tried it.
async fn after_a_try(n: &Notifier, sender: &Sender, id: &str) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        let (_, status, _) = n.as_app(&sender.client, "GET", &format!("/Services/{id}"), None).await;
        if status["data"]["attempts"].as_i64() >= Some(1) {
            return status["data"].clone();
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{status}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn a_provider_its_breaker_skips_holds_notifications_without_failing_them(backend: Backend) {
    let n = start_with(backend, |s| {
        s.channels.email = vec![dead_smtp("smtp-down")];
        s.dispatch.breaker_failures = 1;
        s.dispatch.breaker_cooldown = Span::from_secs(3600);
    })
    .await;
    let sender = consenting(&n, &["notification"], &["EMAIL"], None).await;
    let first = accept(&n, &sender, note("EMAIL")).await;
    let tried = after_a_try(&n, &sender, &first).await;
    assert_eq!(tried["status"], "queued", "{tried}");
    let next = accept(&n, &sender, note("EMAIL")).await;
    let held = after_a_try(&n, &sender, &next).await;
    assert_eq!(
        (held["status"].as_str(), held["reason"].as_str()),
        (Some("queued"), Some("breaker_open")),
        "{held}"
    );
    assert_eq!(held["sends"], json!([]), "not tried while the breaker is open");
    let due = held["next_attempt_at"].as_i64().unwrap();
    assert!(
        due > storage::now_millis() + 3_000_000,
        "held until the breaker lets a trial through: {held}"
    );
}

async fn a_notification_fails_once_every_try_is_spent(backend: Backend) {
    let mut n = start_with(backend, |s| {
        s.channels.email = vec![dead_smtp("smtp-down"), dead_smtp("smtp-down-2")]
    })
    .await;
    let sender = consenting(&n, &["notification"], &["EMAIL"], None).await;
    let id = accept(&n, &sender, note("EMAIL")).await;
    let status = n.status_becomes(&sender, &id, "failed").await;
    let reason = status["reason"].as_str().unwrap();
    assert!(reason.starts_with("retries_exhausted: smtp-down-2"), "{reason}");
    assert_eq!(status["attempts"], 3, "the test schedule has three tries: {status}");
    assert_eq!(status["sends"].as_array().unwrap().len(), 6, "two providers each try");
    let failed = n.events.next("notification.failed").await;
    assert_eq!(failed.data["notification_id"], id.as_str());
    assert_eq!(failed.data["channel"], "EMAIL");
}

async fn a_providers_rate_limit_paces_its_sends(backend: Backend) {
    let paced = ProviderEntry {
        rate_limit: Some(2.0),
        ..entry("paced-sms", ProviderKind::Sandbox)
    };
    let n = start_with(backend, |s| s.channels.sms = vec![paced]).await;
    let sender = consenting(&n, &["notification"], &["SMS"], Some("+5491155550000")).await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(accept(&n, &sender, note("SMS")).await);
    }
    let mut times = Vec::new();
    for id in &ids {
        let status = n.status_becomes(&sender, id, "delivered").await;
        assert_eq!(
            status["attempts"], 1,
            "waiting for the rate is not a failed try: {status}"
        );
        times.push(status["sends"][0]["attempted_at"].as_i64().unwrap());
    }
    times.sort_unstable();
    // 2 per second with a burst of 2: six sends take two seconds at least.
    assert!(times[5] - times[0] >= 1_900, "{times:?}");
    let metrics = n
        .api
        .http
        .get(format!("{}/metrics", n.api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"notifications_sends_total{channel="SMS",outcome="recorded",provider="paced-sms",service="notification-dispatch"} 6"#),
        "{}",
        metrics.lines().filter(|l| l.starts_with("notifications_")).collect::<Vec<_>>().join("\n")
    );
}

on_both_backends!(
    a_providers_rate_limit_paces_its_sends,
    in_app_notifications_reach_the_inbox,
    push_falls_back_to_sms_without_a_device,
    quiet_hours_hold_what_is_not_urgent,
    a_withdrawn_consent_fails_what_quiet_hours_held,
    the_second_provider_takes_over_from_the_first,
    a_provider_its_breaker_skips_holds_notifications_without_failing_them,
    a_notification_fails_once_every_try_is_spent
);
