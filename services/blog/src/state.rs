//! What every handler and consumer of the blog shares.

use events::Outbox;
use storage::Database;

use crate::BlogSettings;
use crate::names::Names;

pub struct Blog {
    pub db: Database,
    /// Writes that publish events.
    pub outbox: Outbox,
    /// Locale, category and group names, kept in memory.
    pub names: Names,
    pub settings: BlogSettings,
}
