//! The notification service's integration tests, in one binary: the service called as the
//! gateway calls it (signed identity headers), fed auth's and user-profile's events on the
//! bus, sending to its channels' stand-ins; on SQLite with the in-process bus and on
//! PostgreSQL with RabbitMQ and Redis.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod fake_fcm;
mod stand_ins;
mod support;

mod channels;
mod dispatch;
mod no_loss;
mod providers;
mod requests;
mod users;

/// `name_sqlite` and `name_postgres`, each running `name` on its backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(test_support::Backend::Sqlite).await;
                }

                #[tokio::test]
                async fn postgres() {
                    super::$name(test_support::Backend::Postgres).await;
                }
            }
        )+
    };
}
