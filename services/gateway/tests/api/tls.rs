//! The gateway binary on the servers' TLS ports, configured as a platform team would: an
//! `amqps://` bus and a `rediss://` cache, trusting a CA from a mounted file
//! (`PLATFORM_BUS__TLS_CA_FILE`, `PLATFORM_CACHE__TLS_CA_FILE`). A revocation crosses the
//! broker over TLS. With a CA file that signed nothing, the gateway reports Redis degraded in
//! `/readyz` with the certificate named (it serves without Redis) and does not start at all for
//! the bus (it needs it to hear of revocations); a file that holds no certificate stops it at
//! start, naming the key.

use crate::platform;
use crate::support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use platform::{Backend, Platform};
use serde_json::{Value, json};

fn tls_env(ca_file: &std::path::Path) -> Vec<(&'static str, String)> {
    let tls = test_support::tls();
    let ca_file = ca_file.display().to_string();
    vec![
        ("GATEWAY_BUS__URL", tls.amqp_url),
        ("GATEWAY_CACHE__URL", tls.redis_url),
        ("PLATFORM_BUS__TLS_CA_FILE", ca_file.clone()),
        ("PLATFORM_CACHE__TLS_CA_FILE", ca_file),
    ]
}

/// `/readyz`'s checks, by name: (ok, error).
async fn checks(http: &reqwest::Client, base: &str) -> Option<Vec<(String, bool, String)>> {
    let body: Value = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let checks = body["data"]["checks"].as_array()?;
    Some(
        checks
            .iter()
            .map(|c| {
                let text = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
                (text("name"), c["ok"] == true, text("error"))
            })
            .collect(),
    )
}

fn routes(upstream: &str) -> String {
    format!("[[routes]]\nprefix = \"/echo\"\nupstream = \"{upstream}\"\ntimeout = \"5s\"\nscopes = [\"profile\"]\n")
}

#[tokio::test]
async fn revocation_reaches_a_gateway_whose_bus_and_cache_speak_tls() {
    let p = Platform::start(Backend::Postgres).await;
    let prefix = format!("{}:", test_support::unique("gw-tls"));
    let tls = test_support::tls();
    let gw = support::spawn(
        &p,
        &tls.redis_url,
        &prefix,
        &routes(&support::upstream()),
        &tls_env(&tls.ca_file),
    )
    .await;
    // The gateway starts before its first Redis call, which a loaded machine can take past
    // the cache's 100 ms: ready means both checks pass, soon.
    let started = Instant::now();
    loop {
        let ready = checks(&p.http, &gw.base).await.unwrap();
        assert_eq!(ready.len(), 2, "{ready:?}");
        if ready.iter().all(|(_, ok, _)| *ok) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{ready:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let app = p.application(json!({"name": "Partner", "scopes": ["profile"]})).await;
    let token = p.token(&app, "profile").await;
    assert_eq!(support::call(&p, &gw, &token).await.0, 200);
    p.revoke(&app, &token).await;
    let started = Instant::now();
    while support::call(&p, &gw, &token).await.0 != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the revocation never arrived over amqps"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A gateway process on the platform with `env`; its stderr is kept.
fn spawn_with(p: &Platform, port: u16, env: Vec<(&'static str, String)>) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env("GATEWAY_HTTP__PORT", port.to_string())
        .env("GATEWAY_BUS__KIND", "rabbitmq")
        .env("GATEWAY_BUS__URL", test_support::amqp_url())
        .env("GATEWAY_BUS__EXCHANGE", &p.exchange)
        .env("GATEWAY_CACHE__KIND", "redis")
        .env("GATEWAY_CACHE__PREFIX", format!("{}:", test_support::unique("gw-tls")))
        .env(
            "GATEWAY_INTROSPECTION__URL",
            format!("{}/oauth2/introspect", p.introspection),
        )
        .env("GATEWAY_UPSTREAMS__AUTH", &p.auth)
        .envs(env)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn a_ca_that_signed_nothing_is_named_by_readiness_and_at_start() {
    let p = Platform::start(Backend::Postgres).await;
    let (foreign, _) = test_support::foreign_ca();
    let env = tls_env(&foreign);

    // The cache: the gateway serves without it, degraded, and says why.
    let port = test_support::free_port();
    let cache_only = env.iter().filter(|(k, _)| k.contains("CACHE")).cloned().collect();
    let mut child = spawn_with(&p, port, cache_only);
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let redis = loop {
        let found = checks(&p.http, &base)
            .await
            .and_then(|c| c.into_iter().find(|(n, _, _)| n == "redis"));
        // A loaded machine can first answer "no answer within 100 ms", before any attempt
        // to connect has ended; the refused certificate is named once one has.
        if let Some((_, false, error)) = found.filter(|(_, _, e)| e.contains("certificate")) {
            break error;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no redis check naming the certificate"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(redis.contains("invalid peer certificate"), "{redis}");

    // The bus: the gateway needs it to hear of revocations, so it does not start.
    let bus_only = env.into_iter().filter(|(k, _)| k.contains("BUS")).collect();
    let out =
        tokio::task::spawn_blocking(move || spawn_with(&p, test_support::free_port(), bus_only).wait_with_output())
            .await
            .unwrap()
            .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("invalid peer certificate"), "{stderr}");
}

#[test]
fn a_ca_file_without_a_certificate_stops_the_gateway_at_start() {
    let not_pem = std::env::temp_dir().join(format!("{}.pem", test_support::unique("not-a-ca")));
    std::fs::write(&not_pem, "/etc/ssl/certs/ca.pem\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env("GATEWAY_HTTP__PORT", test_support::free_port().to_string())
        .env("PLATFORM_BUS__TLS_CA_FILE", &not_pem)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&not_pem);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bus.tls_ca") && stderr.contains("no PEM certificate"),
        "{stderr}"
    );
}
