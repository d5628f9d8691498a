//! The pool against a real PostgreSQL: it lends connections without a ping, so a connection
//! the server closed must be dropped after the one request it fails, never lent again.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use diesel::sql_types::Integer;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use storage::{Database, PoolSettings, StorageError};

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

async fn backend_pid(db: &Database) -> Result<i32, StorageError> {
    db.run(|c| {
        Ok(diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result::<Pid>(c)?
            .pid)
    })
    .await
}

#[tokio::test]
async fn a_connection_the_server_closed_fails_once_then_is_replaced() {
    let test_db = test_support::TestDatabase::create();
    let settings = PoolSettings {
        max_connections: 1,
        ..PoolSettings::default()
    };
    let url = test_db.url.clone();
    let db = tokio::task::spawn_blocking(move || Database::connect(&url, &settings))
        .await
        .unwrap()
        .unwrap();
    let before = backend_pid(&db).await.unwrap();
    let mut admin = PgConnection::establish(&test_support::postgres_url()).unwrap();
    diesel::sql_query(format!("SELECT pg_terminate_backend({before})"))
        .execute(&mut admin)
        .unwrap();
    assert!(
        backend_pid(&db).await.is_err(),
        "the closed connection fails its request"
    );
    let after = backend_pid(&db).await.expect("a new connection serves the next one");
    assert_ne!(before, after);
    assert!(db.statements() >= 3, "statements are counted");
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Transactions that read before they write, from every connection of an SQLite pool at once
/// (as the outbox and its consumers do under load): none fails with "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_transactions_that_read_then_write_do_not_lock_each_other_out() {
    let sqlite = test_support::TestSqlite::create();
    let db = Database::connect(&sqlite.url, &PoolSettings::default()).unwrap();
    db.run(|c| Ok(diesel::sql_query("CREATE TABLE counter (n BIGINT NOT NULL)").execute(c)?))
        .await
        .unwrap();
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    db.transaction(|c| {
                        let seen: Count = diesel::sql_query("SELECT COUNT(*) AS n FROM counter").get_result(c)?;
                        // Give another transaction the time to write between this read and
                        // this write: the upgrade from reader to writer is what fails.
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        diesel::sql_query(format!("INSERT INTO counter (n) VALUES ({})", seen.n)).execute(c)?;
                        Ok(())
                    })
                    .await
                    .expect("no transaction fails");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let total: Count = db
        .run(|c| Ok(diesel::sql_query("SELECT COUNT(*) AS n FROM counter").get_result(c)?))
        .await
        .unwrap();
    assert_eq!(total.n, 400);
}

#[derive(QueryableByName)]
struct Encrypted {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    ssl: bool,
}

async fn open(url: String) -> Result<Database, StorageError> {
    let settings = PoolSettings {
        max_connections: 1,
        connect_timeout: std::time::Duration::from_secs(2),
    };
    tokio::task::spawn_blocking(move || Database::connect(&url, &settings))
        .await
        .unwrap()
}

/// libpq's TLS (`sslmode=verify-full`): the connection is encrypted when the server's
/// certificate chains to the named CA, and refused when it does not, or when only the
/// system's roots are trusted (the URL names none: see `with_system_roots`).
#[tokio::test]
async fn verify_full_connects_only_to_a_certificate_a_trusted_ca_signed() {
    let tls = test_support::tls();
    let trusted = format!("{}&sslrootcert={}", tls.postgres_url, tls.ca_file.display());
    let db = open(trusted)
        .await
        .expect("the test CA signed the server's certificate");
    let encrypted = db
        .run(|c| {
            Ok(
                diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                    .get_result::<Encrypted>(c)?
                    .ssl,
            )
        })
        .await
        .unwrap();
    assert!(encrypted);
    let (foreign, _) = test_support::foreign_ca();
    let foreign = format!("{}&sslrootcert={}", tls.postgres_url, foreign.display());
    for (url, which) in [
        (foreign, "another CA"),
        (tls.postgres_url.clone(), "the system's roots"),
    ] {
        let refused = open(url).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("certificate verify failed"), "{which}: {refused}");
    }
}
