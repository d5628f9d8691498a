//! Seed 000's `/swagger/swagger.json`: the merged OpenAPI 3.1 document rendered as Swagger 2.0,
//! which Swagger Codegen 2.x and Swagger 2.0 libraries read. What 2.0 cannot say is said the
//! nearest way it can: a nullable type is `x-nullable`, a bearer token an `Authorization`
//! header, a form body `formData` parameters, a choice between shapes an unconstrained schema.

use serde_json::{Map, Value, json};

use http_kit::openapi::METHODS;

/// The Swagger 2.0 document of `openapi` (an OpenAPI 3.1 document).
pub fn render(openapi: &Value) -> Value {
    let url = url::Url::parse(openapi["servers"][0]["url"].as_str().unwrap_or("http://localhost")).ok();
    let host = url.as_ref().map_or_else(String::new, |u| {
        let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
        format!("{}{port}", u.host_str().unwrap_or("localhost"))
    });
    let base_path = url.as_ref().map_or("/", |u| u.path());
    let scheme = url.as_ref().map_or("http", url::Url::scheme);
    let paths: Map<String, Value> = openapi["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(path, item)| (path.clone(), path_item(item, &openapi["components"]["schemas"])))
        .collect();
    json!({
        "swagger": "2.0",
        "info": openapi["info"],
        "host": host,
        "basePath": base_path,
        "schemes": [scheme],
        "produces": ["application/json"],
        "paths": paths,
        "definitions": map_values(&openapi["components"]["schemas"], schema),
        "responses": map_values(&openapi["components"]["responses"], response),
        "securityDefinitions": map_values(&openapi["components"]["securitySchemes"], security_scheme),
        "tags": openapi["tags"],
    })
}

fn map_values(source: &Value, convert: fn(&Value) -> Value) -> Map<String, Value> {
    source
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.clone(), convert(value)))
        .collect()
}

fn security_scheme(scheme: &Value) -> Value {
    match (scheme["type"].as_str(), scheme["scheme"].as_str()) {
        (Some("http"), Some("bearer")) => json!({
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "`Bearer ` and an access token (RFC 6750)",
        }),
        (Some("http"), _) => json!({"type": "basic"}),
        _ => json!({
            "type": "apiKey", "in": scheme["in"], "name": scheme["name"],
            "description": scheme["description"],
        }),
    }
}

fn path_item(item: &Value, schemas: &Value) -> Value {
    let mut out = Map::new();
    for method in METHODS {
        if let Some(op) = item.get(method) {
            out.insert(method.to_owned(), operation(op, schemas));
        }
    }
    Value::Object(out)
}

fn operation(op: &Value, schemas: &Value) -> Value {
    let mut out = Map::new();
    for key in ["operationId", "summary", "description", "tags", "deprecated"] {
        if let Some(value) = op.get(key) {
            out.insert(key.to_owned(), value.clone());
        }
    }
    if let Some(requirements) = op["security"].as_array() {
        // API keys carry no scopes in 2.0; the scopes stay in the description.
        let mut names: Vec<Value> = Vec::new();
        for requirement in requirements.iter().filter_map(Value::as_object) {
            let named = Value::Object(requirement.keys().map(|k| (k.clone(), json!([]))).collect());
            if !names.contains(&named) {
                names.push(named);
            }
        }
        out.insert("security".into(), Value::Array(names));
    }
    let mut parameters: Vec<Value> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| parameter(p, schemas))
        .collect();
    let (consumes, body_parameters) = request_body(&op["requestBody"], schemas);
    parameters.extend(body_parameters);
    if !parameters.is_empty() {
        out.insert("parameters".into(), Value::Array(parameters));
    }
    if let Some(consumes) = consumes {
        out.insert("consumes".into(), json!([consumes]));
    }
    let mut produces: Vec<&str> = op["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, r)| r["content"].as_object())
        .flat_map(|c| c.keys().map(String::as_str))
        .collect();
    produces.dedup();
    if produces.iter().any(|p| !p.contains("json")) {
        out.insert("produces".into(), json!(produces));
    }
    out.insert(
        "responses".into(),
        Value::Object(map_values(&op["responses"], response)),
    );
    Value::Object(out)
}

/// A parameter of 2.0: its type and limits inline, not in a schema (nor named in `schemas`).
fn parameter(p: &Value, schemas: &Value) -> Value {
    let named = p["schema"]["$ref"]
        .as_str()
        .map(|r| &schemas[r.trim_start_matches("#/components/schemas/")]);
    let mut out = match schema(named.unwrap_or(&p["schema"])) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    out.remove("x-nullable");
    out.remove("example");
    if out.get("type").is_none() {
        out.insert("type".into(), json!("string"));
    }
    if out["type"] == "array" && p["in"] == "query" {
        out.insert("collectionFormat".into(), json!("multi"));
    }
    for key in ["name", "in", "description"] {
        if let Some(value) = p.get(key).filter(|v| v.is_string()) {
            out.insert(key.to_owned(), value.clone());
        }
    }
    out.insert(
        "required".into(),
        json!(p["required"].as_bool().unwrap_or(p["in"] == "path")),
    );
    Value::Object(out)
}

/// The media type a body is sent as, and the parameters that carry it: one `body` parameter,
/// or a form's fields (of its schema in `schemas`, when it names one) as `formData`.
fn request_body(body: &Value, schemas: &Value) -> (Option<String>, Vec<Value>) {
    let Some((media, content)) = body["content"].as_object().and_then(|c| c.iter().next()) else {
        return (None, Vec::new());
    };
    let required = body["required"].as_bool().unwrap_or(false);
    if media == "application/x-www-form-urlencoded" {
        let form = match content["schema"]["$ref"].as_str() {
            Some(reference) => &schemas[reference.trim_start_matches("#/components/schemas/")],
            None => &content["schema"],
        };
        let needed: Vec<&str> = form["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let fields = form["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, field)| {
                parameter(
                    &json!({"name": name, "in": "formData", "required": needed.contains(&name.as_str()),
                                  "description": field["description"], "schema": field}),
                    schemas,
                )
            })
            .collect();
        return (Some(media.clone()), fields);
    }
    let mut parameter =
        json!({"name": "body", "in": "body", "required": required, "schema": schema(&content["schema"])});
    if let Some(description) = body.get("description") {
        parameter["description"] = description.clone();
    }
    (Some(media.clone()), vec![parameter])
}

fn response(r: &Value) -> Value {
    if let Some(reference) = r["$ref"].as_str() {
        return json!({"$ref": reference.replace("#/components/responses/", "#/responses/")});
    }
    let mut out = json!({"description": r["description"].as_str().unwrap_or("")});
    if let Some(media) = r["content"].as_object().and_then(|c| c.values().next())
        && media.get("schema").is_some()
    {
        out["schema"] = schema(&media["schema"]);
    }
    if let Some(headers) = r["headers"].as_object() {
        let headers: Map<String, Value> = headers
            .iter()
            .map(|(name, h)| {
                let mut header = parameter(&json!({"schema": h["schema"]}), &Value::Null);
                for key in ["name", "in", "required", "collectionFormat"] {
                    header.as_object_mut().map(|m| m.remove(key));
                }
                if let Some(description) = h.get("description") {
                    header["description"] = description.clone();
                }
                (name.clone(), header)
            })
            .collect();
        out["headers"] = Value::Object(headers);
    }
    out
}

/// A JSON Schema of OpenAPI 3.1 as the schema subset of Swagger 2.0.
fn schema(s: &Value) -> Value {
    let Some(source) = s.as_object() else {
        return json!({});
    };
    if let Some(reference) = source.get("$ref").and_then(Value::as_str) {
        return json!({"$ref": reference.replace("#/components/schemas/", "#/definitions/")});
    }
    let mut out = Map::new();
    let mut nullable = false;
    for (key, value) in source {
        match key.as_str() {
            "type" => match value {
                Value::Array(types) => {
                    nullable = types.iter().any(|t| t == "null");
                    if let Some(kind) = types.iter().find(|t| *t != "null") {
                        out.insert("type".into(), kind.clone());
                    }
                }
                Value::String(kind) if kind == "null" => nullable = true,
                other => {
                    out.insert("type".into(), other.clone());
                }
            },
            "oneOf" | "anyOf" => {
                let variants: Vec<&Value> = value.as_array().into_iter().flatten().collect();
                let (nulls, others): (Vec<&Value>, Vec<&Value>) =
                    variants.into_iter().partition(|v| v["type"] == "null");
                nullable |= !nulls.is_empty();
                if let [only] = others.as_slice() {
                    // A `$ref` cannot have siblings in 2.0: it is wrapped in allOf.
                    let converted = schema(only);
                    if converted.get("$ref").is_some() {
                        out.insert("allOf".into(), json!([converted]));
                    } else if let Value::Object(map) = converted {
                        out.extend(map);
                    }
                }
            }
            "enum" => {
                let values: Vec<Value> = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|v| !v.is_null())
                    .cloned()
                    .collect();
                nullable |= values.len() < value.as_array().map_or(0, Vec::len);
                out.insert("enum".into(), Value::Array(values));
            }
            "const" => {
                out.insert("enum".into(), json!([value]));
            }
            "examples" => {
                if let Some(first) = value.as_array().and_then(|e| e.first()) {
                    out.insert("example".into(), first.clone());
                }
            }
            "exclusiveMinimum" | "exclusiveMaximum" if value.is_number() => {
                let bound = if key == "exclusiveMinimum" {
                    "minimum"
                } else {
                    "maximum"
                };
                out.insert(bound.into(), value.clone());
                out.insert(key.clone(), json!(true));
            }
            "properties" => {
                out.insert(key.clone(), Value::Object(map_values(value, schema)));
            }
            "items" | "additionalProperties" if value.is_object() => {
                out.insert(key.clone(), schema(value));
            }
            "allOf" => {
                out.insert(
                    key.clone(),
                    Value::Array(value.as_array().into_iter().flatten().map(schema).collect()),
                );
            }
            "propertyNames"
            | "prefixItems"
            | "contentMediaType"
            | "contentEncoding"
            | "$schema"
            | "unevaluatedProperties"
            | "deprecated"
            | "writeOnly" => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if nullable {
        out.insert("x-nullable".into(), json!(true));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_2_0_cannot_say_is_said_the_nearest_way() {
        let openapi = json!({
            "openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "servers": [{"url": "https://api.example.com:8443"}],
            "paths": {"/things/{id}": {"patch": {
                "operationId": "updateThing", "security": [{"bearer": ["things:write"]}],
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
                "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
                              "401": {"$ref": "#/components/responses/Unauthorized"}}}},
                "/token": {"post": {"requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {
                    "$ref": "#/components/schemas/TokenForm"}}}},
                    "responses": {"200": {"description": "ok"}}}}},
            "components": {
                "schemas": {"Thing": {"type": "object", "properties": {
                    "name": {"type": ["string", "null"], "maxLength": 10},
                    "owner": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Owner"}]},
                    "codes": {"type": "object", "propertyNames": {"pattern": "^[A-Z]+$"}}}},
                    "Owner": {"type": "object"},
                    "TokenForm": {"type": "object", "required": ["grant_type"],
                        "properties": {"grant_type": {"type": "string", "enum": ["password"]}, "scope": {"type": "string"}}}},
                "responses": {"Unauthorized": {"description": "no token", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Owner"}}}}},
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        });
        let doc = render(&openapi);
        assert_eq!(
            (
                doc["swagger"].as_str(),
                doc["host"].as_str(),
                doc["schemes"][0].as_str()
            ),
            (Some("2.0"), Some("api.example.com:8443"), Some("https"))
        );
        let patch = &doc["paths"]["/things/{id}"]["patch"];
        assert_eq!(
            patch["parameters"][0],
            json!({"name": "id", "in": "path", "required": true, "type": "integer", "minimum": 1})
        );
        assert_eq!(patch["parameters"][1]["schema"], json!({"$ref": "#/definitions/Thing"}));
        assert_eq!(patch["security"], json!([{"bearer": []}]));
        assert_eq!(patch["responses"]["401"], json!({"$ref": "#/responses/Unauthorized"}));
        let thing = &doc["definitions"]["Thing"]["properties"];
        assert_eq!(
            thing["name"],
            json!({"type": "string", "maxLength": 10, "x-nullable": true})
        );
        assert_eq!(
            thing["owner"],
            json!({"allOf": [{"$ref": "#/definitions/Owner"}], "x-nullable": true})
        );
        assert_eq!(thing["codes"], json!({"type": "object"}));
        let form = &doc["paths"]["/token"]["post"];
        assert_eq!(form["consumes"], json!(["application/x-www-form-urlencoded"]));
        assert_eq!(
            form["parameters"][0],
            json!({"name": "grant_type", "in": "formData", "required": true, "type": "string", "enum": ["password"]})
        );
        assert_eq!(doc["securityDefinitions"]["bearer"]["in"], "header");
    }
}
