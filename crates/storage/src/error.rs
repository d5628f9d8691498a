use diesel::result::{DatabaseErrorKind, Error as DieselError};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("unsupported database url `{0}`: expected postgres://… or sqlite://…")]
    UnsupportedUrl(String),
    #[error("cannot open the database: {0}")]
    Open(String),
    #[error("no database connection available: {0}")]
    Unavailable(#[source] diesel::r2d2::PoolError),
    #[error("record not found")]
    NotFound,
    #[error("conflicts with an existing record")]
    Conflict(#[source] DieselError),
    #[error("database query failed")]
    Query(#[source] DieselError),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("blocking database task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl From<DieselError> for StorageError {
    fn from(error: DieselError) -> Self {
        match error {
            DieselError::NotFound => Self::NotFound,
            // A duplicate, or a row still referred to (or referring to one gone).
            DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::ForeignKeyViolation,
                _,
            ) => Self::Conflict(error),
            other => Self::Query(other),
        }
    }
}

impl From<diesel::r2d2::PoolError> for StorageError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        Self::Unavailable(error)
    }
}
