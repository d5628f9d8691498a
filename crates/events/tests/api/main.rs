//! The event bus's integration tests, in one binary: the contract every bus keeps
//! (`contract`), embedded mode's bus across a crash (`sqlite_restart`), and a RabbitMQ restart
//! under load (`rabbitmq_restart`, run alone by `make test`: it restarts the shared broker).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod contract;
mod rabbitmq_restart;
mod sqlite_restart;
