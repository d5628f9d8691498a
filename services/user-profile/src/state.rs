//! What every handler and consumer of the service shares.

use std::sync::Arc;

use storage::Database;
use tokio::sync::Notify;

pub struct Profiles {
    pub db: Database,
    /// Wakes the outbox relay after a commit that wrote events.
    pub outbox: Arc<Notify>,
}
