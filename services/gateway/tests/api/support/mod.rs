//! Gateway processes (this crate's binary) for the end-to-end tests and the revocation
//! benchmark, in front of an upstream that shows what it received.

#![allow(clippy::expect_used, clippy::unwrap_used, dead_code)]

use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::platform::Platform;

pub mod echo;
pub use echo::upstream;

/// A route to `upstream` with its timeout; other fields as the defaults file would leave them.
pub fn route(prefix: &str, upstream: &str, timeout_secs: u64) -> gateway::Route {
    gateway::Route {
        prefix: prefix.into(),
        upstream: upstream.into(),
        timeout: settings::Span::from_secs(timeout_secs),
        ..gateway::Route::default()
    }
}

/// A route anyone may take, without a token.
pub fn public(prefix: &str, upstream: &str, timeout_secs: u64) -> gateway::Route {
    gateway::Route {
        public: true,
        ..route(prefix, upstream, timeout_secs)
    }
}

pub struct Gateway {
    pub base: String,
    child: Child,
    _config: tempfile_path::TempPath,
}

pub mod tempfile_path {
    /// A file removed when dropped.
    pub struct TempPath(pub std::path::PathBuf);
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gateway process in front of `upstream` at `/echo` (scope `profile`), on the platform's
/// auth and introspection, sharing `redis_url` under `prefix` with its siblings.
pub async fn gateway(p: &Platform, redis_url: &str, prefix: &str, upstream: &str) -> Gateway {
    let routes = format!(
        "[[routes]]\nprefix = \"/echo\"\nupstream = \"{upstream}\"\ntimeout = \"5s\"\nscopes = [\"profile\"]\n"
    );
    spawn(p, redis_url, prefix, &routes, &[]).await
}

/// A gateway process with `config` (TOML) over its defaults and `env` over both.
pub async fn spawn(p: &Platform, redis_url: &str, prefix: &str, config: &str, env: &[(&str, String)]) -> Gateway {
    let port = test_support::free_port();
    let path = std::env::temp_dir().join(format!("{}.toml", test_support::unique("gateway")));
    std::fs::write(&path, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env("GATEWAY_CONFIG_FILE", &path)
        .env("GATEWAY_HTTP__PORT", port.to_string())
        .env("GATEWAY_HTTP__WORKERS", "2")
        .env("GATEWAY_BUS__KIND", "rabbitmq")
        .env("GATEWAY_BUS__URL", test_support::amqp_url())
        .env("GATEWAY_BUS__EXCHANGE", &p.exchange)
        .env("GATEWAY_CACHE__KIND", "redis")
        .env("GATEWAY_CACHE__URL", redis_url)
        .env("GATEWAY_CACHE__PREFIX", prefix)
        .env(
            "GATEWAY_INTROSPECTION__URL",
            format!("{}/oauth2/introspect", p.introspection),
        )
        .env("GATEWAY_TOKENS__ISSUER", super::platform::ISSUER)
        .env("GATEWAY_UPSTREAMS__AUTH", &p.auth)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the gateway binary");
    let base = format!("http://127.0.0.1:{port}");
    test_support::wait_ready(&base, "the gateway").await;
    Gateway {
        base,
        child,
        _config: tempfile_path::TempPath(path),
    }
}

pub async fn call(p: &Platform, gw: &Gateway, token: &str) -> (u16, Value) {
    let res = p
        .http
        .get(format!("{}/echo", gw.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}
