//! Contract tests of the profile API, called as the gateway calls it (signed identity headers),
//! on SQLite with the in-process bus and on PostgreSQL with RabbitMQ.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use events::catalogue::{UserDeleted, UserRegistered, UserUpdated};
use events::{Bus, Event, EventPayload};
use runtime::Deps;
use serde_json::{Value, json};
use test_support::{As, Backend, Db, IDENTITY_SECRET, Signed, Watch, bus, served};
use tokio_util::sync::CancellationToken;

struct Service {
    api: Signed,
    bus: Arc<dyn Bus>,
    events: Watch,
    shutdown: CancellationToken,
    _db: Db,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start(backend: Backend) -> Service {
    let exchange = test_support::unique("profiles");
    let bus = bus(backend, &exchange, "user-profile");
    let db = Db::create(backend);
    let shutdown = CancellationToken::new();
    let events = Watch::start(&bus, &["user.*"], shutdown.clone()).await;
    let settings = settings::changed(user_profile::DEFAULTS, |s: &mut user_profile::Settings| {
        s.http.port = 0;
        s.http.workers = 1;
        s.database.url = db.url().into();
        s.identity.secret = IDENTITY_SECRET.into();
    })
    .unwrap();
    let deps = Deps {
        bus: bus.clone(),
        shutdown: shutdown.clone(),
    };
    let started = user_profile::start(settings, deps).await.expect("user-profile starts");
    Service {
        api: Signed::new(served(started)),
        bus,
        events,
        shutdown,
        _db: db,
    }
}

impl Service {
    /// Publishes `user.registered` (twice: a redelivery changes nothing) and waits until the
    /// profile exists.
    async fn register(&self, name: &str) -> String {
        let user_id = uuid::Uuid::now_v7().to_string();
        let payload = UserRegistered {
            user_id: user_id.parse().unwrap(),
            username: name.into(),
            email: format!("{name}@example.com"),
            registered_at: 1_700_000_000_000,
        };
        let event = Event::new("/auth", Some(user_id.clone()), &payload).unwrap();
        self.bus.publish(std::slice::from_ref(&event)).await.unwrap();
        self.bus.publish(&[event]).await.unwrap();
        let started = Instant::now();
        while self.call("GET", "/users/me", &user_id, "profile", None, &[]).await.0 == 404 {
            assert!(started.elapsed() < Duration::from_secs(10), "profile never created");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        user_id
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        subject: &str,
        scope: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> test_support::Answer {
        self.api.call(method, path, As { subject, scope }, body, headers).await
    }

    async fn next_event(&mut self, event_type: &str) -> Event {
        self.events.next(event_type).await
    }
}

async fn owners_read_change_and_delete_their_profile(backend: Backend) {
    let mut s = start(backend).await;
    let ana = s.register("ana").await;
    let (status, body, headers) = s.call("GET", "/users/me", &ana, "profile", None, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["username"], "ana");
    assert_eq!(body["data"]["sports"], json!([]));
    assert!(
        body["data"].get("email").is_none(),
        "the e-mail needs the email scope: {body}"
    );
    let (_, with_email, _) = s.call("GET", "/users/me", &ana, "profile email", None, &[]).await;
    assert_eq!(with_email["data"]["email"], "ana@example.com");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let (status, _, _) = s
        .call("GET", "/users/me", &ana, "profile", None, &[("if-none-match", &etag)])
        .await;
    assert_eq!(status, 304);

    let change = json!({"first_name": "Ana", "nationality": "pt", "birth_date": "1991-05-17",
        "sports": ["surfing", "yoga"], "picture": "https://cdn.example.com/ana.png", "relationship": "single"});
    let (status, body, headers) = s
        .call(
            "PATCH",
            "/users/me",
            &ana,
            "profile",
            Some(change),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["nationality"], "PT");
    assert_eq!(body["data"]["sports"], json!(["surfing", "yoga"]));
    assert_ne!(headers["etag"].to_str().unwrap(), etag);
    let updated = s.next_event(UserUpdated::TYPE).await;
    let payload: UserUpdated = updated.payload().unwrap().unwrap();
    assert_eq!(payload.picture.as_deref(), Some("https://cdn.example.com/ana.png"));

    // A phone number: for SMS notifications, shown only with `phone`, never in public.
    let (status, body, _) = s
        .call(
            "PATCH",
            "/users/me",
            &ana,
            "profile",
            Some(json!({"phone": "+351 912 345 678"})),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["data"].get("phone").is_none(),
        "withheld without the phone scope: {body}"
    );
    let (_, with_phone, _) = s.call("GET", "/users/me", &ana, "profile phone", None, &[]).await;
    assert_eq!(with_phone["data"]["phone"], "+351912345678");
    let updated: UserUpdated = s.next_event(UserUpdated::TYPE).await.payload().unwrap().unwrap();
    assert_eq!(
        updated.phone.as_deref(),
        Some("+351912345678"),
        "the notification service learns it"
    );

    // The first ETag no longer matches: 412, and nothing changed.
    let (status, body, _) = s
        .call(
            "PATCH",
            "/users/me",
            &ana,
            "profile",
            Some(json!({"first_name": "Other"})),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (412, Some("precondition_failed")));
    let (_, body, _) = s.call("GET", "/users/me", &ana, "profile", None, &[]).await;
    assert_eq!(body["data"]["first_name"], "Ana");

    // null clears a field.
    let (status, body, _) = s
        .call(
            "PATCH",
            "/users/me",
            &ana,
            "profile",
            Some(json!({"relationship": null})),
            &[],
        )
        .await;
    assert_eq!((status, &body["data"]["relationship"]), (200, &Value::Null));

    // Others see the public subset.
    let bob = s.register("bob").await;
    assert_eq!(
        s.call("GET", &format!("/users/{ana}"), &bob, "", None, &[]).await.0,
        403
    );
    let (status, body, _) = s
        .call("GET", &format!("/users/{ana}"), &bob, "profile", None, &[])
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["first_name"], "Ana");
    assert!(body["data"].get("email").is_none() && body["data"].get("birth_date").is_none());
    assert!(body["data"].get("phone").is_none(), "{body}");

    let (status, _, _) = s.call("DELETE", "/users/me", &ana, "profile", None, &[]).await;
    assert_eq!(status, 403, "reading profiles does not allow deleting the account");
    let (status, _, _) = s.call("DELETE", "/users/me", &ana, "account:delete", None, &[]).await;
    assert_eq!(status, 204);
    let deleted: UserDeleted = s.next_event(UserDeleted::TYPE).await.payload().unwrap().unwrap();
    assert_eq!(deleted.user_id, ana);
    let (status, _, _) = s
        .call("GET", &format!("/users/{ana}"), &bob, "profile", None, &[])
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn owners_read_change_and_delete_their_profile_sqlite() {
    owners_read_change_and_delete_their_profile(Backend::Sqlite).await;
}

#[tokio::test]
async fn owners_read_change_and_delete_their_profile_postgres() {
    owners_read_change_and_delete_their_profile(Backend::Postgres).await;
}

async fn bad_values_are_refused_naming_the_field(backend: Backend) {
    let s = start(backend).await;
    let ana = s.register("ana").await;
    for (change, field) in [
        (json!({"nationality": "XX"}), "nationality"),
        (json!({"birth_date": "17/05/1991"}), "birth_date"),
        (json!({"sports": ["surfing", "quidditch"]}), "sports[1]"),
        (json!({"biography": "x".repeat(2001)}), "biography"),
        (json!({"email": "new@example.com"}), "email"),
    ] {
        let (status, body, _) = s.call("PATCH", "/users/me", &ana, "profile", Some(change), &[]).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["success"], false);
        assert!(body["debugMessage"].as_str().unwrap().starts_with(field), "{body}");
    }
    let (status, body, _) = s
        .call(
            "PATCH",
            "/users/me",
            &ana,
            "profile",
            Some(json!({"nationality": "XX", "first_name": "Ana", "gender": "robot"})),
            &[],
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let mut fields = test_support::invalid_fields(&body);
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["gender", "nationality"],
        "every bad field, none that parsed: {body}"
    );
    let (status, body, _) = s
        .call("PATCH", "/users/me", &ana, "profile", Some(json!([1])), &[])
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body, _) = s.call("GET", "/users/me", &ana, "profile", None, &[]).await;
    assert_eq!(
        (status, &body["data"]["nationality"]),
        (200, &Value::Null),
        "nothing was saved"
    );
}

#[tokio::test]
async fn bad_values_are_refused_naming_the_field_sqlite() {
    bad_values_are_refused_naming_the_field(Backend::Sqlite).await;
}

#[tokio::test]
async fn bad_values_are_refused_naming_the_field_postgres() {
    bad_values_are_refused_naming_the_field(Backend::Postgres).await;
}

/// `user.verified` sets seed 003's `user_verified`, for the address confirmed only.
async fn a_confirmed_address_marks_the_profile_verified(backend: Backend) {
    let s = start(backend).await;
    let ana = s.register("ana").await;
    let verified = |email: &str| {
        let payload = events::catalogue::UserVerified {
            user_id: ana.parse().unwrap(),
            email: email.to_owned(),
            verified_at: 1_700_000_100_000,
        };
        Event::new("/auth", Some(ana.clone()), &payload).unwrap()
    };
    let flag = || async {
        let (_, body, _) = s.call("GET", "/api/get_user_info", &ana, "profile", None, &[]).await;
        body["user_info"]["user_verified"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    s.bus.publish(&[verified("someone.else@example.com")]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(flag().await, "0", "another address confirms nothing");
    s.bus.publish(&[verified("ana@example.com")]).await.unwrap();
    let started = Instant::now();
    while flag().await != "1" {
        assert!(started.elapsed() < Duration::from_secs(10), "never verified");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_confirmed_address_marks_the_profile_verified_sqlite() {
    a_confirmed_address_marks_the_profile_verified(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_confirmed_address_marks_the_profile_verified_postgres() {
    a_confirmed_address_marks_the_profile_verified(Backend::Postgres).await;
}

#[tokio::test]
async fn callers_need_a_signed_identity_and_the_scopes() {
    let s = start(Backend::Sqlite).await;
    let ana = s.register("ana").await;
    // Straight to the service, without the gateway's signature.
    let resp = s.api.http.get(format!("{}/users/me", s.api.base)).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let forged = s
        .api
        .http
        .get(format!("{}/users/me", s.api.base))
        .header("x-auth-subject", &ana)
        .header("x-auth-client-id", "app")
        .header("x-auth-scope", "profile")
        .header("x-auth-timestamp", (storage::now_millis() / 1000).to_string())
        .header("x-auth-signature", format!("v1={}", "0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let (status, body, headers) = s.call("GET", "/users/me", &ana, "email", None, &[]).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("insufficient_scope")));
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("scope=\"profile\"")
    );
    // A client's own token (subject = client) acts for no user.
    let (status, _, _) = s.call("GET", "/users/me", "partner-app", "profile", None, &[]).await;
    assert_eq!(status, 403);
    let (status, body, _) = s.call("GET", "/sports", &ana, "", None, &[]).await;
    assert_eq!(status, 200);
    assert!(body["data"].as_array().unwrap().iter().any(|s| s["code"] == "tennis"));
}

/// Seed 003's document, field by field: names, nesting, and every value a string.
#[tokio::test]
async fn get_user_info_has_seed_003s_shape_and_withholds_what_scopes_do_not_cover() {
    let s = start(Backend::Sqlite).await;
    let ana = s.register("ana").await;
    s.call(
        "PATCH",
        "/users/me",
        &ana,
        "profile",
        Some(json!({"first_name": "Ana", "website": "https://ana.example"})),
        &[],
    )
    .await;
    let seed: Value = serde_json::from_str(
        r#"{ "user_info": { "user_id": "", "user_name": "", "user_email": "", "user_firstname": "", "user_lastname": "", "user_gender": "", "user_birthdate": "", "user_picture": "", "user_cover": "", "user_registered": "", "user_verified": "", "user_relationship": "", "user_biography": "", "user_website": "" } }"#,
    )
    .unwrap();
    let (status, body, _) = s
        .call("GET", "/api/get_user_info", &ana, "profile email", None, &[])
        .await;
    assert_eq!(status, 200, "{body}");
    let ours = body.as_object().unwrap();
    assert_eq!(ours.keys().collect::<Vec<_>>(), vec!["user_info"]);
    let (expected, got) = (
        seed["user_info"].as_object().unwrap(),
        body["user_info"].as_object().unwrap(),
    );
    let mut names: Vec<_> = got.keys().collect();
    let mut seed_names: Vec<_> = expected.keys().collect();
    names.sort();
    seed_names.sort();
    assert_eq!(names, seed_names);
    assert!(got.values().all(Value::is_string), "{body}");
    assert_eq!(got["user_id"], ana.as_str());
    assert_eq!(got["user_firstname"], "Ana");
    assert_eq!(got["user_email"], "ana@example.com");
    assert_eq!(got["user_lastname"], "");
    assert_eq!(got["user_verified"], "0");

    let (_, body, _) = s.call("GET", "/api/get_user_info", &ana, "profile", None, &[]).await;
    assert_eq!(body["user_info"]["user_email"], "", "no email scope, no e-mail: {body}");
    assert_eq!(body["user_info"]["user_firstname"], "Ana");
    let (_, body, _) = s.call("GET", "/api/get_user_info", &ana, "email", None, &[]).await;
    let info = body["user_info"].as_object().unwrap();
    assert_eq!(info.len(), 14, "every key, always: {body}");
    let filled: Vec<_> = info.iter().filter(|(_, v)| *v != "").map(|(k, _)| k.as_str()).collect();
    assert_eq!(filled, vec!["user_email", "user_id"]);
}
