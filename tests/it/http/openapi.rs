//! The OpenAPI document is valid JSON, lists exactly the routes below, and the router
//! answers each of them (not the 404/405 fallbacks). Also the server the schemathesis
//! fuzz run (see the top of `http.rs`) points at. And a real `/api/state` body against
//! the schema the document gives it.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{TestApp, DESIRED, TOKEN};
use serde_json::{json, Value};

/// Every route of `app()`, as (method, OpenAPI path).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/"),
    ("get", "/app.js"),
    ("get", "/app.css"),
    ("get", "/ui/{name}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/openapi.json"),
    ("get", "/schema/desired-state.json"),
    ("get", "/api/state"),
    ("get", "/api/state/stream"),
    ("get", "/api/setup"),
    ("get", "/api/plan"),
    ("get", "/api/endpoints"),
    ("get", "/api/events"),
    ("post", "/api/health-event"),
    ("get", "/api/logs"),
    ("get", "/api/operations/{id}/logs"),
    ("get", "/api/desired"),
    ("put", "/api/desired"),
    ("post", "/api/desired/edit"),
    ("post", "/api/models"),
    ("delete", "/api/models/{name}"),
    ("post", "/api/models/{name}/activate"),
    ("put", "/api/models/{name}/overrides"),
    ("put", "/api/services/{name}"),
    ("post", "/api/services/{name}/restart"),
    ("put", "/api/updates/policy"),
    ("post", "/api/updates/check"),
    ("put", "/api/hosts/{name}"),
    ("delete", "/api/hosts/{name}"),
    ("put", "/api/cluster"),
    ("post", "/api/desired/preview"),
    ("post", "/api/retry"),
    ("post", "/api/reconcile"),
    ("post", "/api/operations/{id}/cancel"),
    ("get", "/api/downloads"),
    ("post", "/api/downloads"),
    ("delete", "/api/downloads/{id}"),
    ("get", "/api/updates"),
    ("post", "/api/updates/apply"),
    ("get", "/api/telemetry"),
    ("get", "/api/history"),
    ("post", "/api/history/commit"),
    ("get", "/api/history/{id}/plan"),
    ("post", "/api/history/{id}/rollback"),
    ("post", "/api/git/sync"),
    ("post", "/api/git/resolve"),
    ("post", "/api/git/webhook"),
    // The proxy's router, merged into the app.
    ("get", "/v1/{path}"),
    ("post", "/v1/{path}"),
    ("post", "/api/audio/diarize-chunk"),
];

#[tokio::test]
async fn openapi_lists_every_route_and_the_router_has_them() {
    let t = TestApp::start(DESIRED, None).await;
    let r = t.call("GET", "/api/openapi.json", &[], "").await;
    assert_eq!(r.status, 200);
    let doc: Value = serde_json::from_slice(&r.body).expect("valid JSON");
    assert_eq!(doc["openapi"], "3.0.3");
    let mut listed = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("operations") {
            assert!(op["responses"].is_object(), "{method} {path} has responses");
            listed.insert((method.clone(), path.clone()));
        }
    }
    let want: BTreeSet<_> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(listed, want, "OpenAPI paths vs the route list");
    // Every `$ref` resolves.
    let text = r.text();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap_or_default();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
    // The router answers every listed route (not its 404/405 fallbacks).
    for (method, path) in ROUTES {
        if *path == "/api/logs" || *path == "/api/state/stream" {
            continue; // endless streams; covered in `serve.rs`
        }
        let uri = path
            .replace("{id}", "1")
            .replace("{name}", "zz")
            .replace("{path}", "models");
        let r = t.call(&method.to_uppercase(), &uri, &[], "").await;
        let code = r.json_code();
        assert!(
            code.as_deref() != Some("method_not_allowed")
                && !(r.status == 404 && r.text().contains("no route")),
            "{method} {path}: {} {}",
            r.status,
            r.text()
        );
    }
}

impl super::Resp {
    fn json_code(&self) -> Option<String> {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(String::from))
    }
}

/// An OpenAPI 3.0 schema as JSON Schema 2020-12: `nullable: true` becomes
/// `anyOf: [schema, {type: null}]` (the only 3.0 keyword the generated schemas use that
/// JSON Schema reads otherwise).
pub(super) fn as_json_schema(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut m: serde_json::Map<String, Value> =
                m.into_iter().map(|(k, v)| (k, as_json_schema(v))).collect();
            if m.get("nullable") == Some(&Value::Bool(true)) {
                m.remove("nullable");
                json!({ "anyOf": [Value::Object(m), { "type": "null" }] })
            } else {
                Value::Object(m)
            }
        }
        Value::Array(a) => Value::Array(a.into_iter().map(as_json_schema).collect()),
        other => other,
    }
}

#[tokio::test]
async fn state_body_is_described_by_the_documented_schema() {
    let t = TestApp::start(DESIRED, Some(TOKEN)).await;
    t.wait_ready().await;
    // A broken edit: the last good state stays in force and the body carries diagnostics.
    std::fs::write(&t.path, format!("{DESIRED}cluster: [\n")).expect("write desired");
    for _ in 0..200 {
        if !t
            .state
            .handle
            .status
            .borrow()
            .desired_diagnostics
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let auth = format!("Bearer {TOKEN}");
    let doc = t.call("GET", "/api/openapi.json", &[], "").await.json();
    let r = t
        .call("GET", "/api/state", &[("authorization", &auth)], "")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let body = r.json();
    assert!(
        body["desired_diagnostics"][0]["text"].is_string() && body["desired"].is_object(),
        "the broken edit shows with the last good state: {body}"
    );

    let ok = &doc["paths"]["/api/state"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    let name = ok["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .expect("/api/state's schema is a named one");
    let schema = &doc["components"]["schemas"][name];
    let props = schema["properties"].as_object().expect("properties");
    let keys = body.as_object().expect("an object").keys();
    let undocumented: Vec<&String> = keys.filter(|k| !props.contains_key(*k)).collect();
    assert!(
        undocumented.is_empty(),
        "not in the schema: {undocumented:?}"
    );
    let unsent: Vec<&String> = props.keys().filter(|k| body.get(k).is_none()).collect();
    assert!(
        unsent.is_empty(),
        "in the schema, not in the body: {unsent:?}"
    );

    let root = json!({
        "$ref": format!("#/components/schemas/{name}"),
        "components": { "schemas": as_json_schema(doc["components"]["schemas"].clone()) },
    });
    let validator = jsonschema::draft202012::new(&root).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // The schema is not vacuous: a mistyped field fails it.
    let mut wrong = body.clone();
    wrong["observed"]["generation"] = json!("seven");
    assert!(!validator.is_valid(&wrong), "a string generation passed");
}
