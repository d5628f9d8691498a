//! Fixtures for tests that need the real servers `deploy/servers.sh start` runs on loopback.
//!
//! A missing server is a failure, never a skip: `make test` starts them, and by hand
//! `deploy/servers.sh start && eval "$(deploy/servers.sh env)"` does.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;

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

/// A name no other test (or earlier run) uses, for exchanges, key prefixes, databases.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
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
