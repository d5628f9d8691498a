//! What every handler and consumer of the blog shares.

use std::sync::Arc;

use storage::Database;
use tokio::sync::Notify;

use crate::BlogSettings;
use crate::names::Names;

pub struct Blog {
    pub db: Database,
    /// Wakes the outbox relay after a commit that wrote events.
    pub outbox: Arc<Notify>,
    /// Locale, category and group names, kept in memory.
    pub names: Names,
    pub settings: BlogSettings,
}
