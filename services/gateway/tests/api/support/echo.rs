//! An upstream that answers every request with what it received: its URI and headers.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

pub fn upstream() -> String {
    let server = HttpServer::new(|| {
        App::new().default_service(web::to(|req: HttpRequest| async move {
            if req.path().starts_with("/missing") {
                return HttpResponse::NotFound().json(json!({"code": "not_found"}));
            }
            let headers: serde_json::Map<String, Value> = req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
                .collect();
            HttpResponse::Ok().json(json!({"uri": req.uri().to_string(), "headers": headers}))
        }))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    format!("http://{addr}")
}
