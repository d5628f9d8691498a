//! What every handler and consumer of the blog shares.

use events::Outbox;

use crate::BlogSettings;
use crate::names::Names;
use crate::store::Store;

pub struct Blog {
    pub store: Store,
    /// Writes that publish events.
    pub outbox: Outbox,
    /// Locale, category and group names, kept in memory.
    pub names: Names,
    pub settings: BlogSettings,
}
