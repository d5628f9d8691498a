//! What every handler and consumer of the service shares.

use events::Outbox;

use crate::store::Store;

pub struct Profiles {
    pub store: Store,
    /// Writes that publish events.
    pub outbox: Outbox,
}
