//! The API reference partners read and generate clients from (seed 000): every service's
//! OpenAPI document merged into one, with the gateway's public URL as its server and what the
//! gateway itself does on each route (the token it requires, its rate limits, its body limits)
//! written into each operation; served at `/openapi.json`, as Swagger 2.0 at seed 000's
//! `/swagger/swagger.json` ([`super::swagger2`]), and rendered as a page at `/docs`. Fetched from the services and kept for a short while, so a
//! redeployed service shows up without restarting the gateway. The same document tells the
//! proxy which methods a path has (405 with `Allow`, whichever service serves it).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use http_kit::openapi::{METHODS, answer};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::route_table::Route;

#[derive(Debug, Clone, Deserialize)]
pub struct DocsSettings {
    /// The address partners call, written into the document as its server.
    pub public_url: String,
    /// Each service's OpenAPI document, on its own address.
    pub sources: Vec<DocSource>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DocSource {
    /// The service; without `url`, an `[upstreams]` name whose `/openapi.json` is read.
    pub name: String,
    #[serde(default)]
    pub url: Option<String>,
}

const KEEP: Duration = Duration::from_secs(30);
/// A document with a service missing is kept briefly: the service may be starting, and a flood
/// of unknown paths must not fetch every document each time.
const KEEP_PARTIAL: Duration = Duration::from_secs(2);
/// Each service's operational endpoints, which partners do not call through the gateway.
const OPERATIONS: [&str; 4] = ["/healthz", "/readyz", "/metrics", "/openapi.json"];

pub struct Docs {
    settings: DocsSettings,
    client: reqwest::Client,
    own: Value,
    routes: Vec<Route>,
    cached: Mutex<Option<(Instant, Duration, Arc<Merged>)>>,
    /// Held while the documents are fetched: requests that find the cache stale meanwhile (a
    /// burst of 404s asks for it) wait for that fetch instead of starting their own.
    refreshing: tokio::sync::Mutex<()>,
}

/// The merged document, the same as Swagger 2.0 once asked for, and the methods of each path.
pub struct Merged {
    pub document: Value,
    swagger: std::sync::OnceLock<Value>,
    templates: Vec<(Vec<String>, Vec<String>)>,
}

impl Merged {
    fn new(document: Value) -> Self {
        let templates = document["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(path, item)| {
                let segments = path.split('/').map(str::to_owned).collect();
                let methods = METHODS
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .map(|m| m.to_uppercase())
                    .collect();
                (segments, methods)
            })
            .collect();
        Self {
            document,
            swagger: std::sync::OnceLock::new(),
            templates,
        }
    }

    /// The document as Swagger 2.0, rendered the first time it is asked for (the 405 lookups
    /// of the proxy never need it).
    pub fn swagger(&self) -> &Value {
        self.swagger.get_or_init(|| super::swagger2::render(&self.document))
    }

    /// The methods some operation of the document takes on `path`, or `None` when no path of
    /// the document matches it (`{name}` matches any one segment).
    pub fn methods(&self, path: &str) -> Option<Vec<&str>> {
        let segments: Vec<&str> = path.split('/').collect();
        let mut methods: Vec<&str> = self
            .templates
            .iter()
            .filter(|(template, _)| {
                template.len() == segments.len()
                    && template
                        .iter()
                        .zip(&segments)
                        .all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
            })
            .flat_map(|(_, methods)| methods.iter().map(String::as_str))
            .collect();
        methods.sort_unstable();
        methods.dedup();
        (!methods.is_empty()).then_some(methods)
    }
}

fn merge_into(target: &mut Map<String, Value>, source: Option<&Value>) {
    for (key, value) in source.and_then(Value::as_object).into_iter().flatten() {
        target.entry(key.clone()).or_insert_with(|| value.clone());
    }
}

/// What the gateway does before a request reaches the service, on the route that takes it.
fn add_gateway_answers(operation: &mut Map<String, Value>, route: &Route) {
    if !route.public {
        let security = operation.entry("security").or_insert_with(|| json!([{"bearer": []}]));
        for requirement in security.as_array_mut().into_iter().flatten() {
            if let Some(scopes) = requirement.get_mut("bearer").and_then(Value::as_array_mut) {
                for scope in &route.scopes {
                    if !scopes.iter().any(|s| s == scope.as_str()) {
                        scopes.push(json!(scope));
                    }
                }
            }
        }
        answer(operation, 401, "Unauthorized");
        if http_kit::openapi::scopes_required(operation) == Some(true) {
            answer(operation, 403, "Forbidden");
        }
    }
    if route.rate_limit.is_some() {
        answer(operation, 429, "TooManyRequests");
    }
    if operation.contains_key("requestBody") {
        answer(operation, 408, "RequestTimeout");
        answer(operation, 413, "PayloadTooLarge");
    }
}

impl Docs {
    pub fn new(settings: DocsSettings, own: Value, routes: Vec<Route>) -> Result<Self, reqwest::Error> {
        Ok(Self {
            settings,
            client: reqwest::Client::builder().timeout(Duration::from_secs(3)).build()?,
            own,
            routes,
            cached: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    async fn fetch(&self, source: &DocSource) -> Result<Value, reqwest::Error> {
        self.client
            .get(source.url.as_deref().unwrap_or_default())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
    }

    /// The cached merged document while it is fresh.
    fn fresh(&self) -> Option<Arc<Merged>> {
        let cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, keep, merged) = cached.as_ref()?;
        (at.elapsed() < *keep).then(|| merged.clone())
    }

    pub async fn merged(&self) -> Arc<Merged> {
        if let Some(merged) = self.fresh() {
            return merged;
        }
        let _refreshing = self.refreshing.lock().await;
        if let Some(merged) = self.fresh() {
            return merged;
        }
        let fetched = futures_util::future::join_all(self.settings.sources.iter().map(|s| self.fetch(s))).await;
        let mut missing = Vec::new();
        let mut documents = Vec::new();
        for (source, result) in self.settings.sources.iter().zip(fetched) {
            match result {
                Ok(doc) => documents.push(doc),
                Err(error) => {
                    tracing::warn!(service = %source.name, %error, "OpenAPI document unavailable");
                    missing.push(source.name.clone());
                }
            }
        }
        let merged = Arc::new(Merged::new(self.combine(documents, &missing)));
        let keep = if missing.is_empty() { KEEP } else { KEEP_PARTIAL };
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), keep, merged.clone()));
        merged
    }

    /// A service's document as partners see it through the gateway: only what a route takes,
    /// with what the gateway answers on that route.
    fn as_routed(&self, mut doc: Value) -> Value {
        for (path, item) in doc["paths"].as_object_mut().into_iter().flatten() {
            let Some(item) = item.as_object_mut() else { continue };
            item.retain(|method, operation| {
                if !METHODS.contains(&method.as_str()) {
                    return true;
                }
                let route = self.routes.iter().find(|r| r.matches(method, path));
                if let (Some(route), Some(operation)) = (route, operation.as_object_mut()) {
                    add_gateway_answers(operation, route);
                }
                route.is_some()
            });
        }
        doc
    }

    fn combine(&self, services: Vec<Value>, missing: &[String]) -> Value {
        let (mut paths, mut schemas, mut schemes, mut responses) = (Map::new(), Map::new(), Map::new(), Map::new());
        let mut tags: Vec<Value> = Vec::new();
        let documents = std::iter::once(self.own.clone()).chain(services.into_iter().map(|d| self.as_routed(d)));
        for doc in documents {
            for (path, item) in doc["paths"].as_object().into_iter().flatten() {
                let routed = item
                    .as_object()
                    .is_some_and(|i| METHODS.iter().any(|m| i.contains_key(*m)));
                if routed && !OPERATIONS.contains(&path.as_str()) {
                    paths.entry(path.clone()).or_insert_with(|| item.clone());
                }
            }
            merge_into(&mut schemas, doc["components"].get("schemas"));
            merge_into(&mut schemes, doc["components"].get("securitySchemes"));
            merge_into(&mut responses, doc["components"].get("responses"));
            for tag in doc["tags"].as_array().into_iter().flatten() {
                if !tags.iter().any(|t| t["name"] == tag["name"]) {
                    tags.push(tag.clone());
                }
            }
        }
        let mut doc = json!({
            "openapi": "3.1.0",
            "info": {
                "title": "Partner API platform",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "Every API of the platform, through its one public address. Protected \
                    operations take an OAuth2 bearer access token (RFC 6750) from `/oauth2/token`."
            },
            "servers": [{"url": self.settings.public_url}],
            "paths": paths,
            "components": {"schemas": schemas, "securitySchemes": schemes, "responses": responses},
            "tags": tags,
        });
        if !missing.is_empty() {
            doc["info"]["x-unavailable"] = json!(missing);
        }
        doc
    }
}

/// The OpenAPI 3.1 document of the whole platform, for client generators.
#[utoipa::path(get, path = "/openapi.json", tag = "reference", operation_id = "getOpenApiDocument",
    responses((status = 200, description = "OpenAPI 3.1 document of the whole platform", content_type = "application/json")))]
pub async fn openapi(docs: web::Data<Docs>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=30"))
        .json(&docs.merged().await.document)
}

/// Seed 000's document, for Swagger Codegen 2.x: the same API as Swagger 2.0.
#[utoipa::path(get, path = "/swagger/swagger.json", tag = "reference", operation_id = "getSwaggerDocument",
    responses((status = 200, description = "Swagger 2.0 document of the whole platform", content_type = "application/json")))]
pub async fn swagger(docs: web::Data<Docs>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=30"))
        .json(docs.merged().await.swagger())
}

/// The API reference, as a page.
#[utoipa::path(get, path = "/docs", tag = "reference", operation_id = "getReferencePage",
    responses((status = 200, description = "The API reference", content_type = "text/html")))]
pub async fn page(docs: web::Data<Docs>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
        ))
        .body(render(&docs.merged().await.document))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Escaped text with the documents' `code spans` set as code.
fn prose(text: &str) -> String {
    escape(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_owned()
            }
        })
        .collect()
}

/// The response `response` names in `shared` (`$ref`), or `response` itself.
fn shared_response<'a>(response: &'a Value, shared: &'a Value) -> &'a Value {
    match response["$ref"].as_str() {
        Some(reference) => &shared[reference.trim_start_matches("#/components/responses/")],
        None => response,
    }
}

/// A response's description, or the status's reason phrase when the document gives none.
fn response_text(code: &str, response: &Value) -> String {
    match response["description"].as_str().filter(|d| !d.is_empty()) {
        Some(description) => prose(description),
        None => code
            .parse::<u16>()
            .ok()
            .and_then(|c| actix_web::http::StatusCode::from_u16(c).ok()?.canonical_reason())
            .unwrap_or_default()
            .to_owned(),
    }
}

fn schema_name(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        return reference.rsplit('/').next().unwrap_or(reference).to_owned();
    }
    match (schema["type"].as_str(), schema.get("items")) {
        (Some("array"), Some(items)) => format!("array of {}", schema_name(items)),
        (Some(kind), _) => kind.to_owned(),
        _ => "object".to_owned(),
    }
}

/// `shared`: the document's `components.responses`, which responses may name.
fn render_operation(out: &mut String, method: &str, path: &str, op: &Value, shared: &Value) {
    let summary = op["summary"].as_str().unwrap_or_default();
    let _ = write!(
        out,
        "<section class=\"op\" id=\"{method}-{id}\"><h3><span class=\"m {method}\">{upper}</span> <code>{path}</code></h3>",
        id = escape(&path.replace(['/', '{', '}'], "_")),
        upper = method.to_uppercase(),
        path = escape(path),
    );
    if !summary.is_empty() {
        let _ = write!(out, "<p class=\"summary\">{}</p>", prose(summary));
    }
    if let Some(description) = op["description"].as_str() {
        let _ = write!(out, "<p>{}</p>", prose(description));
    }
    if op.get("security").is_some() {
        out.push_str("<p class=\"auth\">Requires a bearer access token.</p>");
    }
    let parameters = op["parameters"].as_array().cloned().unwrap_or_default();
    if !parameters.is_empty() {
        out.push_str("<table><tr><th>Parameter</th><th>In</th><th>Type</th><th>Required</th><th>Description</th></tr>");
        for p in &parameters {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(p["name"].as_str().unwrap_or_default()),
                escape(p["in"].as_str().unwrap_or_default()),
                escape(&schema_name(&p["schema"])),
                if p["required"].as_bool().unwrap_or(false) {
                    "yes"
                } else {
                    "no"
                },
                prose(p["description"].as_str().unwrap_or_default()),
            );
        }
        out.push_str("</table>");
    }
    for (content_type, media) in op["requestBody"]["content"].as_object().into_iter().flatten() {
        let _ = write!(
            out,
            "<p class=\"body\">Request body: <code>{}</code> — {}</p>",
            escape(content_type),
            escape(&schema_name(&media["schema"])),
        );
    }
    out.push_str("<ul class=\"responses\">");
    for (code, response) in op["responses"].as_object().into_iter().flatten() {
        let _ = write!(
            out,
            "<li><b>{}</b> {}</li>",
            escape(code),
            response_text(code, shared_response(response, shared)),
        );
    }
    out.push_str("</ul></section>");
}

/// Server-rendered, no script: the reference reads in any browser and in the terminal.
pub fn render(doc: &Value) -> String {
    let mut by_tag: BTreeMap<String, Vec<(&str, &str, &Value)>> = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                let tag = op["tags"][0].as_str().unwrap_or("other").to_owned();
                by_tag.entry(tag).or_default().push((method, path.as_str(), op));
            }
        }
    }
    let server = doc["servers"][0]["url"].as_str().unwrap_or_default();
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><link rel=\"icon\" href=\"data:,\">\
         <title>API reference · {title}</title><style>{STYLE}</style></head><body><header><h1>{title}</h1>\
         <p>{description}</p><p>Base URL: <code>{server}</code> · <a href=\"/openapi.json\">OpenAPI 3.1 document</a> · <a href=\"/swagger/swagger.json\">Swagger 2.0</a> (for client generators)</p></header><nav><ul>",
        title = escape(doc["info"]["title"].as_str().unwrap_or("API")),
        description = prose(doc["info"]["description"].as_str().unwrap_or_default()),
        server = escape(server),
    );
    for tag in by_tag.keys() {
        let _ = write!(out, "<li><a href=\"#tag-{}\">{}</a></li>", anchor(tag), escape(tag));
    }
    out.push_str("</ul></nav><main>");
    if let Some(missing) = doc["info"]["x-unavailable"].as_array() {
        let names: Vec<&str> = missing.iter().filter_map(Value::as_str).collect();
        let _ = write!(
            out,
            "<p class=\"warn\">Not shown (unavailable right now): {}</p>",
            escape(&names.join(", "))
        );
    }
    for (tag, operations) in &by_tag {
        let _ = write!(out, "<h2 id=\"tag-{}\">{}</h2>", anchor(tag), escape(tag));
        for (method, path, op) in operations {
            render_operation(&mut out, method, path, op, &doc["components"]["responses"]);
        }
    }
    out.push_str("</main></body></html>");
    out
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2433;background:#f6f7fb}\
header{background:#1d2433;color:#fff;padding:1.5rem 2rem}header a{color:#9cc3ff}header code{color:#ffe08a}\
nav{padding:.5rem 2rem;background:#fff;border-bottom:1px solid #dde1ea}nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:1rem}\
main{max-width:980px;margin:0 auto;padding:1rem 2rem 3rem}h2{margin-top:2rem;border-bottom:2px solid #dde1ea;text-transform:capitalize}\
.op{background:#fff;border:1px solid #dde1ea;border-radius:8px;padding:.75rem 1rem;margin:.75rem 0}.op h3{margin:0;font-size:1rem}\
.m{display:inline-block;min-width:4.2rem;text-align:center;border-radius:4px;color:#fff;font-size:.8rem;padding:.1rem .4rem}\
.get{background:#2f7d32}.post{background:#1f5fbf}.put,.patch{background:#a35d00}.delete{background:#b3261e}\
.summary{font-weight:600}.auth{color:#6b4e00}table{border-collapse:collapse;width:100%;font-size:.9rem}\
td,th{border:1px solid #dde1ea;padding:.25rem .5rem;text-align:left}.responses{margin:.25rem 0;padding-left:1.2rem}\
.warn{background:#fff4d6;border:1px solid #e8c66a;padding:.5rem;border-radius:6px}";

/// A fragment identifier for `tag`: tags are free text ("locales and categories"), ids may
/// not hold spaces.
fn anchor(tag: &str) -> String {
    tag.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}
