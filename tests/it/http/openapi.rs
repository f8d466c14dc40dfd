//! The OpenAPI document is valid JSON, lists exactly the routes below, and the router
//! answers each of them (not the 404/405 fallbacks). Also the server the schemathesis
//! fuzz run (see the top of `http.rs`) points at.

use std::collections::BTreeSet;

use super::{TestApp, DESIRED};
use serde_json::Value;

/// Every route of `app()`, as (method, OpenAPI path).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/"),
    ("get", "/app.js"),
    ("get", "/app.css"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/openapi.json"),
    ("get", "/api/state"),
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
        if *path == "/api/logs" {
            continue; // an endless stream; covered in `serve.rs`
        }
        let uri = path.replace("{id}", "1").replace("{name}", "zz");
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
