//! `GET /api/openapi.json`: the OpenAPI 3.0 document of every route.
//!
//! Written by hand, except the schemas of wire types that have a Rust counterpart
//! (`/api/state`'s `StateView`, the state stream's `StateEvent`, `Diagnostic`): those are generated from the types
//! (`super::wire::openapi_schemas`), so the document describes every field they write.
//!
//! Kept next to the route table in `mod.rs`; a test compares the paths listed here with
//! the routes the router answers, so a new route without documentation fails the build's
//! tests. Must not: drift from the handlers' real shapes (tests fuzz it with schemathesis).
//!
//! For generators: every operation has an `operationId`, derived from its method and path
//! ([`operation_id`]: `get /api/models/{name}` → `getModelsByName`), so a new route gets one
//! without a table to forget; every variant of a `oneOf` is a named component
//! (`DesiredEditActivate`, …) with a `discriminator`, so clients get named types, not
//! `DesiredEdit1…9`. The OpenAI proxy (`/v1/{path}`, `/api/audio/diarize-chunk`) is
//! described as a passthrough: its bodies are whatever the upstream speaks.

mod for_generators;
mod proxy;
pub mod typescript;

use axum::Json;
use serde_json::{json, Value};

pub use for_generators::operation_id;
use for_generators::{add_operation_ids, as_oas30, name_variants};

fn err_resp(desc: &str) -> Value {
    json!({ "description": desc, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn json_resp(desc: &str, schema: Value) -> Value {
    json!({ "description": desc, "content": { "application/json": { "schema": schema } } })
}

fn text_resp(desc: &str, mime: &str) -> Value {
    // YAML and SSE bodies are not one JSON string: their schema is left open.
    let schema = if mime.starts_with("text/plain") || mime.starts_with("text/html") {
        json!({ "type": "string" })
    } else {
        json!({})
    };
    json!({ "description": desc, "content": { mime: { "schema": schema } } })
}

fn name_param(desc: &str) -> Value {
    json!({ "name": "name", "in": "path", "required": true, "description": desc,
            "schema": { "type": "string", "minLength": 1 } })
}

fn if_match(required: bool) -> Value {
    json!({ "name": "If-Match", "in": "header", "required": required,
            "description": "The ETag of GET /api/desired the change is based on",
            "schema": { "type": "string" } })
}

fn body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

fn sref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A mutating edit route: its body, the `If-Match` header, the standard answers.
fn edit_op(summary: &str, params: Vec<Value>, req: Option<Value>, ok: &str) -> Value {
    let mut params = params;
    params.push(if_match(false));
    let mut op = json!({
        "summary": summary,
        "tags": ["desired"],
        "security": [{ "admin": [] }],
        "parameters": params,
        "responses": {
            ok: json_resp("Written (or already so); the new ETag", sref("Written")),
            "400": err_resp("Body not JSON, or malformed If-Match"),
            "401": err_resp("Admin token missing or wrong"),
            "403": err_resp("Cross-origin write"),
            "404": err_resp("Nothing to remove"),
            "409": err_resp("The file changed since If-Match; carries current_text and current_etag"),
            "415": err_resp("Body is not application/json"),
            "413": err_resp("Body over 2 MB"),
            "422": err_resp("Body not a JSON object or a field mistyped, missing or unknown (the message names it); a value over its size limit; or the result would be invalid (carries diagnostics with line/column)"),
        }
    });
    if let Some(r) = req {
        op["requestBody"] = body(r);
    }
    op
}

/// `POST /api/operations/{id}/cancel` (its own function: the paths `json!` is at the
/// macro recursion limit).
fn cancel_op() -> Value {
    json!({
        "summary": "Cancel the running operation now (it stops at its current wait; a stop or launch command already sent runs to its end). Plan steps then wait for a change of the desired state, /api/retry or /api/reconcile; /api/state says so in `held`",
        "tags": ["commands"], "security": [{ "admin": [] }],
        "parameters": [{ "name": "id", "in": "path", "required": true, "description": "The operation's id (`operation.id` in /api/state)", "schema": { "type": "integer", "minimum": 0 } }],
        "responses": {
            "202": json_resp("Cancelling", json!({ "type": "object", "required": ["cancelling"], "properties": {
                "cancelling": { "type": "integer" }, "status": { "type": "string" }, "logs": { "type": "string" } } })),
            "400": err_resp("Bad id"),
            "401": err_resp("Admin token missing or wrong"),
            "403": err_resp("Cross-origin write"),
            "404": err_resp("No such operation"),
            "409": err_resp("The operation already ended (operation_ended)"),
            "503": err_resp("The control loop is busy or stopped") } })
}

fn command_op(summary: &str, params: Vec<Value>) -> Value {
    json!({
        "summary": summary, "tags": ["commands"], "security": [{ "admin": [] }],
        "parameters": params,
        "responses": {
            "202": json_resp("Sent to the control loop", sref("Accepted")),
            "401": err_resp("Admin token missing or wrong"),
            "403": err_resp("Cross-origin write"),
            "404": err_resp("No such service"),
            "503": err_resp("The control loop is busy or stopped"),
        }
    })
}

fn get_op(summary: &str, tag: &str, ok: Value) -> Value {
    json!({ "summary": summary, "tags": [tag], "responses": { "200": ok } })
}

/// The document.
pub fn document() -> Value {
    let mut paths = json!({
        "/": { "get": get_op("The web UI", "ui", text_resp("HTML", "text/html")) },
        "/app.js": { "get": get_op("The web UI's script", "ui", text_resp("JavaScript", "text/javascript")) },
        "/app.css": { "get": get_op("The web UI's style sheet", "ui", text_resp("CSS", "text/css")) },
        "/healthz": { "get": get_op("Liveness: the process answers", "probes", text_resp("ok", "text/plain")) },
        "/readyz": { "get": {
            "summary": "Readiness: a valid desired file and a first observation", "tags": ["probes"],
            "responses": { "200": text_resp("ready", "text/plain"), "503": text_resp("Why not, one line", "text/plain") } } },
        "/metrics": { "get": get_op("Prometheus metrics", "probes", text_resp("Prometheus text", "text/plain")) },
        "/api/openapi.json": { "get": get_op("This document", "docs", json_resp("OpenAPI 3.0", json!({ "type": "object" }))) },
        "/schema/desired-state.json": { "get": get_op("The JSON schema (2020-12) of the desired-state file, for editors (no token needed)", "docs",
            json!({ "description": "JSON Schema", "content": { "application/schema+json": { "schema": { "type": "object" } } } })) },
        "/api/state": { "get": get_op("Desired, observed, per-resource sync/health, operation, last error, auth, catalog", "state",
            json_resp("The status", sref(super::wire::STATE_SCHEMA))) },
        "/api/setup": { "get": get_op("What connecting the Sparks needs: the controller's public key, host-key fingerprints, the Open WebUI link", "state",
            json_resp("Setup facts", json!({ "type": "object", "required": ["public_key", "host_keys", "open_webui_url"],
                "properties": { "public_key": { "type": "string", "nullable": true }, "host_keys": { "type": "object" }, "open_webui_url": { "type": "string", "nullable": true } } }))) },
        "/api/plan": { "get": get_op("The plan the loop would run now, JSON and text, and whether it is complete", "state",
            json_resp("The plan", sref("PlanView"))) },
        "/api/endpoints": { "get": get_op("Service discovery for LAN apps", "state", json_resp("One key per service", sref("Endpoints"))) },
        "/api/events": { "get": {
            "summary": "The connectivity log, oldest first", "tags": ["events"],
            "parameters": [
                { "name": "service", "in": "query", "schema": { "type": "string" } },
                { "name": "since", "in": "query", "description": "RFC 3339", "schema": { "type": "string", "format": "date-time" } },
                { "name": "until", "in": "query", "description": "RFC 3339", "schema": { "type": "string", "format": "date-time" } },
                { "name": "kind", "in": "query", "schema": { "type": "string", "enum": ["transition", "report", "action", "result"] } },
                { "name": "limit", "in": "query", "description": "Newest N (default 500; more than 2000 is cut to 2000)", "schema": { "type": "integer", "minimum": 0 } }
            ],
            "responses": { "200": json_resp("Events", json!({ "type": "object", "properties": { "events": { "type": "array", "items": sref("Event") } } })),
                           "400": err_resp("Bad filter") } } },
        "/api/health-event": { "post": {
            "summary": "A LAN app reports success or failure of a service (no admin token; rate-limited per source)", "tags": ["events"],
            "requestBody": body(sref("HealthEvent")),
            "responses": { "202": json_resp("Recorded", json!({ "type": "object" })),
                           "400": err_resp("A field is missing or mistyped (the message names it)"),
                           "413": err_resp("Body over 16 KiB"),
                           "429": err_resp("Too many reports from this source; see Retry-After") } } },
        "/api/logs": { "get": {
            "summary": "Operation logs as server-sent events: backlog, then live. Events `log` (LogLine JSON) and `skipped` (N lines missed)", "tags": ["logs"],
            "parameters": [{ "name": "op", "in": "query", "description": "Only this operation", "schema": { "type": "integer", "minimum": 0 } }],
            "responses": { "200": text_resp("SSE stream", "text/event-stream"), "400": err_resp("Bad query") } } },
        "/api/operations/{id}/logs": { "get": {
            "summary": "One operation's log lines as JSON lines", "tags": ["logs"],
            "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "integer", "minimum": 0 } }],
            "responses": { "200": text_resp("JSON lines", "application/x-ndjson"),
                           "400": err_resp("Bad id"), "404": err_resp("No lines for that operation") } } },
        "/api/desired": {
            "get": { "summary": "The desired-state YAML with its ETag", "tags": ["desired"],
                     "responses": { "200": text_resp("YAML text; ETag header", "application/yaml") } },
            "put": { "summary": "Replace the desired-state file", "tags": ["desired"], "security": [{ "admin": [] }],
                     "parameters": [if_match(true)],
                     "requestBody": { "required": true, "content": { "application/yaml": { "schema": { "type": "string" } } } },
                     "responses": {
                        "200": json_resp("Written; the new ETag", sref("Written")),
                        "400": err_resp("Malformed If-Match or body not UTF-8"),
                        "401": err_resp("Admin token missing or wrong"),
                        "403": err_resp("Cross-origin write"),
                        "409": err_resp("Stale If-Match; carries the current text"),
                        "413": err_resp("Body over 2 MiB"),
                        "422": err_resp("Invalid; every diagnostic with line/column; nothing written"),
                        "428": err_resp("If-Match missing") } } },
        "/api/desired/edit": { "post": edit_op("One targeted, comment-preserving edit", vec![], Some(sref("DesiredEdit")), "200") },
        "/api/desired/preview": { "post": {
            "summary": "What one edit would change and do, written nowhere", "tags": ["desired"], "security": [{ "admin": [] }],
            "requestBody": { "required": true, "content": { "application/json": { "schema": sref("DesiredEdit") } } },
            "responses": {
                "200": json_resp("The changes in words, the plan against the latest observation, and the ETag it applies to", sref("EditPreview")),
                "400": err_resp("Malformed body"),
                "401": err_resp("Admin token missing or wrong"),
                "403": err_resp("Cross-origin request"),
                "404": err_resp("No such deployment"),
                "413": err_resp("Body over 2 MB"),
                "415": err_resp("Body is not application/json"),
                "422": err_resp("Body not a JSON object or a field mistyped, missing or unknown; a value over its size limit; or the result would be invalid (carries diagnostics with line/column)") } } },
        "/api/models": { "post": edit_op("Add or update a custom catalog entry", vec![], Some(json!({
            "type": "object", "required": ["name", "repo"], "additionalProperties": false,
            "properties": { "name": { "type": "string" }, "repo": { "type": "string" }, "mode": { "type": "string", "enum": ["solo", "cluster"] } } })), "201") },
        "/api/models/{name}": { "delete": edit_op("Remove a custom catalog entry and its overrides", vec![name_param("Model")], None, "200") },
        "/api/models/{name}/activate": { "post": edit_op("Make this the active model", vec![name_param("Model")], None, "200") },
        "/api/models/{name}/overrides": { "put": edit_op("Patch a model's overrides (null removes a field)", vec![name_param("Model")], Some(sref("OverridesPatch")), "200") },
        "/api/services/{name}": { "put": edit_op("Service placement and running state", vec![name_param("Service")], Some(json!({
            "type": "object", "additionalProperties": false,
            "properties": { "host": { "type": "string" }, "port": { "type": "integer", "minimum": 0, "maximum": 65535 }, "running": { "type": "boolean" } } })), "200") },
        "/api/services/{name}/restart": { "post": command_op("Restart a service's container", vec![name_param("Service")]) },
        "/api/updates/policy": { "put": edit_op("Launcher update policy", vec![], Some(json!({
            "type": "object", "required": ["policy"], "additionalProperties": false,
            "properties": { "policy": { "type": "string", "enum": ["manual", "notify", "auto", "pin"] }, "pin": { "type": "string" } } })), "200") },
        "/api/updates/check": { "post": command_op("Check for launcher updates now", vec![]) },
        "/api/hosts/{name}": {
            "put": edit_op("Add or update a host", vec![name_param("Host")], Some(json!({
                "type": "object", "required": ["address"], "additionalProperties": false,
                "properties": { "address": { "type": "string" }, "user": { "type": "string" }, "port": { "type": "integer", "minimum": 0, "maximum": 65535 } } })), "200"),
            "delete": edit_op("Remove a host", vec![name_param("Host")], None, "200") },
        "/api/cluster": { "put": edit_op("Cluster head and workers", vec![], Some(json!({
            "type": "object", "additionalProperties": false,
            "properties": { "head": { "type": "string" }, "workers": { "type": "array", "items": { "type": "string" } } } })), "200") },
        "/api/operations/{id}/cancel": { "post": cancel_op() },
        "/api/retry": { "post": command_op("Forget the failure backoff (or a cancel's hold) and try again", vec![]) },
        "/api/reconcile": { "post": command_op("Observe now and run the plan", vec![]) },
    });
    for extra in [
        super::ui::openapi_paths(),
        super::state_stream::openapi_paths(),
        super::downloads::openapi_paths(),
        super::telemetry::openapi_paths(),
        super::history::openapi_paths(),
        proxy::proxy_paths(),
    ] {
        if let (Some(p), Some(e)) = (paths.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
    }
    add_operation_ids(&mut paths);
    json!({
        "openapi": "3.0.3",
        "info": { "title": "spark-control", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Control plane of a small vLLM cluster. Errors are {\"error\":{\"message\",\"type\",\"code\"}}. The OpenAI proxy (/v1/*) passes requests to the active vLLM (speech to the STT/TTS services) unchanged; its bodies are OpenAI's API as vLLM implements it." },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "admin": { "type": "http", "scheme": "bearer", "description": "The admin token (mutating routes)" },
                "inference": { "type": "http", "scheme": "bearer", "description": "An inference key, when the server has any (/v1)" } },
            "schemas": schemas(),
        }
    })
}

/// The named schemas: the hand-written ones, then those generated from the wire types
/// (`StateView` and what it refers to, `Diagnostic` among them). A generated schema never
/// replaces a hand-written one (`generated_schemas_replace_no_hand_written_one`).
fn schemas() -> Value {
    let mut all = hand_written_schemas();
    if let Value::Object(m) = &mut all {
        let mut generated = super::wire::openapi_schemas();
        name_variants(&mut generated);
        for (name, mut schema) in generated {
            as_oas30(&mut schema);
            m.entry(name).or_insert(schema);
        }
    }
    all
}

fn hand_written_schemas() -> Value {
    let s = |t: &str| json!({ "type": t });
    let ns = json!({ "type": "string", "nullable": true });
    let mut all = json!({
        "Error": { "type": "object", "required": ["error"], "properties": { "error": {
            "type": "object", "required": ["message", "type", "code"],
            "properties": { "message": s("string"), "type": s("string"), "code": s("string"),
                            "current_text": s("string"), "current_etag": s("string"),
                            "diagnostics": { "type": "array", "items": sref("Diagnostic") } } } } },
        "Written": { "type": "object", "required": ["etag", "changed"], "properties": {
            "etag": s("string"), "changed": s("boolean"), "warnings": { "type": "array", "items": sref("Diagnostic") } } },
        "EditPreview": { "type": "object", "required": ["etag", "unchanged", "changes", "plan", "warnings"], "properties": {
            "etag": { "type": "string", "description": "The ETag of the file the edit was applied to: send it as If-Match with the same edit" },
            "unchanged": { "type": "boolean", "description": "The edit is already in force" },
            "changes": { "type": "array", "items": s("string"), "description": "What the edit changes, one phrase each (as in git-ops commit messages)" },
            "plan": sref("PlanView"),
            "warnings": { "type": "array", "items": s("string") } } },
        "Accepted": { "type": "object", "required": ["accepted"], "properties": { "accepted": s("string") } },
        "PlanView": { "type": "object", "required": ["complete", "steps", "text"], "properties": {
            "generation": s("integer"), "complete": s("boolean"),
            "incomplete_because": { "type": "array", "items": s("string") },
            "steps": { "type": "array", "items": sref("Step") }, "text": s("string"), "busy": s("boolean") } },
        "Endpoints": { "type": "object",
            "properties": { "models": { "type": "object", "description": "Every catalog model by name: the deployment it is active on and that deployment's /v1 URL",
                "additionalProperties": sref("ModelEndpoint") } },
            "additionalProperties": { "type": "object", "required": ["ready"], "properties": {
            "ready": s("boolean"), "base_url": s("string"), "model": s("string"), "kind": s("string"), "openai_compat": s("boolean") } } },
        "ModelEndpoint": { "type": "object", "required": ["ready", "base_url", "deployment", "kind"], "properties": {
            "ready": s("boolean"), "base_url": { "type": "string", "nullable": true },
            "deployment": { "type": "string", "nullable": true }, "kind": { "type": "string", "enum": ["llm"] } } },
        "ModelList": { "type": "object", "description": "GET /v1/models on the proxy: the whole catalog, OpenAI's list shape plus status fields",
            "required": ["object", "data"], "properties": { "object": { "type": "string", "enum": ["list"] }, "data": { "type": "array", "items": sref("ModelCard") } } },
        "ModelCard": { "type": "object", "required": ["id", "object", "created", "owned_by", "status", "repo", "aliases"], "properties": {
            "id": { "type": "string", "description": "Catalog name" }, "object": { "type": "string", "enum": ["model"] },
            "created": s("integer"), "owned_by": s("string"),
            "status": { "type": "string", "enum": ["serving", "loading", "available", "downloading", "failed"] },
            "deployment": { "type": "string", "nullable": true }, "repo": s("string"),
            "aliases": { "type": "array", "items": s("string") },
            "max_model_len": { "type": "integer", "nullable": true } } },
        "Event": { "type": "object", "properties": {
            "at": { "type": "string", "format": "date-time" }, "kind": s("string"), "service": s("string"),
            "ok": s("boolean"), "source": s("string"), "error": s("string"), "ms": s("number") } },
        "HealthEvent": { "type": "object", "required": ["service", "ok"], "properties": {
            "service": { "type": "string", "minLength": 1, "maxLength": 128 }, "ok": s("boolean"),
            "source": { "type": "string", "minLength": 1, "maxLength": 128, "nullable": true },
            "error": { "type": "string", "nullable": true },
            "ms": { "type": "number", "minimum": 0, "nullable": true } } },
        "OverridesPatch": { "type": "object", "additionalProperties": false, "properties": {
            "max_context": { "type": "integer", "minimum": 0, "nullable": true },
            "gpu_memory": { "type": "number", "nullable": true },
            "fastsafetensors": { "type": "boolean", "nullable": true },
            "prefix_caching": { "type": "boolean", "nullable": true },
            "fp8_kv_cache": { "type": "boolean", "nullable": true },
            "extra_args": { "type": "array", "items": s("string"), "nullable": true },
            "env": { "type": "object", "additionalProperties": s("string"), "nullable": true } } },
    });
    let variants = [
        (
            "activate",
            "DesiredEditActivate",
            json!({ "model": ns }),
            &["model"][..],
        ),
        (
            "set_overrides",
            "DesiredEditSetOverrides",
            json!({ "model": s("string"), "overrides": sref("OverridesPatch") }),
            &["model", "overrides"],
        ),
        (
            "add_model",
            "DesiredEditAddModel",
            json!({ "name": s("string"), "repo": s("string"), "mode": { "type": "string", "enum": ["solo", "cluster"] } }),
            &["name", "repo", "mode"],
        ),
        (
            "remove_model",
            "DesiredEditRemoveModel",
            json!({ "name": s("string") }),
            &["name"],
        ),
        (
            "place_service",
            "DesiredEditPlaceService",
            json!({ "service": s("string"), "host": ns, "port": { "type": "integer", "minimum": 0, "maximum": 65535, "nullable": true }, "running": { "type": "boolean", "nullable": true } }),
            &["service"],
        ),
        (
            "set_update_policy",
            "DesiredEditSetUpdatePolicy",
            json!({ "policy": s("string"), "pin": ns }),
            &["policy"],
        ),
        (
            "set_host",
            "DesiredEditSetHost",
            json!({ "name": s("string"), "address": s("string"), "user": ns, "port": { "type": "integer", "minimum": 0, "maximum": 65535, "nullable": true } }),
            &["name", "address"],
        ),
        (
            "remove_host",
            "DesiredEditRemoveHost",
            json!({ "name": s("string") }),
            &["name"],
        ),
        (
            "set_deployment_model",
            "DesiredEditSetDeploymentModel",
            json!({ "deployment": s("string"), "model": ns }),
            &["deployment", "model"],
        ),
        (
            "set_cluster",
            "DesiredEditSetCluster",
            json!({ "head": ns, "workers": { "type": "array", "items": s("string"), "nullable": true } }),
            &[],
        ),
    ];
    let mut mapping = serde_json::Map::new();
    let mut one_of = Vec::new();
    if let Value::Object(m) = &mut all {
        for (op, name, props, required) in variants {
            m.insert(name.into(), edit_schema(op, props, required));
            mapping.insert(
                op.into(),
                Value::String(format!("#/components/schemas/{name}")),
            );
            one_of.push(sref(name));
        }
        m.insert(
            "DesiredEdit".into(),
            json!({ "oneOf": one_of, "discriminator": { "propertyName": "op", "mapping": mapping } }),
        );
    }
    all
}

fn edit_schema(op: &str, props: Value, required: &[&str]) -> Value {
    let mut props = props;
    props["op"] = json!({ "type": "string", "enum": [op] });
    let mut req: Vec<&str> = vec!["op"];
    req.extend_from_slice(required);
    json!({ "type": "object", "additionalProperties": false, "required": req, "properties": props })
}

/// `GET /api/openapi.json`.
pub async fn serve() -> Json<Value> {
    Json(document())
}

/// `GET /schema/desired-state.json`: the JSON schema of the desired file (what `$schema`
/// of an editor points at).
pub async fn desired_schema() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/schema+json")],
        crate::model::schema::schema_text(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_a_unique_id_and_no_variant_is_anonymous() {
        let doc = document();
        let mut ids = std::collections::BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().expect("paths") {
            for (method, op) in ops.as_object().expect("ops") {
                let id = op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path}"));
                assert!(ids.insert(id.to_string()), "{id} twice");
            }
        }
        let edit = &doc["components"]["schemas"]["DesiredEdit"];
        let variants = edit["oneOf"].as_array().expect("oneOf");
        assert_eq!(variants.len(), 10);
        for v in variants {
            let name = v["$ref"].as_str().expect("a named variant");
            assert!(edit["discriminator"]["mapping"]
                .as_object()
                .expect("mapping")
                .values()
                .any(|m| m == name));
        }
        let kv = &doc["paths"]["/api/telemetry"]["get"]["responses"]["200"]["content"]
            ["application/json"]["schema"]["properties"]["vllm"]["properties"]["kv_cache"];
        assert!(kv["items"].is_object(), "{kv}");
    }

    #[test]
    fn generated_schemas_replace_no_hand_written_one() {
        let hand = hand_written_schemas();
        let generated = super::super::wire::openapi_schemas();
        for name in generated.keys() {
            assert!(
                hand.get(name).is_none(),
                "{name} is both hand-written and generated"
            );
        }
    }

    #[test]
    fn every_reference_resolves_and_points_into_components() {
        let doc = document();
        let text = serde_json::to_string(&doc).expect("the document serialises");
        assert!(!text.contains("#/$defs/"), "a reference was not rewritten");
        let refs: Vec<&str> = text
            .split("\"$ref\":\"")
            .skip(1)
            .map(|p| p.split('"').next().unwrap_or_default())
            .collect();
        assert!(refs.len() > 10, "{refs:?}");
        for r in refs {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{r} points outside components/schemas"));
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "dangling $ref {r}"
            );
        }
    }

    #[test]
    fn the_state_schema_lists_every_field_and_requires_those_always_written() {
        let doc = document();
        let state = &doc["components"]["schemas"][super::super::wire::STATE_SCHEMA];
        let props: Vec<&str> = state["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "desired",
            "observed",
            "resources",
            "auth",
            "catalog",
            "busy",
            "ready",
        ] {
            assert!(props.contains(&key), "{key} not in {props:?}");
        }
        let required = state["required"].as_array().expect("required");
        assert_eq!(required.len(), props.len(), "every field is always written");
        assert_eq!(
            doc["components"]["schemas"]["Diagnostic"]["properties"]["text"]["type"],
            "string"
        );
    }
}
