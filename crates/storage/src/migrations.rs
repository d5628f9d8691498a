use diesel::backend::Backend as DieselBackend;
use diesel::migration::{Migration, MigrationSource};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};

use crate::{AnyConnection, StorageError};

/// One set of migrations written twice, once per SQL dialect, embedded in the binary with
/// `diesel_migrations::embed_migrations!`. Versions must be unique across all sets one database
/// runs, since they share diesel's bookkeeping table.
pub struct Migrations {
    pub postgres: EmbeddedMigrations,
    pub sqlite: EmbeddedMigrations,
}

impl Migrations {
    pub(crate) fn run(&self, conn: &mut AnyConnection) -> Result<usize, StorageError> {
        let applied = match conn {
            AnyConnection::Postgresql(c) => c.run_pending_migrations(Borrowed(&self.postgres)).map(|v| v.len()),
            AnyConnection::Sqlite(c) => c.run_pending_migrations(Borrowed(&self.sqlite)).map(|v| v.len()),
        };
        applied.map_err(|e| StorageError::Migration(e.to_string()))
    }
}

/// `EmbeddedMigrations` is neither `Copy` nor implemented for references; this lends it out.
struct Borrowed<'a>(&'a EmbeddedMigrations);

impl<DB: DieselBackend> MigrationSource<DB> for Borrowed<'_> {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<DB>>>> {
        MigrationSource::<DB>::migrations(self.0)
    }
}
