//! Events between services: what an event is, how it travels, how it is never lost.
//!
//! - [`Event`]: the envelope, with CloudEvents 1.0 attributes and the W3C `traceparent`.
//! - [`catalogue`]: every event type the platform publishes, with its payload.
//! - [`Bus`]: publish and subscribe, implemented over RabbitMQ ([`RabbitBus`]), over an SQLite
//!   file for embedded mode ([`SqliteBus`]) and in memory for tests ([`InProcessBus`]), with the
//!   same semantics: ack, delayed retry, parking after N attempts.
//! - [`outbox`]: a change and its event commit together; [`OutboxRelay`] publishes them.
//! - [`inbox`]: consumers record handled event ids, so a redelivery changes nothing.

mod bus;
pub mod catalogue;
mod event;
pub mod inbox;
mod memory;
pub mod outbox;
mod rabbit;
mod sqlite;
mod topic;
mod writes;

pub use bus::{Bus, BusError, Delivery, Handler, HandlerError, RetryPolicy, Subscription};
pub use event::{Event, EventPayload};
pub use memory::InProcessBus;
pub use outbox::{MIGRATIONS, OutboxRelay, RelaySettings};
pub use rabbit::{DEFAULT_EXCHANGE, RabbitBus, RabbitSettings};
pub use sqlite::SqliteBus;
pub use topic::topic_matches;
pub use writes::{Outbox, Staged};
