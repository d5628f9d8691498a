//! Contract tests of the blog, called as the gateway calls it (signed identity headers), on
//! SQLite with the in-process bus and on PostgreSQL with RabbitMQ.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use events::catalogue::{
    ArticleDeleted, ArticlePublished, ArticleUpdated, CommentCreated, UserDeleted, UserRegistered, UserUpdated,
};
use events::{Bus, Event, EventPayload};
use runtime::Deps;
use serde_json::{Value, json};
use test_support::{Answer, As, Backend, Db, IDENTITY_SECRET, Signed, Watch, bus, served};
use tokio_util::sync::CancellationToken;

const READ: &str = "blog:read";
const WRITE: &str = "blog:read blog:write";
const ADMIN: &str = "blog:read blog:write blog:admin";

struct Blog {
    api: Signed,
    bus: Arc<dyn Bus>,
    events: Watch,
    shutdown: CancellationToken,
    _db: Db,
}

impl Drop for Blog {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start(backend: Backend) -> Blog {
    let bus = bus(backend, &test_support::unique("blog"), "blog");
    let db = Db::create(backend);
    let shutdown = CancellationToken::new();
    let events = Watch::start(&bus, &["article.*", "comment.*"], shutdown.clone()).await;
    let settings = settings::changed(blog::DEFAULTS, |s: &mut blog::Settings| {
        s.http.port = 0;
        s.http.workers = 1;
        s.http.body_limit = 20_000;
        s.database.url = db.url().into();
        s.identity.secret = IDENTITY_SECRET.into();
        s.blog.default_avatar = "https://cdn.example.com/default.png".into();
        s.blog.max_content_chars = 5000;
        s.blog.comments_per_article = 2;
    })
    .unwrap();
    let deps = Deps {
        bus: bus.clone(),
        shutdown: shutdown.clone(),
    };
    let started = blog::start(settings, deps).await.expect("blog starts");
    Blog {
        api: Signed::new(served(started)),
        bus,
        events,
        shutdown,
        _db: db,
    }
}

impl Blog {
    async fn call(&self, method: &str, path: &str, subject: &str, scope: &str, body: Option<Value>) -> Answer {
        self.api.call(method, path, As { subject, scope }, body, &[]).await
    }

    async fn call_with(
        &self,
        method: &str,
        path: &str,
        subject: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.api
            .call(method, path, As { subject, scope: WRITE }, body, headers)
            .await
    }

    async fn publish<P: EventPayload>(&self, user: &str, payload: &P, age_ms: i64) {
        let mut event = Event::new("/test", Some(user.to_owned()), payload).unwrap();
        event.time -= chrono::Duration::milliseconds(age_ms);
        self.bus.publish(&[event]).await.unwrap();
    }

    async fn article(&self, author: &str, title: &str, locale: i64, category: i64) -> i64 {
        let body = json!({"title": title, "content": format!("{title}: the content"), "locales_id": locale, "blog_category_id": category});
        let (status, body, _) = self.call("POST", "/blog/articles", author, WRITE, Some(body)).await;
        assert_eq!(status, 201, "{body}");
        body["data"]["id"].as_i64().unwrap()
    }

    async fn feed(&self, query: &str) -> Value {
        let (status, body, _) = self.call("GET", &format!("/blog{query}"), "reader", READ, None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Polls `GET /blog` until `check` holds.
    async fn eventually(&self, query: &str, check: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let feed = self.feed(query).await;
            if check(&feed) {
                return feed;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "never true: {feed}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn titles(feed: &Value) -> Vec<&str> {
    feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["article"]["title"].as_str().unwrap())
        .collect()
}

async fn authors_write_readers_read_and_others_cannot_edit(backend: Backend) {
    let mut b = start(backend).await;
    let id = b.article("ana", "First", 1, 1).await;
    let published: ArticlePublished = b.events.next(ArticlePublished::TYPE).await.payload().unwrap().unwrap();
    assert_eq!(
        (
            published.article_id.get(),
            published.author_id.as_str(),
            published.locale.as_str()
        ),
        (id, "ana", "fr")
    );

    let (status, body, headers) = b
        .call("GET", &format!("/blog/articles/{id}"), "reader", READ, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["account"]["username"], "name-of-ana");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let (status, _, _) = b
        .api
        .call(
            "GET",
            &format!("/blog/articles/{id}"),
            As {
                subject: "reader",
                scope: READ,
            },
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(status, 304);

    // Comments, from another user.
    let (status, body, _) = b
        .call(
            "POST",
            &format!("/blog/articles/{id}/comments"),
            "bob",
            WRITE,
            Some(json!({"content": "Nice"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let comment = body["data"]["id"].as_i64().unwrap();
    let created: CommentCreated = b.events.next(CommentCreated::TYPE).await.payload().unwrap().unwrap();
    assert_eq!(
        (
            created.comment_id.get(),
            created.article_id.get(),
            created.author_id.as_str()
        ),
        (comment, id, "bob")
    );
    let feed = b.feed("").await;
    assert_eq!(feed["data"][0]["comments"][0]["user"]["username"], "name-of-bob");

    // Someone else's article or comment: 403; without the write scope: 403.
    let change = json!({"title": "Hijacked"});
    assert_eq!(
        b.call(
            "PATCH",
            &format!("/blog/articles/{id}"),
            "bob",
            WRITE,
            Some(change.clone())
        )
        .await
        .0,
        403
    );
    assert_eq!(
        b.call("DELETE", &format!("/blog/articles/{id}"), "bob", WRITE, None)
            .await
            .0,
        403
    );
    assert_eq!(
        b.call(
            "PATCH",
            &format!("/blog/comments/{comment}"),
            "ana",
            WRITE,
            Some(json!({"content": "x"}))
        )
        .await
        .0,
        403
    );
    let (status, body, _) = b
        .call(
            "POST",
            "/blog/articles",
            "carl",
            READ,
            Some(json!({"title": "t", "content": "c", "locales_id": 1, "blog_category_id": 1})),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("insufficient_scope")));
    assert_eq!(b.call("GET", "/blog", "carl", "profile", None).await.0, 403);
    // A client's own token writes for no user.
    assert_eq!(
        b.call(
            "POST",
            &format!("/blog/articles/{id}/comments"),
            "partner-app",
            WRITE,
            Some(json!({"content": "x"}))
        )
        .await
        .0,
        403
    );

    // Optimistic concurrency.
    let (status, body, headers) = b
        .call_with(
            "PATCH",
            &format!("/blog/articles/{id}"),
            "ana",
            Some(json!({"title": "First, edited"})),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["modify_timestamp"].as_i64() >= body["data"]["create_timestamp"].as_i64());
    let updated: ArticleUpdated = b.events.next(ArticleUpdated::TYPE).await.payload().unwrap().unwrap();
    assert_eq!(updated.title, "First, edited");
    let (status, body, _) = b
        .call_with(
            "PATCH",
            &format!("/blog/articles/{id}"),
            "ana",
            Some(json!({"title": "Stale"})),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (412, Some("precondition_failed")));
    let fresh = headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(
        b.call_with(
            "DELETE",
            &format!("/blog/articles/{id}"),
            "ana",
            None,
            &[("if-match", &etag)]
        )
        .await
        .0,
        412
    );
    assert_eq!(
        b.call_with(
            "DELETE",
            &format!("/blog/articles/{id}"),
            "ana",
            None,
            &[("if-match", &fresh)]
        )
        .await
        .0,
        204
    );
    let deleted: ArticleDeleted = b.events.next(ArticleDeleted::TYPE).await.payload().unwrap().unwrap();
    assert_eq!(deleted.article_id.get(), id);
    assert_eq!(
        b.call("GET", &format!("/blog/articles/{id}"), "reader", READ, None)
            .await
            .0,
        404
    );
    assert_eq!(
        b.call("GET", &format!("/blog/comments/{comment}"), "reader", READ, None)
            .await
            .0,
        405
    );
    assert!(titles(&b.feed("").await).is_empty());
}

#[tokio::test]
async fn authors_write_readers_read_and_others_cannot_edit_sqlite() {
    authors_write_readers_read_and_others_cannot_edit(Backend::Sqlite).await;
}

#[tokio::test]
async fn authors_write_readers_read_and_others_cannot_edit_postgres() {
    authors_write_readers_read_and_others_cannot_edit(Backend::Postgres).await;
}

async fn bad_input_is_refused_naming_the_field(backend: Backend) {
    let b = start(backend).await;
    let good = json!({"title": "T", "content": "C", "locales_id": 1, "blog_category_id": 1});
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    for (body, field) in [
        (with("title", json!("x".repeat(201))), "title"),
        (with("title", json!("   ")), "title"),
        (with("content", json!("é".repeat(5001))), "content"),
        (with("locales_id", json!(999)), "locales_id"),
        (with("blog_category_id", json!(999)), "blog_category_id"),
    ] {
        let (status, body, _) = b.call("POST", "/blog/articles", "ana", WRITE, Some(body)).await;
        assert_eq!(status, 422, "{body}");
        assert!(
            body["debugMessage"].as_str().unwrap().starts_with(field),
            "{field}: {body}"
        );
    }
    let every = json!({"title": " ", "content": "C", "locales_id": 999, "blog_category_id": 999});
    let (status, body, _) = b.call("POST", "/blog/articles", "ana", WRITE, Some(every)).await;
    assert_eq!(status, 422, "{body}");
    let fields = test_support::invalid_fields(&body);
    assert_eq!(
        fields,
        ["title", "locales_id", "blog_category_id"],
        "every bad field: {body}"
    );
    let (status, body, _) = b
        .call("POST", "/blog/articles", "ana", WRITE, Some(with("extra", json!(1))))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["debugMessage"].as_str().unwrap().contains("extra"), "{body}");
    let (status, _, _) = b
        .call(
            "POST",
            "/blog/articles",
            "ana",
            WRITE,
            Some(with("content", json!("x".repeat(30_000)))),
        )
        .await;
    assert_eq!(status, 413, "beyond the body limit");
    let (status, body, _) = b.call("GET", "/blog?size=500", "ana", READ, None).await;
    assert_eq!((status, body["success"].as_bool()), (422, Some(false)));
    let (status, _, _) = b.call("GET", "/blog?locale=xx", "ana", READ, None).await;
    assert_eq!(status, 422);
    let (status, _, _) = b.call("GET", "/blog/articles/abc", "ana", READ, None).await;
    assert_eq!(status, 404);
    assert!(titles(&b.feed("").await).is_empty(), "nothing was saved");
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_sqlite() {
    bad_input_is_refused_naming_the_field(Backend::Sqlite).await;
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_postgres() {
    bad_input_is_refused_naming_the_field(Backend::Postgres).await;
}

async fn the_feed_filters_and_pages(backend: Backend) {
    let b = start(backend).await;
    let (status, body, _) = b
        .call(
            "POST",
            "/blog/categories",
            "admin",
            ADMIN,
            Some(json!({"name": "Rust"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let rust = body["data"]["id"].as_i64().unwrap();
    b.article("ana", "Ownership explained", 2, rust).await;
    b.article("bob", "Les croissants", 1, 1).await;
    b.article("ana", "Borrowing 100%", 2, rust).await;
    let newest_first = titles(&b.feed("").await)
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>();
    assert_eq!(
        newest_first,
        ["Borrowing 100%", "Les croissants", "Ownership explained"]
    );
    assert_eq!(
        titles(&b.feed(&format!("?category={rust}")).await),
        ["Borrowing 100%", "Ownership explained"]
    );
    assert_eq!(titles(&b.feed("?locale=fr").await), ["Les croissants"]);
    assert_eq!(titles(&b.feed("?locale=2").await).len(), 2);
    let author = b.feed("?q=croissant").await["data"][0]["article"]["account_id"]
        .as_i64()
        .unwrap();
    assert_eq!(titles(&b.feed(&format!("?author={author}")).await), ["Les croissants"]);
    assert_eq!(titles(&b.feed("?q=OWNERSHIP").await), ["Ownership explained"]);
    assert_eq!(
        titles(&b.feed("?q=the%20content").await).len(),
        3,
        "content is searched too"
    );
    assert_eq!(
        titles(&b.feed("?q=100%25").await),
        ["Borrowing 100%"],
        "% is a character, not a wildcard"
    );
    let (_, page, headers) = b.call("GET", "/blog?size=2&category=0", "reader", READ, None).await;
    assert_eq!(titles(&page).len(), 2);
    let link = headers["link"].to_str().unwrap();
    assert!(
        link.contains("</blog?size=2&category=0&page=2>; rel=\"next\""),
        "{link}"
    );
    let (_, last, headers) = b.call("GET", "/blog?size=2&page=2", "reader", READ, None).await;
    assert_eq!(titles(&last), ["Ownership explained"]);
    assert!(!headers["link"].to_str().unwrap().contains("next"));
    // Beyond ASCII, case folds alike on both backends, whatever the database's locale.
    b.article("bob", "Été à Paris", 1, 1).await;
    assert_eq!(titles(&b.feed("?q=%C3%A9t%C3%A9").await), ["Été à Paris"], "été");
    assert_eq!(
        titles(&b.feed("?q=%C3%89T%C3%89%20%C3%80").await),
        ["Été à Paris"],
        "ÉTÉ À"
    );
}

#[tokio::test]
async fn the_feed_filters_and_pages_sqlite() {
    the_feed_filters_and_pages(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_feed_filters_and_pages_postgres() {
    the_feed_filters_and_pages(Backend::Postgres).await;
}

#[tokio::test]
async fn administrators_manage_locales_and_categories() {
    let b = start(Backend::Sqlite).await;
    let (status, _, _) = b
        .call("POST", "/blog/locales", "ana", WRITE, Some(json!({"name": "de"})))
        .await;
    assert_eq!(status, 403);
    let (status, body, _) = b
        .call("POST", "/blog/locales", "admin", ADMIN, Some(json!({"name": "pt-BR"})))
        .await;
    assert_eq!(status, 201, "{body}");
    let locale = body["data"]["id"].as_i64().unwrap();
    assert_eq!(
        b.call("POST", "/blog/locales", "admin", ADMIN, Some(json!({"name": "pt-BR"})))
            .await
            .0,
        409
    );
    let (status, body, _) = b
        .call(
            "POST",
            "/blog/locales",
            "admin",
            ADMIN,
            Some(json!({"name": "Portuguese"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (_, body, _) = b.call("GET", "/blog/locales", "reader", READ, None).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 3);
    b.article("ana", "Olá", locale, 1).await;
    assert_eq!(
        b.call("DELETE", &format!("/blog/locales/{locale}"), "admin", ADMIN, None)
            .await
            .0,
        409,
        "in use"
    );
    assert_eq!(
        b.call("DELETE", "/blog/categories/1", "admin", ADMIN, None).await.0,
        409
    );
    let (status, body, _) = b
        .call(
            "PATCH",
            "/blog/categories/1",
            "admin",
            ADMIN,
            Some(json!({"name": "Général"})),
        )
        .await;
    assert_eq!((status, &body["data"]["name"]), (200, &json!("Général")));
    assert_eq!(b.feed("").await["data"][0]["article"]["category"]["name"], "Général");
    let (_, body, _) = b
        .call(
            "POST",
            "/blog/categories",
            "admin",
            ADMIN,
            Some(json!({"name": "Empty"})),
        )
        .await;
    let empty = body["data"]["id"].as_i64().unwrap();
    assert_eq!(
        b.call("DELETE", &format!("/blog/categories/{empty}"), "admin", ADMIN, None)
            .await
            .0,
        204
    );
    assert_eq!(
        b.call("DELETE", &format!("/blog/categories/{empty}"), "admin", ADMIN, None)
            .await
            .0,
        404
    );
    // An administrator may delete anyone's article.
    let id = b.article("bob", "Spam", 1, 1).await;
    assert_eq!(
        b.call("DELETE", &format!("/blog/articles/{id}"), "admin", ADMIN, None)
            .await
            .0,
        204
    );
}

async fn author_data_follows_user_events(backend: Backend) {
    let mut b = start(backend).await;
    b.publish(
        "ana",
        &UserRegistered {
            user_id: "ana".parse().unwrap(),
            username: "ana".into(),
            email: "a@x.io".into(),
            registered_at: 0,
        },
        0,
    )
    .await;
    let id = b.article("ana", "Hello", 1, 1).await;
    let probe = b.article("probe", "Probe", 1, 1).await;
    let avatar_of = |feed: &Value, article: i64| {
        feed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["article"]["id"] == article)
            .map(|i| i["article"]["account"]["avatar"]["path"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(avatar_of(&b.feed("").await, id), "https://cdn.example.com/default.png");
    let (_, _, headers) = b
        .call("GET", &format!("/blog/articles/{id}"), "reader", READ, None)
        .await;
    let first_tag = headers["etag"].to_str().unwrap().to_owned();
    let update = |user: &str, picture: &str| UserUpdated {
        user_id: user.parse().unwrap(),
        username: user.into(),
        picture: Some(picture.into()),
        group: None,
        phone: None,
    };
    b.publish("ana", &update("ana", "https://cdn.example.com/new.png"), 0)
        .await;
    b.eventually("", |f| avatar_of(f, id) == "https://cdn.example.com/new.png")
        .await;
    // The article did not change, its representation did: a new ETag, no 304.
    let (status, _, headers) = b
        .api
        .call(
            "GET",
            &format!("/blog/articles/{id}"),
            As {
                subject: "reader",
                scope: READ,
            },
            None,
            &[("if-none-match", &first_tag)],
        )
        .await;
    assert_eq!(status, 200);
    assert_ne!(headers["etag"].to_str().unwrap(), first_tag);

    // An event older than the one applied changes nothing. Events are handled in order, so once
    // a later one (the probe's) shows, the old one has been handled.
    b.publish("ana", &update("ana", "https://cdn.example.com/old.png"), 60_000)
        .await;
    b.publish("probe", &update("probe", "https://cdn.example.com/probe.png"), 0)
        .await;
    let feed = b
        .eventually("", |f| avatar_of(f, probe) == "https://cdn.example.com/probe.png")
        .await;
    assert_eq!(avatar_of(&feed, id), "https://cdn.example.com/new.png");

    b.publish(
        "ana",
        &UserDeleted {
            user_id: "ana".parse().unwrap(),
        },
        0,
    )
    .await;
    let deleted: ArticleDeleted = b.events.next(ArticleDeleted::TYPE).await.payload().unwrap().unwrap();
    assert_eq!((deleted.article_id.get(), deleted.author_id.as_str()), (id, "ana"));
    b.eventually("", |f| titles(f) == ["Probe"]).await;
    // Neither a late event nor a write with a token not yet refused brings the user back.
    b.publish("ana", &update("ana", "https://cdn.example.com/late.png"), 0)
        .await;
    let body = json!({"title": "Back", "content": "again", "locales_id": 1, "blog_category_id": 1});
    let (status, body, _) = b.call("POST", "/blog/articles", "ana", WRITE, Some(body)).await;
    assert_eq!(
        (status, body["debugMessage"].as_str()),
        (403, Some("this account was deleted"))
    );
    let (status, _, _) = b
        .call(
            "POST",
            &format!("/blog/articles/{probe}/comments"),
            "ana",
            WRITE,
            Some(json!({"content": "hi"})),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn author_data_follows_user_events_sqlite() {
    author_data_follows_user_events(Backend::Sqlite).await;
}

#[tokio::test]
async fn author_data_follows_user_events_postgres() {
    author_data_follows_user_events(Backend::Postgres).await;
}

/// The JSON type of every field, recursively (arrays by their first element).
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::String(_) => json!("string"),
        Value::Number(n) if n.is_i64() => json!("integer"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("boolean"),
        Value::Null => json!("null"),
    }
}

/// Seed 002's `GET /blog` document, field by field: names, nesting, types.
#[tokio::test]
async fn get_blog_has_seed_002s_shape() {
    let seed: Value = serde_json::from_str(include_str!("seed_002_blog.json")).unwrap();
    let b = start(Backend::Sqlite).await;
    let plain = b.article("ana", "Sans commentaire", 1, 1).await;
    let commented = b.article("ana", "Avec commentaires", 1, 1).await;
    for text in ["one", "two", "three"] {
        b.call(
            "POST",
            &format!("/blog/articles/{commented}/comments"),
            "bob",
            WRITE,
            Some(json!({"content": text})),
        )
        .await;
    }
    let feed = b.feed("").await;
    let top = |v: &Value| {
        let mut v = shape(v);
        v["data"] = Value::Null;
        v
    };
    assert_eq!(top(&feed), top(&seed));
    assert_eq!(feed["path"], "/blog");
    assert_eq!(
        (feed["status"].as_i64(), feed["error"].as_str()),
        (Some(200), Some("OK"))
    );
    let (with_comments, without) = (&feed["data"][0], &feed["data"][1]);
    assert_eq!(with_comments["article"]["id"], commented);
    assert_eq!(without["article"]["id"], plain);
    assert_eq!(
        shape(with_comments),
        shape(&seed["data"][4]),
        "an article with comments"
    );
    assert_eq!(
        shape(without),
        shape(&seed["data"][0]),
        "an article without: no `comments` key"
    );
    let comments: Vec<_> = with_comments["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        comments,
        ["two", "three"],
        "the newest comments_per_article, oldest first"
    );
    let now = storage::now_millis();
    assert!(
        (now - feed["timestamp"].as_i64().unwrap()).abs() < 60_000,
        "epoch milliseconds"
    );
    assert!((now - with_comments["article"]["create_timestamp"].as_i64().unwrap()).abs() < 60_000);
}
