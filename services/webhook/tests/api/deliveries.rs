//! Who receives what: an event about a user reaches only the applications that user
//! authorized for its scope, and stops when the consent is withdrawn; other events reach the
//! applications whose registration holds the scope. Every delivery is signed.

use std::time::Duration;

use events::catalogue::{ArticlePublished, UserUpdated};
use serde_json::json;
use settings::Span;
use test_support::Backend;

use crate::support::{self, signed_by};
use test_support::receiver::{Receiver, verify_with_packages};

crate::on_both_backends!(
    events_reach_only_applications_their_user_authorized,
    a_rotated_secret_signs_beside_the_old_one,
    a_key_pair_adds_v1a_signatures_beside_v1,
    a_new_key_pair_signs_beside_the_one_before_for_the_overlap
);

fn updated(user: &str, name: &str) -> UserUpdated {
    UserUpdated {
        user_id: user.parse().unwrap(),
        username: name.into(),
        picture: None,
        group: None,
        phone: None,
    }
}

async fn events_reach_only_applications_their_user_authorized(backend: Backend) {
    let hooks = support::start(backend).await;
    let (crm, other, blog) = (Receiver::start(), Receiver::start(), Receiver::start());
    hooks.application("crm", "owner", &["profile"]).await;
    hooks.application("other", "owner", &["profile"]).await;
    hooks.application("reader", "owner", &["blog:read"]).await;
    let (_, crm_secret) = hooks.endpoint("crm", json!({"url": crm.url})).await;
    hooks
        .endpoint("other", json!({"url": other.url, "event_types": ["user.updated"]}))
        .await;
    hooks
        .endpoint("reader", json!({"url": blog.url, "event_types": ["article.published"]}))
        .await;
    hooks.consent("ana", "crm", &["profile"]).await;
    hooks.consent("bob", "other", &["profile"]).await;

    let with_phone = UserUpdated {
        phone: Some("+33612345678".into()),
        ..updated("ana", "Ana")
    };
    hooks.publish("ana", &with_phone).await;
    hooks.publish("bob", &updated("bob", "Bob")).await;
    let got = crm.wait_for(1).await;
    let first = &got[0];
    assert_eq!(first.json()["type"], "user.updated");
    assert_eq!(first.json()["data"]["user_id"], "ana");
    assert!(
        first.json()["data"].get("phone").is_none() && !first.body.contains("+336"),
        "no scope grants a phone number: {}",
        first.body
    );
    assert!(first.header("webhook-id").starts_with("msg_"));
    assert!(signed_by(first, &crm_secret), "{:?}", first.headers);
    verify_with_packages(first, &crm_secret);
    let got = other.wait_for(1).await;
    assert_eq!(got[0].json()["data"]["user_id"], "bob", "ana never authorized `other`");

    hooks.withdraw("ana", "crm").await;
    hooks.publish("ana", &updated("ana", "Ana again")).await;
    hooks.consent("carl", "crm", &["profile"]).await;
    hooks.publish("carl", &updated("carl", "Carl")).await;
    let got = crm.wait_for(2).await;
    assert_eq!(
        got[1].json()["data"]["user_id"],
        "carl",
        "{:?}",
        got.iter()
            .map(|r| (r.header("webhook-id").to_owned(), r.body.clone()))
            .collect::<Vec<_>>()
    );

    let article = ArticlePublished {
        article_id: 1.try_into().unwrap(),
        author_id: "ana".parse().unwrap(),
        title: "Trails".into(),
        locale: "en".into(),
        category: "running".into(),
        published_at: storage::now_millis(),
    };
    hooks.publish("1", &article).await;
    let got = blog.wait_for(1).await;
    assert_eq!(
        got[0].json()["data"]["title"],
        "Trails",
        "the registration holds blog:read"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let users: Vec<_> = crm
        .received()
        .iter()
        .map(|r| r.json()["data"]["user_id"].clone())
        .collect();
    assert_eq!(
        users,
        [json!("ana"), json!("carl")],
        "nothing after the withdrawal, no article without blog:read"
    );
}

async fn a_rotated_secret_signs_beside_the_old_one(backend: Backend) {
    let hooks = support::start(backend).await;
    let receiver = Receiver::start();
    hooks.application("crm", "owner", &["profile"]).await;
    let (id, old) = hooks.endpoint("crm", json!({"url": receiver.url})).await;
    let (_, rotated, _) = hooks
        .as_app("crm", "POST", &format!("/webhooks/endpoints/{id}/secret/rotate"), None)
        .await;
    let new = rotated["data"]["secret"].as_str().unwrap().to_owned();
    let (status, test, _) = hooks
        .as_app("crm", "POST", &format!("/webhooks/endpoints/{id}/test"), None)
        .await;
    assert_eq!(status, 202, "{test}");
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].json()["type"], "webhook.test");
    assert_eq!(
        got[0].header("webhook-id"),
        test["data"]["message_id"].as_str().unwrap()
    );
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    assert!(
        signed_by(&got[0], &new) && signed_by(&got[0], &old),
        "both secrets sign during the overlap"
    );
    verify_with_packages(&got[0], &new);
    verify_with_packages(&got[0], &old);
    let endpoint = id.clone();
    let stored = hooks
        .db
        .run(move |c| Ok(webhook::store::endpoint(c, &endpoint)?))
        .await
        .unwrap()
        .unwrap();
    for sealed in [&stored.secret, stored.previous_secret.as_ref().unwrap()] {
        assert!(
            sealed.starts_with("sealed:v1:") && !sealed.contains(&new[6..]) && !sealed.contains(&old[6..]),
            "secrets are stored sealed: {sealed}"
        );
    }
}

/// Whether `received` carries a `v1a` signature that `public_key` (`whpk_…`) verifies.
fn signed_v1a(received: &test_support::receiver::Received, public_key: &str) -> bool {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    let raw: [u8; 32] = STANDARD
        .decode(public_key.strip_prefix("whpk_").unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = VerifyingKey::from_bytes(&raw).unwrap();
    let signed = format!(
        "{}.{}.{}",
        received.header("webhook-id"),
        received.header("webhook-timestamp"),
        received.body
    );
    received
        .header("webhook-signature")
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1a,"))
        .filter_map(|s| Signature::from_slice(&STANDARD.decode(s).ok()?).ok())
        .any(|signature| key.verify(signed.as_bytes(), &signature).is_ok())
}

async fn a_key_pair_adds_v1a_signatures_beside_v1(backend: Backend) {
    let hooks = support::start(backend).await;
    let receiver = Receiver::start();
    hooks.application("crm", "owner", &["profile"]).await;
    let (id, secret) = hooks.endpoint("crm", json!({"url": receiver.url})).await;
    let path = format!("/webhooks/endpoints/{id}/public-key");
    assert_eq!(
        hooks.as_app("crm", "GET", &path, None).await.0,
        404,
        "none until asked for"
    );
    let (status, made, _) = hooks.as_app("crm", "POST", &path, None).await;
    assert_eq!(status, 201, "{made}");
    let public = made["data"]["public_key"].as_str().unwrap().to_owned();
    assert!(
        public.starts_with("whpk_") && !made.to_string().contains("whsk_"),
        "{made}"
    );
    let (_, shown, _) = hooks.as_app("crm", "GET", &path, None).await;
    assert_eq!(shown["data"]["public_key"], public.as_str());
    let test = format!("/webhooks/endpoints/{id}/test");
    assert_eq!(hooks.as_app("crm", "POST", &test, None).await.0, 202);
    let got = receiver.wait_for(1).await;
    assert!(signed_v1a(&got[0], &public), "{:?}", got[0].headers);
    assert!(signed_by(&got[0], &secret));
    // Receivers that know only v1 are not troubled by the v1a signature beside it.
    verify_with_packages(&got[0], &secret);
    let endpoint = id.clone();
    let stored = hooks
        .db
        .run(move |c| Ok(webhook::store::signing_key(c, &endpoint)?))
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored.secret_key.starts_with("sealed:v1:"),
        "the secret key is stored sealed"
    );
    assert_eq!(hooks.as_app("crm", "DELETE", &path, None).await.0, 204);
    assert_eq!(hooks.as_app("crm", "POST", &test, None).await.0, 202);
    let got = receiver.wait_for(2).await;
    assert!(
        !got[1].header("webhook-signature").contains("v1a,"),
        "{:?}",
        got[1].headers
    );
}

/// A new key pair while one signs: both sign `v1a` for `webhook.rotation_overlap` (here 2 s),
/// shown with the previous public key; then only the new one.
async fn a_new_key_pair_signs_beside_the_one_before_for_the_overlap(backend: Backend) {
    let hooks = support::start_with(backend, |s| s.webhook.rotation_overlap = Span::from_secs(2)).await;
    let receiver = Receiver::start();
    hooks.application("crm", "owner", &["profile"]).await;
    let (id, _) = hooks.endpoint("crm", json!({"url": receiver.url})).await;
    let path = format!("/webhooks/endpoints/{id}/public-key");
    let (_, first, _) = hooks.as_app("crm", "POST", &path, None).await;
    let old = first["data"]["public_key"].as_str().unwrap().to_owned();
    assert!(
        first["data"]["previous_public_key"].is_null(),
        "nothing before it: {first}"
    );
    let (status, second, _) = hooks.as_app("crm", "POST", &path, None).await;
    assert_eq!(status, 201, "{second}");
    let new = second["data"]["public_key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(second["data"]["previous_public_key"], old.as_str(), "{second}");
    assert!(second["data"]["previous_valid_until"].as_i64().unwrap() > storage::now_millis());
    let (_, shown, _) = hooks.as_app("crm", "GET", &path, None).await;
    assert_eq!(shown["data"], second["data"]);
    let test = format!("/webhooks/endpoints/{id}/test");
    assert_eq!(hooks.as_app("crm", "POST", &test, None).await.0, 202);
    let got = receiver.wait_for(1).await;
    assert!(
        signed_v1a(&got[0], &new) && signed_v1a(&got[0], &old),
        "both pairs sign during the overlap: {:?}",
        got[0].headers
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (_, after, _) = hooks.as_app("crm", "GET", &path, None).await;
    assert!(after["data"]["previous_public_key"].is_null(), "{after}");
    assert_eq!(hooks.as_app("crm", "POST", &test, None).await.0, 202);
    let got = receiver.wait_for(2).await;
    assert!(signed_v1a(&got[1], &new), "{:?}", got[1].headers);
    assert!(!signed_v1a(&got[1], &old), "the old pair stopped: {:?}", got[1].headers);
}
