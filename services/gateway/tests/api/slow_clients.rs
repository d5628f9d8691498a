//! A slowloris on loopback: 1,000 connections that send a request head a few bytes at a time
//! and never finish it. The gateway (a process of its own, on PostgreSQL, Redis and RabbitMQ)
//! keeps answering its own endpoints and forwarding legitimate requests meanwhile, and closes
//! the slow connections itself (actix-web's request-head timeout) instead of holding them.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::platform::{Backend, Platform};
use crate::support;

const SLOW: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_neither_starves_others_nor_holds_its_connections() {
    let p = Platform::start(Backend::Postgres).await;
    let prefix = format!("{}:", test_support::unique("slow"));
    let gw = support::spawn(&p, &test_support::redis_url(), &prefix, "", &[]).await;
    let address = gw.base.trim_start_matches("http://").to_owned();

    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(stream);
    }
    // One more byte each, as a slowloris does to look alive.
    for stream in &mut slow {
        stream.write_all(b"a").await.unwrap();
    }

    let http = reqwest::Client::new();
    for _ in 0..20 {
        let health = http.get(format!("{}/healthz", gw.base)).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let keys = http
            .get(format!("{}/.well-known/jwks.json", gw.base))
            .send()
            .await
            .unwrap();
        assert_eq!(keys.status(), 200, "forwarded to auth");
    }

    // Every slow connection is answered 408 or closed by the gateway, none left hanging.
    let mut closed = 0;
    for mut stream in slow {
        let mut answer = vec![0; 256];
        // A bound for the test, not a measure: the gateway's head timeout is 5 s.
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut answer))
            .await
            .expect("the gateway closes a connection whose head never ends");
        let n = read.unwrap_or(0);
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
        closed += 1;
    }
    assert_eq!(closed, SLOW);
}
