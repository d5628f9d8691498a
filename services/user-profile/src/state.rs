//! What every handler and consumer of the service shares.

use events::Outbox;
use storage::Database;

pub struct Profiles {
    pub db: Database,
    /// Writes that publish events.
    pub outbox: Outbox,
}
