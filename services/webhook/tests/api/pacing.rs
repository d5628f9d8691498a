//! An ordered endpoint gets its messages one at a time, in event order, even while one is being
//! retried; an endpoint's rate limit spaces its deliveries.

use std::time::Duration;

use events::catalogue::ArticlePublished;
use serde_json::json;
use test_support::Backend;
use test_support::receiver::Receiver;

use crate::support::{self, Hooks, eventually};

crate::on_both_backends!(
    ordered_endpoints_get_messages_one_at_a_time_in_order,
    rate_limits_space_deliveries
);

fn article(id: i64) -> ArticlePublished {
    ArticlePublished {
        article_id: id.try_into().unwrap(),
        author_id: "ana".parse().unwrap(),
        title: format!("Article {id}"),
        locale: "en".into(),
        category: "news".into(),
        published_at: storage::now_millis(),
    }
}

/// Publishes articles 1..=n, each once the one before was taken in, so intake follows event order.
async fn publish_in_order(hooks: &Hooks, n: i64) {
    for id in 1..=n {
        hooks.publish(&id.to_string(), &article(id)).await;
        let db = hooks.db.clone();
        eventually("the article is taken in", || {
            let db = db.clone();
            async move { db.run(|c| Ok(webhook::store::message_count(c)?)).await.unwrap() >= id }
        })
        .await;
    }
}

fn article_ids(receiver: &Receiver) -> Vec<i64> {
    receiver
        .received()
        .iter()
        .map(|r| r.json()["data"]["article_id"].as_i64().unwrap())
        .collect()
}

async fn ordered_endpoints_get_messages_one_at_a_time_in_order(backend: Backend) {
    let hooks = support::start(backend).await;
    let receiver = Receiver::start();
    hooks.application("reader", "owner", &["blog:read"]).await;
    hooks
        .endpoint(
            "reader",
            json!({"url": receiver.url, "event_types": ["article.published"], "ordered": true}),
        )
        .await;
    receiver.answer(&[(500, &[]), (500, &[])]);
    publish_in_order(&hooks, 5).await;
    receiver.wait_for(7).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        article_ids(&receiver),
        [1, 1, 1, 2, 3, 4, 5],
        "the first is retried before the others go"
    );
}

async fn rate_limits_space_deliveries(backend: Backend) {
    let hooks = support::start(backend).await;
    let receiver = Receiver::start();
    hooks.application("reader", "owner", &["blog:read"]).await;
    hooks
        .endpoint(
            "reader",
            json!({"url": receiver.url, "event_types": ["article.published"], "rate_limit": 2}),
        )
        .await;
    publish_in_order(&hooks, 6).await;
    let got = receiver.wait_for(6).await;
    let span = got[5].at - got[0].at;
    // 2 per second with a burst of 2: the 3rd to 6th wait half a second each.
    assert!(span >= Duration::from_millis(1400), "six deliveries within {span:?}");
    let mut ids = article_ids(&receiver);
    ids.sort_unstable();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6], "none lost while waiting");
}
