//! Every route, success and failure paths, as a table run in order on one app (later rows
//! see the file earlier rows wrote). `{etag}` in a header is replaced by the current ETag.

use super::{TestApp, DESIRED, TOKEN};
use axum::body::Body;
use std::time::Duration;

const A: (&str, &str) = ("authorization", "Bearer s3cret-admin-token");
const J: (&str, &str) = ("content-type", "application/json");
const CUR: (&str, &str) = ("if-match", "{etag}");
const STALE: (&str, &str) = ("if-match", "\"sha256-0000000000000000\"");

struct Case {
    method: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    status: u16,
    /// Substrings the body must contain.
    contains: &'static [&'static str],
}

const fn c(
    method: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    status: u16,
    contains: &'static [&'static str],
) -> Case {
    Case {
        method,
        path,
        headers,
        body,
        status,
        contains,
    }
}

const CASES: &[Case] = &[
    // probes, docs, UI
    c("GET", "/healthz", &[], "", 200, &["ok"]),
    c("GET", "/readyz", &[], "", 200, &["ready"]),
    c("GET", "/metrics", &[A], "", 200, &["spark_control_polls_total", "spark_control_host_up{host=\"spark1\"} 0", "spark_control_operations_total{result=\"failed\"}", "spark_control_ssh_connections_opened_total{host=\"spark2\"}"]),
    c("GET", "/api/openapi.json", &[], "", 200, &["\"openapi\":\"3.0.3\""]),
    c("GET", "/", &[], "", 200, &["<html", "app.js"]),
    c("GET", "/app.js", &[], "", 200, &["fetch"]),
    c("GET", "/app.css", &[], "", 200, &["body"]),
    c("GET", "/ui/state.js", &[], "", 200, &["EventSource('/api/state/stream')"]),
    c("GET", "/ui/nope.js", &[], "", 404, &["no UI module nope.js", "state.js"]),
    c("GET", "/no/such/route", &[A], "", 404, &["\"type\":\"not_found\"", "/no/such/route"]),
    c("DELETE", "/healthz", &[A], "", 405, &["method_not_allowed"]),
    // reads
    c("GET", "/api/state", &[A], "", 200, &["\"auth\":{\"admin_token\":true}", "\"catalog\":[", "\"resources\":[", "\"kind\":\"launcher\"", "\"sync\":\"Unknown\"", "\"health\":\"Degraded\""]),
    c("GET", "/api/plan", &[A], "", 200, &["\"complete\":false", "\"incomplete_because\":[\"", "\"text\":"]),
    c("GET", "/api/endpoints", &[], "", 200, &["{\"vllm\":{\"ready\":false,\"base_url\":\"http://127.0.0.9:8888/v1\",\"model\":\"RedHatAI/Qwen3.6-35B-A3B-NVFP4\",\"openai_compat\":true},\"magpie\":{\"ready\":false,\"base_url\":\"http://127.0.0.10:9000\",\"kind\":\"tts\"},\"parakeet\":{\"ready\":false,\"base_url\":\"http://127.0.0.10:8000\",\"kind\":\"stt\",\"model\":\"nvidia/parakeet-tdt-0.6b-v3\"},\"models\":{"]),
    c("GET", "/api/events", &[A], "", 200, &["\"events\":["]),
    c("GET", "/api/events?service=spark1&kind=transition&limit=5", &[A], "", 200, &["\"service\":\"spark1\"", "\"ok\":false"]),
    c("GET", "/api/events?since=2020-01-01T00:00:00Z&until=2999-01-01T00:00:00Z", &[A], "", 200, &["\"events\":[{"]),
    c("GET", "/api/events?since=yesterday", &[A], "", 400, &["query string", "\"code\":\"malformed\""]),
    c("GET", "/api/events?kind=gossip", &[A], "", 400, &["gossip"]),
    c("GET", "/api/events?since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z", &[A], "", 400, &["bad_range"]),
    c("GET", "/api/operations/999/logs", &[A], "", 404, &["operation 999"]),
    c("GET", "/api/operations/abc/logs", &[A], "", 400, &["path"]),
    c("GET", "/api/logs?op=x", &[A], "", 400, &["query string"]),
    // auth, Host and origin
    c("GET", "/api/state", &[], "", 401, &["reading the controller's state needs the admin token"]),
    c("GET", "/api/state/stream", &[], "", 401, &["admin_token_required"]),
    c("GET", "/api/desired", &[("authorization", "Bearer nope")], "", 401, &["wrong"]),
    c("GET", "/metrics", &[], "", 401, &["admin_token_required"]),
    c("GET", "/no/such/route", &[], "", 401, &["admin_token_required"]),
    c("GET", "/api/state", &[A, ("host", "evil.example:9999")], "", 403, &["host_not_allowed", "--allowed-host evil.example"]),
    c("GET", "/api/endpoints", &[("host", "evil.example:9999")], "", 403, &["host_not_allowed"]),
    c("GET", "/api/endpoints", &[("host", "192.168.1.20:9999")], "", 200, &["vllm"]),
    c("POST", "/api/reconcile", &[A, ("origin", "http://localhost:3000"), ("host", "localhost:8080")], "", 403, &["cross_origin"]),
    c("POST", "/api/reconcile", &[], "", 401, &["Authorization: Bearer", "admin_token_required"]),
    c("POST", "/api/reconcile", &[("authorization", "Bearer nope")], "", 401, &["wrong"]),
    c("POST", "/api/reconcile", &[A, ("origin", "http://evil.example"), ("host", "localhost:8080")], "", 403, &["cross_origin", "evil.example"]),
    c("POST", "/api/reconcile", &[A, ("origin", "null"), ("host", "localhost:8080")], "", 403, &["cross_origin"]),
    c("POST", "/api/reconcile", &[A, ("origin", "http://localhost:8080"), ("host", "localhost:8080")], "", 202, &["reconcile"]),
    c("PUT", "/api/desired", &[], "version: 1\n", 401, &["admin_token_required"]),
    // commands
    c("POST", "/api/reconcile", &[A], "", 202, &["\"accepted\":\"reconcile\""]),
    c("POST", "/api/retry", &[A], "", 202, &["retry"]),
    c("POST", "/api/updates/check", &[A], "", 202, &["update check"]),
    c("POST", "/api/services/parakeet/restart", &[A], "", 202, &["parakeet"]),
    c("POST", "/api/services/nope/restart", &[A], "", 404, &["`nope`"]),
    c("POST", "/api/operations/999/cancel", &[A], "", 404, &["there is no operation 999", "\"type\":\"not_found\""]),
    c("POST", "/api/operations/abc/cancel", &[A], "", 400, &["path"]),
    c("POST", "/api/operations/1/cancel", &[], "", 401, &["admin_token_required"]),
    c("POST", "/api/operations/1/cancel", &[A, ("origin", "http://evil.example"), ("host", "localhost:8080")], "", 403, &["cross_origin"]),
    // the whole file
    c("GET", "/api/desired", &[A], "", 200, &["# test cluster"]),
    c("PUT", "/api/desired", &[A], "version: 1\n", 428, &["if_match_required"]),
    c("PUT", "/api/desired", &[A, ("if-match", "*")], "version: 1\n", 400, &["bad_if_match"]),
    c("PUT", "/api/desired", &[A, STALE], "version: 1\n", 409, &["stale_etag", "\"current_text\":\"# test cluster", "\"current_etag\":\"\\\"sha256-"]),
    c("PUT", "/api/desired", &[A, CUR], "version: 1\nhosts:\n  spark1: { adress: 1.2.3.4 }\nactive_model: 7\n", 422, &["\"diagnostics\":[", "\"line\":3", "adress", "did you mean"]),
    c("PUT", "/api/desired", &[A, CUR], "version: [\n", 422, &["\"line\":"]),
    // edits
    c("POST", "/api/desired/edit", &[A, J], "{\"op\":\"activate\",\"model\":\"gemma4\"}", 200, &["\"changed\":true", "\"etag\":\"\\\"sha256-"]),
    c("POST", "/api/desired/edit", &[A, J], "{\"op\":\"activate\",\"model\":\"gemma4\"}", 200, &["\"changed\":false"]),
    c("POST", "/api/desired/edit", &[A, J, STALE], "{\"op\":\"activate\",\"model\":\"qwen36\"}", 409, &["current_text", "gemma4"]),
    c("POST", "/api/desired/edit", &[A, J, CUR], "{\"op\":\"activate\",\"model\":\"qwen36\"}", 200, &["\"changed\":true"]),
    c("POST", "/api/desired/edit", &[A, J], "{\"op\":\"activate\",\"model\":\"no-such-model\"}", 422, &["no-such-model", "\"diagnostics\":[{"]),
    c("POST", "/api/desired/edit", &[A, J], "{\"op\":\"explode\"}", 422, &["explode", "wrong_shape"]),
    c("POST", "/api/desired/edit", &[A], "{\"op\":\"activate\",\"model\":null}", 415, &["unsupported_media_type"]),
    c("POST", "/api/desired/edit", &[A, J], "{not json", 400, &["malformed"]),
    c("POST", "/api/models", &[A, J], "{\"name\":\"tiny\",\"repo\":\"Qwen/Qwen3-0.6B\"}", 201, &["\"changed\":true"]),
    c("POST", "/api/models", &[A, J], "{\"name\":\"bad\",\"repo\":\"Qwen/Qwen3-0.6B\",\"mode\":\"sideways\"}", 422, &["sideways"]),
    c("POST", "/api/models", &[A, J], "{\"name\":\"x\"}", 422, &["repo"]),
    c("POST", "/api/models/tiny/activate", &[A], "", 200, &["\"changed\":true"]),
    c("POST", "/api/models/nope/activate", &[A], "", 422, &["nope"]),
    c("PUT", "/api/models/tiny/overrides", &[A, J], "{\"max_context\":4096,\"prefix_caching\":true}", 200, &["\"changed\":true"]),
    c("PUT", "/api/models/tiny/overrides", &[A, J], "{\"gpu_memory\":7}", 422, &["gpu_memory"]),
    c("PUT", "/api/models/tiny/overrides", &[A, J], "{\"turbo\":true}", 422, &["turbo"]),
    c("POST", "/api/models/qwen36/activate", &[A], "", 200, &["\"changed\":true"]),
    c("DELETE", "/api/models/tiny", &[A], "", 200, &["\"changed\":true"]),
    c("DELETE", "/api/models/tiny", &[A], "", 404, &["models.tiny"]),
    c("DELETE", "/api/models/qwen36", &[A], "", 404, &["bundled"]),
    c("PUT", "/api/services/parakeet", &[A, J], "{\"running\":false}", 200, &["\"changed\":true"]),
    c("PUT", "/api/services/parakeet", &[A, J], "{\"host\":\"nohost\"}", 422, &["nohost"]),
    c("PUT", "/api/services/parakeet", &[A, J], "{\"port\":99999}", 422, &["port"]),
    c("PUT", "/api/updates/policy", &[A, J], "{\"policy\":\"manual\"}", 200, &["\"changed\":true"]),
    c("PUT", "/api/updates/policy", &[A, J], "{\"policy\":\"pin\",\"pin\":\"abc1234\"}", 200, &["\"changed\":true"]),
    c("PUT", "/api/updates/policy", &[A, J], "{\"policy\":\"pin\"}", 422, &["pin"]),
    c("PUT", "/api/updates/policy", &[A, J], "{\"policy\":\"sometimes\"}", 422, &["sometimes"]),
    c("PUT", "/api/hosts/spark3", &[A, J], "{\"address\":\"127.0.0.11\",\"port\":1}", 200, &["\"changed\":true"]),
    c("PUT", "/api/hosts/spark3", &[A, J], "{\"address\":\"not an address!\"}", 422, &["hosts.spark3.address"]),
    c("DELETE", "/api/hosts/spark3", &[A], "", 200, &["\"changed\":true"]),
    c("DELETE", "/api/hosts/spark3", &[A], "", 404, &["hosts.spark3"]),
    c("DELETE", "/api/hosts/spark2", &[A], "", 422, &["spark2"]),
    c("PUT", "/api/cluster", &[A, J], "{\"workers\":[]}", 200, &["\"changed\":true"]),
    c("PUT", "/api/cluster", &[A, J], "{\"head\":\"nohost\"}", 422, &["nohost"]),
    // health events (no admin token needed)
    c("POST", "/api/health-event", &[J], "{\"service\":\"vllm\",\"ok\":false,\"source\":\"webui\",\"error\":\"timeout\",\"ms\":1234.5}", 202, &["recorded"]),
    c("POST", "/api/health-event", &[], "{\"service\":\"parakeet\",\"ok\":true}", 202, &["recorded"]),
    c("GET", "/api/events?kind=report", &[A], "", 200, &["\"service\":\"vllm\",\"ok\":false,\"source\":\"webui\",\"error\":\"timeout\",\"ms\":1234.5", "\"source\":\"anonymous\""]),
    c("POST", "/api/health-event", &[J], "{}", 400, &["`service` is required"]),
    c("POST", "/api/health-event", &[J], "{\"service\":\"vllm\"}", 400, &["`ok` is required"]),
    c("POST", "/api/health-event", &[J], "{\"service\":\"vllm\",\"ok\":\"yes\"}", 400, &["`ok` must be true or false, got a string"]),
    c("POST", "/api/health-event", &[J], "{\"service\":5,\"ok\":true}", 400, &["`service` must be"]),
    c("POST", "/api/health-event", &[J], "{\"service\":\"vllm\",\"ok\":true,\"ms\":-1}", 400, &["`ms`"]),
    c("POST", "/api/health-event", &[J], "{\"service\":\"vllm\",\"ok\":true,\"source\":[]}", 400, &["`source`"]),
    c("POST", "/api/health-event", &[J], "[1,2]", 400, &["JSON object"]),
    c("POST", "/api/health-event", &[J], "nope", 400, &["not JSON"]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_in_order() {
    let t = TestApp::start(DESIRED, Some(TOKEN)).await;
    t.wait_ready().await;
    // Let the first transitions (hosts down) reach the event log.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let etag = t.desired().await.1;
        let headers: Vec<(&str, String)> = case
            .headers
            .iter()
            .map(|(k, v)| (*k, v.replace("{etag}", &etag)))
            .collect();
        let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let before = t.file();
        let r = t
            .call(case.method, case.path, &hs, case.body.to_string())
            .await;
        let text = r.text();
        let mut bad = Vec::new();
        if r.status.as_u16() != case.status {
            bad.push(format!("status {} (want {})", r.status, case.status));
        }
        for s in case.contains {
            if !text.contains(s) {
                bad.push(format!("body lacks {s:?}"));
            }
        }
        if r.status.is_client_error() || r.status.is_server_error() {
            // Every error is JSON in the one shape, and changed nothing.
            let ok_shape = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .is_some_and(|v| {
                    v["error"]["message"].is_string()
                        && v["error"]["type"].is_string()
                        && v["error"]["code"].is_string()
                });
            if !ok_shape {
                bad.push("error body is not {error:{message,type,code}}".into());
            }
            if t.file() != before {
                bad.push("a failed request changed the file".into());
            }
        }
        if !bad.is_empty() {
            failures.push(format!(
                "#{i} {} {} → {}\n   {}\n   body: {}",
                case.method,
                case.path,
                r.status,
                bad.join("; "),
                text.chars().take(600).collect::<String>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // What the table wrote is in the file.
    let f = t.file();
    for want in [
        "running: false",
        "pin: abc1234",
        "workers: []",
        "# test cluster",
    ] {
        assert!(f.contains(want), "file lacks {want:?}:\n{f}");
    }
}

#[tokio::test]
async fn without_token_writes_are_open_and_state_says_so() {
    let t = TestApp::start(DESIRED, None).await;
    let r = t.call("POST", "/api/reconcile", &[], Body::empty()).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let s = t.call("GET", "/api/state", &[], Body::empty()).await.json();
    assert_eq!(s["auth"]["admin_token"], false);
    // The same-origin check holds even without a token.
    let r = t
        .call(
            "POST",
            "/api/reconcile",
            &[("origin", "http://evil.example"), ("host", "127.0.0.1:1")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // DNS rebinding: a page on evil.example whose name now points here is same-origin to
    // the browser (matching Host and Origin). No token is set, yet it gets no write and
    // no read.
    let before = t.file();
    let rebound = [
        ("host", "evil.example:9999"),
        ("origin", "http://evil.example:9999"),
        ("content-type", "application/json"),
    ];
    let r = t
        .call(
            "PUT",
            "/api/hosts/evil",
            &rebound,
            "{\"address\":\"127.0.0.66\"}",
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("host_not_allowed"), "{}", r.text());
    assert_eq!(t.file(), before, "a rebound write changed desired.yaml");
    for path in ["/api/state", "/api/desired", "/api/logs", "/", "/v1/models"] {
        let r = t.call("GET", path, &rebound[..2], Body::empty()).await;
        assert_eq!(r.status, 403, "rebound read of {path}: {}", r.text());
    }
    // The same request under an allowed name (and an IP) lands.
    for host in ["localhost:9999", "127.0.0.1:9999"] {
        let origin = format!("http://{host}");
        let r = t
            .call(
                "PUT",
                "/api/hosts/ok",
                &[
                    ("host", host),
                    ("origin", &origin),
                    ("content-type", "application/json"),
                ],
                "{\"address\":\"127.0.0.66\", \"port\": 1}",
            )
            .await;
        assert_eq!(r.status, 200, "{host}: {}", r.text());
    }
}

#[tokio::test]
async fn readyz_says_why_not_ready() {
    let t = TestApp::start("version: 1\nhosts: { spark1: { adress: x } }\n", None).await;
    for _ in 0..100 {
        let r = t.call("GET", "/readyz", &[], Body::empty()).await;
        assert_eq!(r.status, 503);
        if r.text().contains("no valid desired file yet: ") {
            assert!(r.text().contains(":2:"), "{}", r.text());
            assert_eq!(r.text().lines().count(), 1);
            let plan = t.call("GET", "/api/plan", &[], Body::empty()).await.json();
            assert_eq!(plan["complete"], false);
            assert!(plan["incomplete_because"][0]
                .as_str()
                .is_some_and(|s| s.contains("no valid desired file")));
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("readyz never named the invalid file");
}

#[tokio::test]
async fn health_events_are_capped_and_rate_limited() {
    let t = TestApp::start(DESIRED, Some(TOKEN)).await;
    let big = format!(
        "{{\"service\":\"vllm\",\"ok\":true,\"error\":\"{}\"}}",
        "x".repeat(17 * 1024)
    );
    let r = t.call("POST", "/api/health-event", &[J], big).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "body_too_large");
    let body = "{\"service\":\"vllm\",\"ok\":true,\"source\":\"flood\"}";
    let mut codes = Vec::new();
    for _ in 0..25 {
        let r = t.call("POST", "/api/health-event", &[J], body).await;
        codes.push(r.status.as_u16());
        if r.status == 429 {
            let after: u64 = r
                .header("retry-after")
                .expect("Retry-After")
                .parse()
                .expect("secs");
            assert!((1..=2).contains(&after));
        }
    }
    let accepted = codes.iter().filter(|c| **c == 202).count();
    assert!((20..=21).contains(&accepted), "{codes:?}");
    assert!(codes[21..].iter().all(|c| *c == 429), "{codes:?}");
    // Another source is not limited by the first.
    let r = t
        .call(
            "POST",
            "/api/health-event",
            &[J],
            "{\"service\":\"vllm\",\"ok\":true,\"source\":\"calm\"}",
        )
        .await;
    assert_eq!(r.status, 202);
    let ev = t
        .call(
            "GET",
            "/api/events?kind=report&service=vllm",
            &[A],
            Body::empty(),
        )
        .await
        .json();
    assert_eq!(ev["events"].as_array().map(Vec::len), Some(accepted + 1));
}
