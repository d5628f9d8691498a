//! The gateway's integration tests, in one binary (one link of actix, diesel, lapin and
//! OpenTelemetry instead of one per file): a module per behaviour.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use test_support::platform;

mod allowed_networks;
mod e2e;
mod lockout;
mod notifications;
mod proxy;
pub mod resources;
mod rolling;
mod slow_clients;
mod tls;
mod token_checks;
mod traces;
mod usage;
mod webhooks;
