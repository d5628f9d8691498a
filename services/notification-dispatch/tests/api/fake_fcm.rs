//! A fake of FCM HTTP v1 (none exists to install): Google's OAuth2 token endpoint, checking the
//! JWT bearer assertion against the service account's public key, and `messages:send`,
//! checking the access token it issued. Device tokens it was told are unregistered answer
//! `UNREGISTERED`; a script of answers simulates 429/503.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use notification_dispatch::channels::fcm::FcmSettings;
use notification_dispatch::channels::{ProviderEntry, ProviderKind};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{Value, json};

pub const PROJECT: &str = "clinic-app";
const CLIENT_EMAIL: &str = "dispatch@clinic-app.iam.gserviceaccount.com";

#[derive(Default)]
struct Shared {
    public_pem: String,
    token_uri: String,
    issued: Mutex<Vec<String>>,
    messages: Mutex<Vec<Value>>,
    unregistered: Mutex<HashSet<String>>,
    script: Mutex<VecDeque<(u16, Option<u64>)>>,
}

pub struct FakeFcm {
    pub url: String,
    credentials: PathBuf,
    shared: Arc<Shared>,
}

async fn token(shared: web::Data<Shared>, form: web::Form<Vec<(String, String)>>) -> HttpResponse {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if field("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        return HttpResponse::BadRequest().json(json!({"error": "unsupported_grant_type"}));
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&shared.token_uri]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    let key = DecodingKey::from_rsa_pem(shared.public_pem.as_bytes()).unwrap();
    let claims = match jsonwebtoken::decode::<Value>(&field("assertion"), &key, &validation) {
        Ok(data) => data.claims,
        Err(e) => {
            return HttpResponse::BadRequest()
                .json(json!({"error": "invalid_grant", "error_description": e.to_string()}));
        }
    };
    if claims["scope"] != "https://www.googleapis.com/auth/firebase.messaging" {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_scope"}));
    }
    let mut issued = shared.issued.lock().unwrap();
    let token = format!("ya29.fake-{}", issued.len());
    issued.push(token.clone());
    HttpResponse::Ok().json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}))
}

async fn send(
    shared: web::Data<Shared>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> HttpResponse {
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    if path.as_str() != PROJECT || !shared.issued.lock().unwrap().contains(&bearer) {
        return HttpResponse::Unauthorized().json(json!({"error": {"code": 401, "status": "UNAUTHENTICATED"}}));
    }
    if let Some((status, retry_after)) = shared.script.lock().unwrap().pop_front() {
        let mut answer = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
        if let Some(secs) = retry_after {
            answer.insert_header(("retry-after", secs.to_string()));
        }
        return answer.json(json!({"error": {"code": status, "status": "UNAVAILABLE"}}));
    }
    let device = body["message"]["token"].as_str().unwrap_or_default().to_owned();
    if shared.unregistered.lock().unwrap().contains(&device) {
        return HttpResponse::NotFound().json(json!({"error": {"code": 404, "status": "NOT_FOUND",
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}}));
    }
    let mut messages = shared.messages.lock().unwrap();
    messages.push(body.into_inner());
    HttpResponse::Ok().json(json!({"name": format!("projects/{PROJECT}/messages/{}", messages.len())}))
}

impl FakeFcm {
    pub fn start() -> Self {
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        let private_pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let public_pem = key.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            public_pem,
            token_uri: format!("{url}/token"),
            ..Shared::default()
        });
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/token", web::post().to(token))
                .route("/v1/projects/{project}/messages:send", web::post().to(send))
        })
        .workers(1)
        .listen(listener)
        .unwrap();
        tokio::spawn(server.run());
        let credentials = std::env::temp_dir().join(format!("{}.json", test_support::unique("service-account")));
        let file = json!({"type": "service_account", "project_id": PROJECT, "private_key_id": "k1",
            "private_key": private_pem, "client_email": CLIENT_EMAIL, "token_uri": shared.token_uri});
        std::fs::write(&credentials, file.to_string()).unwrap();
        Self {
            url,
            credentials,
            shared,
        }
    }

    /// A `[[channels.fcm]]` entry for this fake.
    pub fn provider(&self, name: &str) -> ProviderEntry {
        let fcm = FcmSettings {
            credentials_file: self.credentials.display().to_string(),
            api_url: self.url.clone(),
        };
        crate::stand_ins::entry(name, ProviderKind::Fcm(fcm))
    }

    pub fn unregister(&self, device: &str) {
        self.shared.unregistered.lock().unwrap().insert(device.to_owned());
    }

    /// The next answers to `messages:send`: (status, Retry-After seconds).
    pub fn answer(&self, answers: &[(u16, Option<u64>)]) {
        self.shared.script.lock().unwrap().extend(answers.iter().copied());
    }

    pub fn messages(&self) -> Vec<Value> {
        self.shared.messages.lock().unwrap().clone()
    }

    pub fn tokens_issued(&self) -> usize {
        self.shared.issued.lock().unwrap().len()
    }
}
