//! Each service describes its API with utoipa; the kit adds the operational endpoints, the
//! error envelope, and the answers its own extractors give (a body that is not JSON, a query
//! that does not parse, a missing token), and serves the document at `/openapi.json`.

use serde_json::{Map, Value, json};
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;

#[derive(OpenApi)]
#[openapi(
    paths(crate::health::healthz, crate::health::readyz, crate::health::metrics),
    components(schemas(crate::ErrorBody, crate::oauth_error::Body, crate::health::Status, crate::health::CheckResult, crate::pagination::PageLinks)),
    tags((name = "operations", description = "Health, readiness and metrics of the service"))
)]
struct KitApi;

/// The methods an OpenAPI path item may hold operations for.
pub const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// The service's document with the kit's paths, schemas and shared answers merged in.
pub fn complete(mut service: Document) -> Value {
    service.merge(KitApi::openapi());
    let mut doc = serde_json::to_value(service).unwrap_or_default();
    add_shared_responses(&mut doc);
    for operation in operations_mut(&mut doc) {
        add_kit_answers(operation);
    }
    doc
}

/// Sets keywords of `property` of the component schema `schema` (limits a service knows only
/// from its settings, patterns its parsers build): the schema says what the parser takes.
pub fn describe(doc: &mut Value, schema: &str, property: &str, keywords: Value) {
    if let (Some(target), Value::Object(keywords)) = (
        doc["components"]["schemas"][schema]["properties"][property].as_object_mut(),
        keywords,
    ) {
        target.extend(keywords);
    }
}

/// Every operation of `doc`, to be completed in place.
pub fn operations_mut(doc: &mut Value) -> impl Iterator<Item = &mut Map<String, Value>> {
    doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| {
            item.iter_mut()
                .filter(|(method, _)| METHODS.contains(&method.as_str()))
                .filter_map(|(_, op)| op.as_object_mut())
        })
}

/// `status` answered with the shared response `name`, unless the operation describes it itself.
pub fn answer(operation: &mut Map<String, Value>, status: u16, name: &str) {
    let responses = operation
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(responses) = responses {
        responses
            .entry(status.to_string())
            .or_insert_with(|| json!({"$ref": format!("#/components/responses/{name}")}));
    }
}

/// Whether the operation takes a bearer token with at least one scope (a `bearer` requirement;
/// `{}` alone means public).
pub fn scopes_required(operation: &Map<String, Value>) -> Option<bool> {
    let requirements = operation.get("security")?.as_array()?;
    let bearer: Vec<&Value> = requirements.iter().filter_map(|r| r.get("bearer")).collect();
    if bearer.is_empty() {
        return None;
    }
    Some(
        bearer
            .iter()
            .any(|scopes| scopes.as_array().is_some_and(|s| !s.is_empty())),
    )
}

fn add_kit_answers(operation: &mut Map<String, Value>) {
    let body_types: Vec<String> = operation
        .get("requestBody")
        .and_then(|b| b["content"].as_object())
        .map(|content| content.keys().cloned().collect())
        .unwrap_or_default();
    let parameters = operation
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let json_body = body_types.iter().any(|t| t.contains("json"));
    if json_body {
        // What `Json` answers (extract::json_config).
        answer(operation, 400, "BadRequest");
        answer(operation, 413, "PayloadTooLarge");
        answer(operation, 415, "UnsupportedMediaType");
        answer(operation, 422, "Unprocessable");
    }
    if parameters.iter().any(|p| p["in"] == "query") && !body_types.iter().any(|t| t.contains("form")) {
        // A query that does not deserialize, then one whose values are out of range.
        answer(operation, 400, "BadRequest");
        answer(operation, 422, "Unprocessable");
    }
    if parameters.iter().any(|p| p["in"] == "path") {
        answer(operation, 404, "NotFound");
    }
    if let Some(scoped) = scopes_required(operation) {
        answer(operation, 401, "Unauthorized");
        if scoped {
            answer(operation, 403, "Forbidden");
        }
    }
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

fn add_shared_responses(doc: &mut Value) {
    let mut too_many = error_response("Too many requests: wait `Retry-After` seconds (`too_many_requests`)");
    too_many["headers"] = json!({
        "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}},
        "RateLimit-Limit": {"description": "Requests allowed in a burst", "schema": {"type": "integer"}},
        "RateLimit-Remaining": {"description": "Requests left now", "schema": {"type": "integer"}},
        "RateLimit-Reset": {"description": "Seconds until one more request is allowed", "schema": {"type": "integer"}}
    });
    let mut unauthorized = error_response(
        "No valid bearer access token (`unauthorized`): missing, expired, revoked or not for this platform",
    );
    unauthorized["headers"] = json!({
        "WWW-Authenticate": {"description": "RFC 6750 challenge", "schema": {"type": "string"}}
    });
    let shared = json!({
        "BadRequest": error_response("The body is not well-formed JSON (`malformed_json`) or a query parameter does not parse (`invalid_query`)"),
        "Unauthorized": unauthorized,
        "Forbidden": error_response("The token lacks a scope this operation needs, or its holder may not act on this resource (`forbidden`)"),
        "NotFound": error_response("No such resource, or not one the caller may see (`not_found`)"),
        "RequestTimeout": error_response("The request body did not arrive in time (`request_timeout`)"),
        "PayloadTooLarge": error_response("The body is larger than the limit (`payload_too_large`)"),
        "UnsupportedMediaType": error_response("The body is not of the media type this operation reads (`unsupported_media_type`)"),
        "Unprocessable": error_response("A field is not valid (`validation_failed`): `errors` lists every such field with the reason"),
        "TooManyRequests": too_many,
    });
    let responses = &mut doc["components"]["responses"];
    if !responses.is_object() {
        *responses = json!({});
    }
    for (name, response) in shared.as_object().into_iter().flatten() {
        responses[name.as_str()] = response.clone();
    }
}

/// Declares the `bearer` security scheme (an RFC 6750 JWT access token) that operations name
/// in `security(("bearer" = [scopes]))`.
pub struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut Document) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
