//! One database code path for PostgreSQL (production) and SQLite (embedded mode).
//!
//! Repository functions take `&mut AnyConnection` and return `QueryResult`, so several compose in
//! one transaction (the outbox depends on this). [`Database::run`] carries such a closure to
//! tokio's blocking pool, because diesel is synchronous and must never block the executor.

mod error;
mod migrations;
mod pool;
mod prepared;

pub use diesel;
pub use error::StorageError;
pub use migrations::Migrations;
pub use pool::{Backend, Database, PoolSettings};
pub use prepared::Prepared;

/// A connection to either backend; queries written once run on both.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// `rows` rows of `columns` placeholders for a multi-row `VALUES`, numbered in order of
/// appearance (as SQLite numbers them), from `$1`: bind row by row, column by column.
pub fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let marks: Vec<String> = (1..=columns).map(|col| format!("${}", row * columns + col)).collect();
            format!("({})", marks.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Milliseconds since the Unix epoch: the one time representation both backends store alike.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
