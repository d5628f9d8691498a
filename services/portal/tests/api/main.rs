//! The portal's store on both backends (the browser test runs the embedded one): a sign-in is
//! taken once and not after it expires; sessions expire, are taken once, and keep refreshed
//! tokens; usage reports add up per day and API.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use portal::store::{self, SessionRow, SignInRow};
use storage::Database;
use test_support::{Backend, Db};

async fn database(backend: Backend) -> (Db, Database) {
    let db = Db::create(backend);
    let url = db.url();
    let opened = tokio::task::spawn_blocking(move || Database::connect(&url, &storage::PoolSettings::default()))
        .await
        .unwrap()
        .unwrap();
    opened
        .migrate(&[&events::MIGRATIONS, &portal::MIGRATIONS])
        .await
        .unwrap();
    (db, opened)
}

fn session(id: &str, expires_at: i64) -> SessionRow {
    SessionRow {
        id_hash: id.to_owned(),
        user_id: "u1".parse().unwrap(),
        username: "alice".to_owned(),
        roles: "user".to_owned(),
        csrf: "c".to_owned(),
        access_token: "a1".to_owned(),
        refresh_token: Some("r1".to_owned()),
        access_expires_at: 10,
        created_at: 0,
        expires_at,
    }
}

async fn sign_ins_are_single_use_and_expire(backend: Backend) {
    let (_keep, db) = database(backend).await;
    let row = |hash: &str, expires_at| SignInRow {
        state_hash: hash.to_owned(),
        verifier: "v".to_owned(),
        return_to: "/portal/connected".to_owned(),
        expires_at,
    };
    let (live, old) = (row("live", 2_000), row("old", 500));
    db.run(move |c| {
        store::insert_sign_in(c, &live)?;
        Ok(store::insert_sign_in(c, &old)?)
    })
    .await
    .unwrap();
    let first = db.run(|c| Ok(store::take_sign_in(c, "live", 1_000)?)).await.unwrap();
    assert_eq!(first.map(|r| r.return_to).as_deref(), Some("/portal/connected"));
    let replay = db.run(|c| Ok(store::take_sign_in(c, "live", 1_000)?)).await.unwrap();
    assert!(replay.is_none(), "a callback replayed finds nothing");
    let expired = db.run(|c| Ok(store::take_sign_in(c, "old", 1_000)?)).await.unwrap();
    assert!(expired.is_none(), "an expired sign-in is refused");
}

async fn sessions_expire_refresh_and_end_once(backend: Backend) {
    let (_keep, db) = database(backend).await;
    let (live, old) = (session("live", 5_000), session("old", 1_000));
    db.run(move |c| {
        store::insert_session(c, &live)?;
        Ok(store::insert_session(c, &old)?)
    })
    .await
    .unwrap();
    assert!(
        db.run(|c| Ok(store::session(c, "old", 2_000)?))
            .await
            .unwrap()
            .is_none()
    );
    db.run(|c| Ok(store::set_tokens(c, "live", "a2", None, 4_000)?))
        .await
        .unwrap();
    let read = db
        .run(|c| Ok(store::session(c, "live", 2_000)?))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (read.access_token.as_str(), read.refresh_token, read.access_expires_at),
        ("a2", None, 4_000)
    );
    assert_eq!(
        db.run(|c| Ok(store::purge_expired(c, 2_000)?)).await.unwrap(),
        1,
        "the expired session is purged"
    );
    let ended = db.run(|c| Ok(store::take_session(c, "live")?)).await.unwrap();
    assert_eq!(
        ended.map(|r| r.access_token).as_deref(),
        Some("a2"),
        "signing out gets the tokens to revoke"
    );
    assert!(db.run(|c| Ok(store::take_session(c, "live")?)).await.unwrap().is_none());
}

fn report(day: &str, api: &str, requests: i64, buckets: [i64; 10]) -> events::catalogue::UsageReported {
    events::catalogue::UsageReported {
        client_id: "app".parse().unwrap(),
        api: api.to_owned(),
        day: day.to_owned(),
        requests,
        client_errors: 1,
        server_errors: 2,
        latency_buckets: buckets.to_vec(),
    }
}

async fn usage_reports_add_up_per_day_and_api(backend: Backend) {
    let (_keep, db) = database(backend).await;
    let reports = [
        report("2026-11-30", "/blog", 5, [5, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        report("2026-11-30", "/blog", 3, [0, 0, 0, 0, 0, 0, 0, 0, 0, 3]),
        report("2026-11-30", "/users", 1, [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
        report("2026-10-01", "/blog", 7, [7, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    ];
    db.run(move |c| {
        for r in &reports {
            store::add_usage(c, r)?;
        }
        Ok(())
    })
    .await
    .unwrap();
    let rows = db.run(|c| Ok(store::usage_of(c, "app", "2026-11-01")?)).await.unwrap();
    let seen: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.day.as_str(),
                r.api.as_str(),
                r.requests,
                r.client_errors,
                r.server_errors,
                r.buckets.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("2026-11-30", "/blog", 8, 2, 4, "5 0 0 0 0 0 0 0 0 3"),
            ("2026-11-30", "/users", 1, 1, 2, "0 1 0 0 0 0 0 0 0 0"),
        ]
    );
    assert!(
        db.run(|c| Ok(store::usage_of(c, "other", "2026-01-01")?))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(db.run(|c| Ok(store::purge_usage(c, "2026-11-01")?)).await.unwrap(), 1);
}

macro_rules! backend_suite {
    ($name:ident, $backend:expr) => {
        mod $name {
            #[tokio::test]
            async fn sign_ins_are_single_use_and_expire() {
                super::sign_ins_are_single_use_and_expire($backend).await;
            }

            #[tokio::test]
            async fn usage_reports_add_up_per_day_and_api() {
                super::usage_reports_add_up_per_day_and_api($backend).await;
            }

            #[tokio::test]
            async fn sessions_expire_refresh_and_end_once() {
                super::sessions_expire_refresh_and_end_once($backend).await;
            }
        }
    };
}

backend_suite!(sqlite, test_support::Backend::Sqlite);
backend_suite!(postgres, test_support::Backend::Postgres);
