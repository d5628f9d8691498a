//! A local webhook endpoint that records what it receives and answers as a test scripts it,
//! and the partners' verification of a delivery with the `standardwebhooks` packages from
//! PyPI and npm (installed by `deploy/verifiers.sh`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// A status and the headers to answer with.
type Answer = (u16, Vec<(String, String)>);

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    /// Answers to give, in order; 200 once they run out.
    script: Mutex<VecDeque<Answer>>,
}

pub struct Receiver {
    pub url: String,
    shared: Arc<Shared>,
}

async fn receive(shared: web::Data<Shared>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    shared.received.lock().unwrap().push(Received {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    });
    let (status, extra) = shared.script.lock().unwrap().pop_front().unwrap_or((200, Vec::new()));
    let mut response = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    for (name, value) in extra {
        response.insert_header((name, value));
    }
    response.body(format!("answered {status}"))
}

impl Receiver {
    pub fn start() -> Self {
        let shared = web::Data::new(Shared::default());
        let data = shared.clone();
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(receive)))
            .workers(1)
            .bind(("127.0.0.1", 0))
            .unwrap();
        let url = format!("http://{}/hooks", server.addrs()[0]);
        tokio::spawn(server.run());
        Self {
            url,
            shared: shared.into_inner(),
        }
    }

    /// The next answers, in order (then 200).
    pub fn answer(&self, answers: &[(u16, &[(&str, &str)])]) {
        let mut script = self.shared.script.lock().unwrap();
        for (status, headers) in answers {
            script.push_back((
                *status,
                headers
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ));
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived (within 15 s), and returns all of them.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{} of {n} requests arrived",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Verifies `received` with the `standardwebhooks` packages of PyPI and npm, as partners do;
/// panics with their reason when either refuses.
pub fn verify_with_packages(received: &Received, secret: &str) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join("services/webhook/tests/verify");
    let python = root.join("target/verifiers/venv/bin/python");
    let input = serde_json::json!({"secret": secret, "headers": received.headers, "body": received.body}).to_string();
    for (program, script) in [(python.as_os_str(), "verify.py"), ("node".as_ref(), "verify.mjs")] {
        let mut child = std::process::Command::new(program)
            .arg(script)
            .current_dir(&dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{program:?} {script}: {e}; run deploy/verifiers.sh first"));
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{script} refused the delivery: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
