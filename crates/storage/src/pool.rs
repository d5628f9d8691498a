use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, InstrumentationEvent, SimpleConnection, TransactionManager};
use diesel::r2d2::{self, ManageConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{Connection, PgConnection, SqliteConnection};

use crate::{AnyConnection, Migrations, StorageError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub connect_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// A pooled database; cheap to clone.
#[derive(Clone)]
pub struct Database {
    pool: r2d2::Pool<Manager>,
    backend: Backend,
    statements: Arc<AtomicU64>,
    losses: Losses,
}

/// How many times a connection of the pool was found lost (a server restart, a failover, an
/// administrator ending sessions). When one is, the others are likely lost too: each then
/// proves itself with one round trip before its next loan instead of failing a request.
#[derive(Debug, Clone, Default)]
struct Losses(Arc<AtomicU64>);

impl Losses {
    fn seen(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    fn noticed(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// A pooled connection, with the number of losses the pool had seen when it last answered.
struct Pooled {
    conn: AnyConnection,
    proven: u64,
}

/// Counts every statement the pool's connections run (queries, and the pool's own checks).
#[derive(Debug)]
struct CountStatements(Arc<AtomicU64>);

impl r2d2::CustomizeConnection<Pooled, r2d2::Error> for CountStatements {
    fn on_acquire(&self, pooled: &mut Pooled) -> Result<(), r2d2::Error> {
        let count = self.0.clone();
        pooled.conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if matches!(event, InstrumentationEvent::StartQuery { .. }) {
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(())
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never print it.
        f.debug_struct("Database")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Opens a pool for `url` (`postgres://…`, `postgresql://…`, `sqlite://path` or
    /// `sqlite::memory:`); SQLite creates the file and its directory when missing.
    /// Blocks for the first connection, so call it before serving.
    pub fn connect(url: &str, settings: &PoolSettings) -> Result<Self, StorageError> {
        let losses = Losses::default();
        let manager = Manager {
            target: Target::parse(url)?,
            losses: losses.clone(),
        };
        let backend = manager.target.backend();
        if let Target::Sqlite(path) = &manager.target
            && let Some(dir) = std::path::Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| StorageError::Open(format!("cannot create {}: {e}", dir.display())))?;
        }
        // SQLite allows one writer: a small pool avoids lock convoys; busy_timeout covers the rest.
        let max = match backend {
            Backend::Postgres => settings.max_connections,
            Backend::Sqlite => settings.max_connections.min(4),
        };
        let statements = Arc::new(AtomicU64::new(0));
        let pool = r2d2::Pool::builder()
            .connection_customizer(Box::new(CountStatements(statements.clone())))
            // No round trip before every loan, only after a loss (see `Losses`).
            .test_on_check_out(false)
            .max_size(max)
            .min_idle(Some(1))
            .connection_timeout(settings.connect_timeout)
            .build(manager)?;
        Ok(Self {
            pool,
            backend,
            statements,
            losses,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Statements run since the pool opened: divided by requests, it shows N+1 patterns.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Runs `work` with a pooled connection on the blocking pool, inside the caller's span.
    /// `work` runs again, once, on another connection when its own was lost before the
    /// statement could take effect (see [`lost_before_effect`]), so a database restart fails
    /// no request; hence `Fn`: a write that cannot be repeated belongs in a transaction.
    pub async fn run<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> Result<T, StorageError> + Send + 'static,
    {
        self.lend(move |lender| {
            let mut pooled = lender.checkout()?;
            match work(&mut pooled.conn) {
                Err(error) if lender.lost(&error) && lost_before_effect(&error) => {
                    drop(pooled);
                    work(&mut lender.checkout()?.conn)
                }
                done => done,
            }
        })
        .await
    }

    /// Like [`Database::run`], with `work` inside one transaction: all of it commits, or none.
    /// A connection found lost at `BEGIN` is replaced before `work` starts. A transaction that
    /// lost its connection before its `COMMIT` was sent (a restart under load) cannot have
    /// committed, nor one whose `COMMIT` the server refused by ending the session: it runs
    /// again, once, on another connection. Hence `Fn`, as for `run`.
    pub async fn transaction<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> Result<T, StorageError> + Send + 'static,
    {
        self.lend(move |lender| match lender.transact(&work) {
            Err(failed) if lender.lost(failed.error()) && failed.had_no_effect() => {
                lender.transact(&work).map_err(Failed::into_error)
            }
            done => done.map_err(Failed::into_error),
        })
        .await
    }

    async fn lend<T: Send + 'static>(
        &self,
        task: impl FnOnce(&Lender) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let lender = Lender {
            pool: self.pool.clone(),
            losses: self.losses.clone(),
        };
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            task(&lender)
        })
        .await
        .map_err(StorageError::Task)?
    }

    /// Applies every pending migration of each set, in order.
    pub async fn migrate(&self, sets: &[&'static Migrations]) -> Result<usize, StorageError> {
        let sets = sets.to_vec();
        self.run(move |conn| sets.iter().try_fold(0, |n, set| Ok(n + set.run(conn)?)))
            .await
    }

    /// Readiness probe: one round trip.
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.run(|conn| conn.batch_execute("SELECT 1").map_err(StorageError::from))
            .await
    }
}

/// Hands out connections on the blocking pool, proving each after a loss.
struct Lender {
    pool: r2d2::Pool<Manager>,
    losses: Losses,
}

impl Lender {
    fn checkout(&self) -> Result<r2d2::PooledConnection<Manager>, StorageError> {
        // Each try that fails leaves a broken connection, which the pool drops: after at most
        // one try per pooled connection, the next is new.
        for _ in 0..=self.pool.max_size() {
            let mut pooled = self.pool.get()?;
            let seen = self.losses.seen();
            if pooled.proven >= seen {
                return Ok(pooled);
            }
            match pooled.conn.batch_execute("SELECT 1") {
                Ok(()) => {
                    pooled.proven = seen;
                    return Ok(pooled);
                }
                Err(error) => tracing::debug!(%error, "a pooled connection was lost; trying another"),
            }
        }
        Ok(self.pool.get()?)
    }

    /// `work` in a transaction on a connection whose `BEGIN` went through.
    fn transact<T>(&self, work: impl FnOnce(&mut AnyConnection) -> Result<T, StorageError>) -> Result<T, Failed> {
        let mut pooled = self.checkout().map_err(Failed::BeforeCommit)?;
        if let Err(error) = begin(&mut pooled.conn) {
            if !self.lost(&error) {
                return Err(Failed::BeforeCommit(error));
            }
            drop(pooled);
            pooled = self.checkout().map_err(Failed::BeforeCommit)?;
            begin(&mut pooled.conn).map_err(Failed::BeforeCommit)?;
        }
        finish(&mut pooled.conn, work)
    }

    /// Whether `error` says the connection is gone; if so, the pool's other connections are
    /// suspect from now on.
    fn lost(&self, error: &StorageError) -> bool {
        let StorageError::Query(
            cause @ DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            ),
        ) = error
        else {
            return false;
        };
        tracing::warn!(error = %cause, "a database connection was lost; the others are checked before their next use");
        self.losses.noticed();
        true
    }
}

/// A lost connection where the statement cannot have taken effect: libpq could not send it,
/// or the server ended the session (a shutdown, a restart, an administrator), which rolls back
/// what was not committed. A connection that merely went silent may have committed first.
fn lost_before_effect(error: &StorageError) -> bool {
    match error {
        StorageError::Query(DieselError::DatabaseError(DatabaseErrorKind::UnableToSendCommand, _)) => true,
        StorageError::Query(DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info)) => {
            info.message().starts_with("terminating connection")
        }
        _ => false,
    }
}

/// Opens connections of the backend the URL names, with the settings each needs.
#[derive(Debug)]
struct Manager {
    target: Target,
    losses: Losses,
}

#[derive(Debug)]
enum Target {
    Postgres(String),
    Sqlite(String),
}

impl Target {
    fn parse(url: &str) -> Result<Self, StorageError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(with_system_roots(url, SYSTEM_ROOTS)));
        }
        match url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            Some(path) if !path.is_empty() => Ok(Self::Sqlite(path.to_owned())),
            _ => Err(StorageError::UnsupportedUrl(redact(url))),
        }
    }

    fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }

    fn connect(&self) -> Result<AnyConnection, r2d2::Error> {
        match self {
            Self::Postgres(url) => {
                let mut conn = PgConnection::establish(url).map_err(r2d2::Error::ConnectionError)?;
                // Prepared statements are planned anew each time: a generic plan made while a
                // table was young (a scan of its ten rows) was kept until autovacuum's next
                // ANALYZE, and a claim's lookups by id then scanned 22,000 rows (60 ms each).
                conn.batch_execute("SET plan_cache_mode = force_custom_plan")
                    .map_err(r2d2::Error::QueryError)?;
                Ok(AnyConnection::Postgresql(conn))
            }
            Self::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(path).map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                )
                .map_err(r2d2::Error::QueryError)?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }
}

/// Where distributions keep the system's CA bundle (Debian and Ubuntu, Fedora and RHEL, Alpine).
const SYSTEM_ROOTS: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// PostgreSQL's TLS is libpq's: `sslmode=verify-full` (or `verify-ca`) checks the server's
/// certificate against `sslrootcert`, which libpq 15 otherwise looks for in
/// `~/.postgresql/root.crt`. Without one in the URL, the system's roots are named, as every
/// other client of the platform trusts by default.
fn with_system_roots(url: &str, bundles: &[&str]) -> String {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let param = |name: &str| query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='));
    let verifies = matches!(param("sslmode"), Some("verify-full" | "verify-ca"));
    if !verifies || param("sslrootcert").is_some() {
        return url.to_owned();
    }
    match bundles.iter().find(|b| std::path::Path::new(b).is_file()) {
        Some(bundle) => {
            let joiner = if url.contains('?') { '&' } else { '?' };
            format!("{url}{joiner}sslrootcert={bundle}")
        }
        None => url.to_owned(),
    }
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl ManageConnection for Manager {
    type Connection = Pooled;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<Pooled, r2d2::Error> {
        let proven = self.losses.seen();
        Ok(Pooled {
            conn: self.target.connect()?,
            proven,
        })
    }

    fn is_valid(&self, pooled: &mut Pooled) -> Result<(), r2d2::Error> {
        pooled.conn.batch_execute("SELECT 1").map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, pooled: &mut Pooled) -> bool {
        use diesel::r2d2::R2D2Connection;
        match &mut pooled.conn {
            AnyConnection::Postgresql(pg) => pg.is_broken(),
            AnyConnection::Sqlite(sqlite) => sqlite.is_broken(),
        }
    }
}

/// Begins a transaction through the connection's own transaction manager, so `work` may nest
/// transactions (savepoints). SQLite's takes the write lock at `BEGIN IMMEDIATE`: a deferred
/// one that read first fails with "database is locked" when it comes to write after another
/// writer (its snapshot is stale; waiting cannot help).
fn begin(conn: &mut AnyConnection) -> Result<(), StorageError> {
    match conn {
        AnyConnection::Postgresql(pg) => AnsiTransactionManager::begin_transaction(pg)?,
        AnyConnection::Sqlite(sqlite) => AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?,
    }
    Ok(())
}

/// How a transaction failed: before its `COMMIT` was sent, or at it.
enum Failed {
    BeforeCommit(StorageError),
    AtCommit(StorageError),
}

impl Failed {
    fn error(&self) -> &StorageError {
        match self {
            Self::BeforeCommit(error) | Self::AtCommit(error) => error,
        }
    }

    fn into_error(self) -> StorageError {
        match self {
            Self::BeforeCommit(error) | Self::AtCommit(error) => error,
        }
    }

    /// Whether the server cannot have committed the transaction, its connection being lost:
    /// it never got the `COMMIT`, or ended the session instead of answering it.
    fn had_no_effect(&self) -> bool {
        match self {
            Self::BeforeCommit(_) => true,
            Self::AtCommit(error) => lost_before_effect(error),
        }
    }
}

/// Runs `work` in the transaction [`begin`] opened, then commits it, or rolls it back when
/// `work` fails.
fn finish<T>(
    conn: &mut AnyConnection,
    work: impl FnOnce(&mut AnyConnection) -> Result<T, StorageError>,
) -> Result<T, Failed> {
    let outcome = work(conn);
    let settled = match (&outcome, &mut *conn) {
        (Ok(_), AnyConnection::Postgresql(pg)) => AnsiTransactionManager::commit_transaction(pg),
        (Ok(_), AnyConnection::Sqlite(sqlite)) => AnsiTransactionManager::commit_transaction(sqlite),
        // The work's error is the one that matters; a failed rollback leaves the connection
        // broken, and the pool replaces it.
        (Err(_), AnyConnection::Postgresql(pg)) => {
            let _ = AnsiTransactionManager::rollback_transaction(pg);
            Ok(())
        }
        (Err(_), AnyConnection::Sqlite(sqlite)) => {
            let _ = AnsiTransactionManager::rollback_transaction(sqlite);
            Ok(())
        }
    };
    settled.map_err(|error| Failed::AtCommit(error.into()))?;
    outcome.map_err(Failed::BeforeCommit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend_and_reject_others() {
        assert!(matches!(Target::parse("postgres://u@h/db"), Ok(Target::Postgres(_))));
        assert!(matches!(Target::parse("sqlite://data/a.db"), Ok(Target::Sqlite(p)) if p == "data/a.db"));
        assert!(matches!(Target::parse("sqlite::memory:"), Ok(Target::Sqlite(p)) if p == ":memory:"));
        let err = Target::parse("mysql://root:hunter2@h/db").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unsupported database url `mysql://***@h/db`: expected postgres://… or sqlite://…")
        );
    }

    #[test]
    fn a_verifying_postgres_url_without_roots_names_the_systems() {
        let bundle = std::env::temp_dir().join(format!("roots-{}.pem", std::process::id()));
        std::fs::write(&bundle, "roots").unwrap();
        let bundles = ["/nowhere/roots.pem", bundle.to_str().unwrap()];
        let named = |url: &str| with_system_roots(url, &bundles);
        assert_eq!(
            named("postgres://u@h/db?sslmode=verify-full"),
            format!("postgres://u@h/db?sslmode=verify-full&sslrootcert={}", bundle.display())
        );
        for kept in [
            "postgres://u@h/db?sslmode=verify-ca&sslrootcert=/etc/ca.pem",
            "postgres://u@h/db?sslmode=require",
            "postgres://u@h/db",
        ] {
            assert_eq!(named(kept), kept);
        }
        assert_eq!(
            with_system_roots("postgres://u@h/db?sslmode=verify-full", &["/nowhere"]),
            "postgres://u@h/db?sslmode=verify-full"
        );
        std::fs::remove_file(bundle).unwrap();
    }
}
