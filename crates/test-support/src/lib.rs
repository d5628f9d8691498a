//! Fixtures for tests that need the real servers `deploy/servers.sh start` runs on loopback.
//!
//! A missing server is a failure, never a skip: `make test` starts them, and by hand
//! `deploy/servers.sh start && eval "$(deploy/servers.sh env)"` does.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod calls;
#[cfg(feature = "platform")]
pub mod platform;
pub mod receiver;
mod signing;

use std::path::PathBuf;

pub use calls::{Answer, As, IDENTITY_SECRET, Signed, Watch};
pub use signing::{TestKey, claims_of};

use diesel::{Connection, PgConnection, RunQueryDsl};

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: this test needs a real server. Run `make test`, or start them with \
             `deploy/servers.sh start && eval \"$(deploy/servers.sh env)\"`"
        )
    })
}

pub fn postgres_url() -> String {
    required("PLATFORM_TEST_POSTGRES_URL")
}

pub fn redis_url() -> String {
    required("PLATFORM_TEST_REDIS_URL")
}

pub fn amqp_url() -> String {
    required("PLATFORM_TEST_AMQP_URL")
}

/// The servers' TLS side (`deploy/servers.sh`): each presents a certificate for 127.0.0.1
/// signed by one test CA.
pub struct Tls {
    pub ca_file: PathBuf,
    pub ca_pem: String,
    /// `sslmode=verify-full`, without a root certificate.
    pub postgres_url: String,
    pub redis_url: String,
    pub amqp_url: String,
}

pub fn tls() -> Tls {
    let ca_file = PathBuf::from(required("PLATFORM_TEST_TLS_CA"));
    Tls {
        ca_pem: std::fs::read_to_string(&ca_file).expect("the test CA (deploy/servers.sh start makes it)"),
        ca_file,
        postgres_url: required("PLATFORM_TEST_POSTGRES_TLS_URL"),
        redis_url: required("PLATFORM_TEST_REDIS_TLS_URL"),
        amqp_url: required("PLATFORM_TEST_AMQP_TLS_URL"),
    }
}

/// A CA made here and now (openssl, P-256) that signed none of the servers' certificates:
/// the PEM file and its text.
pub fn foreign_ca() -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(unique("foreign-ca"));
    std::fs::create_dir_all(&dir).unwrap();
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-days", "1", "-subj", "/CN=a CA the servers never saw"])
        .args(["-keyout", "ca.key", "-out", "ca.pem"])
        .current_dir(&dir)
        .output()
        .expect("openssl (deploy/servers.sh install puts it there)");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let file = dir.join("ca.pem");
    let pem = std::fs::read_to_string(&file).unwrap();
    (file, pem)
}

/// A name no other test (or earlier run) uses, for exchanges, key prefixes, databases.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// The fields a 422's `errors` names, in order.
pub fn invalid_fields(body: &serde_json::Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .expect("a 422 lists its fields in `errors`")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `deploy/servers.sh`, for tests that stop and start a server.
pub fn servers_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/servers.sh")
}

/// A PostgreSQL database of its own for one test, dropped when the value is.
pub struct TestDatabase {
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestDatabase {
    pub fn create() -> Self {
        let admin_url = postgres_url();
        let name = unique("test");
        let mut admin = PgConnection::establish(&admin_url).expect("connect to the test PostgreSQL");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("create database");
        let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
        Self {
            url: format!("{base}/{name}"),
            name,
            admin_url,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ =
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut admin);
        }
    }
}

/// A SQLite database file of its own for one test, in a directory removed when dropped.
pub struct TestSqlite {
    pub url: String,
    dir: PathBuf,
}

impl TestSqlite {
    pub fn create() -> Self {
        let dir = std::env::temp_dir().join(unique("platform-test"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self {
            url: format!("sqlite://{}", dir.join("test.db").display()),
            dir,
        }
    }
}

impl Drop for TestSqlite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port free at the time of asking, for a server process started next.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A Redis server of its own for one test, which the test may stop (the shared one must stay
/// up for the others). Uses the `redis-server` that `deploy/servers.sh` installed.
pub struct OwnRedis {
    pub url: String,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    pub fn start() -> Self {
        let port = free_port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (installed by deploy/servers.sh)");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self {
            url: format!("redis://127.0.0.1:{port}"),
            child: Some(child),
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The two ways a service runs: embedded (SQLite, in-process bus) or production (PostgreSQL,
/// RabbitMQ). Contract tests run each scenario on both.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database of its own for one test, on either backend.
pub enum Db {
    Sqlite(TestSqlite),
    Postgres(TestDatabase),
}

impl Db {
    pub fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::Sqlite(TestSqlite::create()),
            Backend::Postgres => Self::Postgres(TestDatabase::create()),
        }
    }

    pub fn url(&self) -> String {
        match self {
            Self::Sqlite(db) => db.url.clone(),
            Self::Postgres(db) => db.url.clone(),
        }
    }
}

/// The bus of `backend`: a new in-process bus, or a RabbitMQ connection named `name` on
/// `exchange` (a unique exchange keeps tests apart).
pub fn bus(backend: Backend, exchange: &str, name: &str) -> std::sync::Arc<dyn events::Bus> {
    match backend {
        Backend::Sqlite => std::sync::Arc::new(events::InProcessBus::new()),
        Backend::Postgres => std::sync::Arc::new(events::RabbitBus::new(events::RabbitSettings {
            url: amqp_url(),
            exchange: exchange.to_owned(),
            connection_name: name.to_owned(),
            tls_ca: None,
        })),
    }
}

/// A service's cache on `backend`: in its process beside SQLite, or on the test Redis under a
/// key prefix of its own beside PostgreSQL, as in production.
pub fn use_cache(backend: Backend, settings: &mut cache::CacheSettings, name: &str) {
    if backend == Backend::Postgres {
        settings.kind = cache::CacheKind::Redis;
        settings.url = redis_url().into();
        settings.prefix = format!("{}:", unique(name));
    }
}

/// A service's bus on the test RabbitMQ, on `exchange`.
pub fn use_rabbitmq(settings: &mut runtime::BusSettings, exchange: &str) {
    settings.kind = runtime::BusKind::Rabbitmq;
    settings.url = amqp_url().into();
    settings.exchange = exchange.to_owned();
}

/// The base URL of a started service, whose stopping runs in the background.
pub fn served(started: runtime::Started) -> String {
    let base = format!("http://{}", started.http.addr);
    tokio::spawn(started.stopped());
    base
}

/// Waits until the service at `base` answers `/readyz` with success (at most 20 s).
pub async fn wait_ready(base: &str, what: &str) {
    let started = std::time::Instant::now();
    while reqwest::get(format!("{base}/readyz"))
        .await
        .map_or(true, |r| !r.status().is_success())
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{what} did not become ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
