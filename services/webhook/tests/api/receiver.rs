//! A local endpoint that records what it receives and answers as a test scripts it.

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

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    /// Answers to give, in order; 200 once they run out.
    script: Mutex<VecDeque<(u16, Vec<(String, String)>)>>,
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
            script.push_back((*status, headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()));
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
            assert!(started.elapsed() < Duration::from_secs(15), "{} of {n} requests arrived", got.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
