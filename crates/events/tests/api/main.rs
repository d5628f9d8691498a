//! The event bus's integration tests, in one binary: the contract both buses keep
//! (`contract`), and a RabbitMQ restart under load (`rabbitmq_restart`, run alone by `make test`:
//! it restarts the shared broker).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod contract;
mod rabbitmq_restart;
