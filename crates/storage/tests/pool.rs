//! The pool against a real PostgreSQL: it lends connections without a ping, yet a server that
//! ended every session (a restart, a failover, an administrator) fails no request.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use diesel::sql_types::{Integer, Text};
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

/// Ends every session of the test database, as a server shutting down does.
fn end_every_session(database: &str) -> usize {
    let mut admin = PgConnection::establish(&test_support::postgres_url()).unwrap();
    diesel::sql_query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind::<Text, _>(database)
        .execute(&mut admin)
        .unwrap()
}

/// Opens `n` connections at once, so the pool holds that many.
async fn warm(db: &Database, n: usize) -> Vec<i32> {
    let loans: Vec<_> = (0..n)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                db.run(|c| {
                    Ok(
                        diesel::sql_query("SELECT pg_backend_pid() AS pid, pg_sleep(0.2)::text AS slept")
                            .get_result::<PidAfterSleep>(c)?
                            .pid,
                    )
                })
                .await
            })
        })
        .collect();
    let mut pids = Vec::new();
    for loan in loans {
        pids.push(loan.await.unwrap().unwrap());
    }
    pids
}

#[derive(QueryableByName)]
struct PidAfterSleep {
    #[diesel(sql_type = Integer)]
    pid: i32,
    #[diesel(sql_type = Text)]
    #[allow(dead_code)]
    slept: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_the_server_ended_fail_no_request_and_no_write_happens_twice() {
    let test_db = test_support::TestDatabase::create();
    let settings = PoolSettings {
        max_connections: 4,
        ..PoolSettings::default()
    };
    let url = test_db.url.clone();
    let db = tokio::task::spawn_blocking(move || Database::connect(&url, &settings))
        .await
        .unwrap()
        .unwrap();
    db.run(|c| Ok(diesel::sql_query("CREATE TABLE writes (n INTEGER NOT NULL)").execute(c)?))
        .await
        .unwrap();
    let before = warm(&db, 4).await;
    let sessions = before.iter().collect::<std::collections::HashSet<_>>().len();
    assert!(sessions > 1, "the pool holds several sessions");
    assert_eq!(end_every_session(test_db.name()), sessions, "every one of them ended");

    // Reads, a single write and a transaction, some at once: none fails.
    let reads: Vec<_> = (0..8)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { backend_pid(&db).await })
        })
        .collect();
    db.run(|c| Ok(diesel::sql_query("INSERT INTO writes (n) VALUES (1)").execute(c)?))
        .await
        .expect("a single write on a lost connection is sent again on a new one");
    db.transaction(|c| Ok(diesel::sql_query("INSERT INTO writes (n) VALUES (2)").execute(c)?))
        .await
        .expect("a transaction whose BEGIN found the connection lost begins on a new one");
    for read in reads {
        let pid = read.await.unwrap().expect("no read fails");
        assert!(!before.contains(&pid), "served by a new session");
    }
    let written: Count = db
        .run(|c| Ok(diesel::sql_query("SELECT COUNT(*) AS n FROM writes").get_result(c)?))
        .await
        .unwrap();
    assert_eq!(written.n, 2, "each write happened once");
    assert!(db.statements() >= 14, "statements are counted");
}

/// Runs a transaction of two inserts into a new table, the first try meeting `fault` between
/// them; how many times it ran, and how many rows it left.
async fn interrupted_once<F>(db: &Database, fault: F) -> (usize, i64)
where
    F: Fn(&mut storage::AnyConnection) -> Result<(), StorageError> + Send + Sync + 'static,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    db.run(|c| Ok(diesel::sql_query("CREATE TABLE writes (n INTEGER NOT NULL)").execute(c)?))
        .await
        .unwrap();
    let tries = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = tries.clone();
    db.transaction(move |c| {
        diesel::sql_query("INSERT INTO writes (n) VALUES (1)").execute(c)?;
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            fault(c)?;
        }
        diesel::sql_query("INSERT INTO writes (n) VALUES (2)").execute(c)?;
        Ok(())
    })
    .await
    .expect("the transaction commits on a new connection");
    let written: Count = db
        .run(|c| Ok(diesel::sql_query("SELECT COUNT(*) AS n FROM writes").get_result(c)?))
        .await
        .unwrap();
    (tries.load(Ordering::SeqCst), written.n)
}

/// A transaction whose session the server ends after its first write (a restart while it was
/// open) was rolled back: it runs again on a new session, and its writes happen once.
#[tokio::test]
async fn a_transaction_the_server_ended_before_its_commit_runs_again_once() {
    let test_db = test_support::TestDatabase::create();
    let db = pooled(&test_db.url).await;
    let ended = interrupted_once(&db, |c| {
        diesel::sql_query("SELECT pg_terminate_backend(pg_backend_pid())").execute(c)?;
        Ok(())
    })
    .await;
    assert_eq!(ended, (2, 2), "ran twice; only the second try's two writes committed");
}

/// A TCP relay to PostgreSQL that can cut every connection it carries, as a network or a
/// server that dies without a word does (no message before the end, unlike a shutdown).
struct Relay {
    port: u16,
    carried: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    fn to(server: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let carried = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (server, kept) = (server.to_owned(), carried.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let upstream = std::net::TcpStream::connect(&server).unwrap();
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap()),
                    (upstream.try_clone().unwrap(), client.try_clone().unwrap()),
                ] {
                    std::thread::spawn(move || std::io::copy(&mut from, &mut to));
                }
                kept.lock().unwrap().extend([client, upstream]);
            }
        });
        Self { port, carried }
    }

    fn cut(&self) {
        for stream in self.carried.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A transaction whose connection is cut after its first write, before its `COMMIT` was sent,
/// cannot have committed: it runs again on a new connection, and its writes happen once.
#[tokio::test]
async fn a_transaction_cut_off_before_its_commit_runs_again_once() {
    let test_db = test_support::TestDatabase::create();
    let (authority, database) = test_db.url.split_once("@").unwrap().1.split_once('/').unwrap();
    let relay = std::sync::Arc::new(Relay::to(authority));
    let through_relay = test_db.url.replace(authority, &format!("127.0.0.1:{}", relay.port));
    assert!(through_relay.ends_with(database));
    let db = pooled(&through_relay).await;
    let cut = interrupted_once(&db, move |_| {
        relay.cut();
        Ok(())
    })
    .await;
    assert_eq!(cut, (2, 2), "ran twice; only the second try's two writes committed");
}

/// A pool with the default settings.
async fn pooled(url: &str) -> Database {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || Database::connect(&url, &PoolSettings::default()))
        .await
        .unwrap()
        .unwrap()
}

/// A statement the server fails is not a lost connection: it is not run again.
#[tokio::test]
async fn a_failing_statement_is_not_repeated() {
    let test_db = test_support::TestDatabase::create();
    let db = pooled(&test_db.url).await;
    let before = db.statements();
    let failed = db.run(|c| Ok(diesel::sql_query("SELECT 1 / 0 AS n").execute(c)?)).await;
    assert!(matches!(failed, Err(StorageError::Query(_))));
    assert_eq!(db.statements() - before, 1, "sent once");
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    plan_cache_mode: String,
}

/// Statements the pool prepared are planned with the table as it is now, never with a generic
/// plan made while it was small.
#[tokio::test]
async fn prepared_statements_are_planned_for_the_table_as_it_is() {
    let test_db = test_support::TestDatabase::create();
    let db = pooled(&test_db.url).await;
    let mode = db
        .run(|c| Ok(diesel::sql_query("SHOW plan_cache_mode").get_result::<Setting>(c)?))
        .await
        .unwrap();
    assert_eq!(mode.plan_cache_mode, "force_custom_plan");
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

/// A [`storage::Prepared`] statement is prepared once per connection, not parsed per call.
#[tokio::test]
async fn a_prepared_statement_is_prepared_once_per_connection() {
    let test_db = test_support::TestDatabase::create();
    let db = pooled(&test_db.url).await;
    let counts = db
        .run(|c| {
            let mut seen = Vec::new();
            for n in [1_i64, 2, 3] {
                let row: Count = storage::Prepared::new("SELECT CAST(? AS BIGINT) + 0 * length(?) AS n /* once */")
                    .big_int(n)
                    .text("x")
                    .get_result(c)?;
                assert_eq!(row.n, n);
                let prepared: Count = diesel::sql_query(
                    "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE '%/* once */%'",
                )
                .get_result(c)?;
                seen.push(prepared.n);
            }
            let unbound = storage::Prepared::new("SELECT ? AS n").get_result::<Count>(c);
            assert!(unbound.is_err(), "a placeholder without a value is refused");
            Ok(seen)
        })
        .await
        .unwrap();
    assert_eq!(counts, [1, 1, 1], "one prepared statement, made on the first call");
}
