//! `/api/endpoints` as data (desired placement × observed readiness → the DESIGN §5 shape),
//! and the hook points the lead uses: an extra router (the `/v1` proxy) and a metrics hook.

use std::collections::BTreeMap;

use axum::routing::any;
use serde_json::{json, Value};
use spark_control::http::endpoints_of;
use spark_control::model::observed::VllmObserved;
use spark_control::model::{Desired, Fact, Observed};

use super::{TestApp, DESIRED, TOKEN};

fn desired(yaml: &str) -> Desired {
    spark_control::model::validate_text("t.yaml", yaml)
        .desired
        .unwrap_or_else(|| panic!("invalid test desired file:\n{yaml}"))
}

fn observed(vllm: Option<&[&str]>, services: &[(&str, Option<bool>)]) -> Observed {
    Observed {
        generation: 1,
        vllm: match vllm {
            Some(m) => Fact::known_now(VllmObserved {
                models: m.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }),
            None => Fact::unknown("head unreachable"),
        },
        services: services
            .iter()
            .map(|(n, f)| {
                let fact = match f {
                    Some(b) => Fact::known_now(*b),
                    None => Fact::unknown("host unreachable"),
                };
                (n.to_string(), fact)
            })
            .collect::<BTreeMap<_, _>>(),
        ..Observed::default()
    }
}

/// The seed's keys, byte for byte (`models` is checked on its own).
fn check(yaml: &str, o: Observed, expected: Value) {
    let mut got = endpoints_of(&desired(yaml), &o);
    let models = got.as_object_mut().and_then(|m| m.shift_remove("models"));
    assert!(models.is_some_and(|m| m.is_object()), "a `models` map");
    assert_eq!(
        serde_json::to_string(&got).expect("json"),
        serde_json::to_string(&expected).expect("json"),
        "\n{yaml}"
    );
}

const NO_CLUSTER: &str = "version: 1\nhosts: {}\n";
const IPV6: &str = "version: 1\nhosts: { h: { address: 'fd00::5' } }\ncluster: { head: h, port: 9999 }\nactive_model: gemma4\n";

#[test]
fn endpoints_table() {
    let qwen = "RedHatAI/Qwen3.6-35B-A3B-NVFP4";
    // The shape LAN apps parse, key order included.
    check(
        DESIRED,
        observed(
            Some(&[qwen]),
            &[("parakeet", Some(true)), ("magpie", Some(false))],
        ),
        json!({
            "vllm": {"ready": true, "base_url": "http://127.0.0.9:8888/v1", "model": qwen, "openai_compat": true},
            "magpie": {"ready": false, "base_url": "http://127.0.0.10:9000", "kind": "tts"},
            "parakeet": {"ready": true, "base_url": "http://127.0.0.10:8000", "kind": "stt", "model": "nvidia/parakeet-tdt-0.6b-v3"},
        }),
    );
    // vLLM serving another model is not ready for ours; unknown facts are not ready.
    check(
        DESIRED,
        observed(Some(&["org/other"]), &[("parakeet", None)]),
        json!({
            "vllm": {"ready": false, "base_url": "http://127.0.0.9:8888/v1", "model": qwen, "openai_compat": true},
            "magpie": {"ready": false, "base_url": "http://127.0.0.10:9000", "kind": "tts"},
            "parakeet": {"ready": false, "base_url": "http://127.0.0.10:8000", "kind": "stt", "model": "nvidia/parakeet-tdt-0.6b-v3"},
        }),
    );
    // No active model: no `model`, never ready.
    check(
        &DESIRED.replace("active_model: qwen36", "active_model: null"),
        observed(Some(&[qwen]), &[]),
        json!({
            "vllm": {"ready": false, "base_url": "http://127.0.0.9:8888/v1", "openai_compat": true},
            "magpie": {"ready": false, "base_url": "http://127.0.0.10:9000", "kind": "tts"},
            "parakeet": {"ready": false, "base_url": "http://127.0.0.10:8000", "kind": "stt", "model": "nvidia/parakeet-tdt-0.6b-v3"},
        }),
    );
    // Nothing configured: vllm without base_url.
    check(
        NO_CLUSTER,
        observed(None, &[]),
        json!({"vllm": {"ready": false, "openai_compat": true}}),
    );
    // IPv6 addresses are bracketed; the cluster's port is used.
    check(
        IPV6,
        observed(Some(&["google/gemma-4-26B-A4B-it"]), &[]),
        json!({"vllm": {"ready": true, "base_url": "http://[fd00::5]:9999/v1", "model": "google/gemma-4-26B-A4B-it", "openai_compat": true}}),
    );
}

/// `models`: every catalog model by name; a model is ready when its deployment's vLLM
/// lists it; a model active on a second deployment has that deployment's URL.
#[test]
fn endpoints_models_map_names_the_deployment_of_each_model() {
    let yaml = "version: 1\nhosts:\n  s1: { address: 127.0.0.2 }\n  s2: { address: 127.0.0.3 }\ndeployments:\n  - { name: coder, head: s1, active_model: qwen36 }\n  - { name: vision, head: s2, port: 8889, active_model: qwen3-vl }\n";
    let got = endpoints_of(
        &desired(yaml),
        &observed(Some(&["qwen36", "RedHatAI/Qwen3.6-35B-A3B-NVFP4"]), &[]),
    );
    assert_eq!(
        got["vllm"],
        json!({"ready": true, "base_url": "http://127.0.0.2:8888/v1", "model": "RedHatAI/Qwen3.6-35B-A3B-NVFP4", "openai_compat": true})
    );
    assert_eq!(
        got["models"]["qwen36"],
        json!({"ready": true, "base_url": "http://127.0.0.2:8888/v1", "deployment": "coder", "kind": "llm"})
    );
    assert_eq!(
        got["models"]["qwen3-vl"],
        json!({"ready": false, "base_url": "http://127.0.0.3:8889/v1", "deployment": "vision", "kind": "llm"})
    );
    assert_eq!(
        got["models"]["gemma4"],
        json!({"ready": false, "base_url": null, "deployment": null, "kind": "llm"})
    );
    // Once the second deployment's vLLM is seen serving its model, it is ready too.
    let mut o = observed(Some(&["qwen36", "RedHatAI/Qwen3.6-35B-A3B-NVFP4"]), &[]);
    o.deployments.insert("coder".into(), o.vllm.clone());
    o.deployments.insert(
        "vision".into(),
        spark_control::model::observed::Fact::known_now(
            spark_control::model::observed::VllmObserved {
                models: vec![
                    "qwen3-vl".into(),
                    "Qwen/Qwen3-VL-30B-A3B-Instruct-FP8".into(),
                ],
                ..Default::default()
            },
        ),
    );
    let got = endpoints_of(&desired(yaml), &o);
    assert_eq!(got["models"]["qwen3-vl"]["ready"], true);
    assert_eq!(got["models"]["qwen36"]["ready"], true);
    assert_eq!(
        got["models"].as_object().map(|m| m.len()),
        Some(5),
        "the bundled catalog"
    );
}

#[tokio::test]
async fn extra_router_and_metrics_hook_are_plugged_in() {
    let t = TestApp::start(DESIRED, Some(TOKEN)).await;
    let proxy = axum::Router::new()
        .route("/v1/{*rest}", any(|| async { "from the proxy" }))
        .route("/api/audio/diarize-chunk", any(|| async { "diarized" }));
    let state = t
        .state
        .clone()
        .with_extra_router(proxy)
        .with_metrics_hook(|out: &mut String| out.push_str("proxy_requests_total 42\n"));
    let app = spark_control::http::app(state);
    let call = |method: &str, uri: &str| {
        let req = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .body(axum::body::Body::empty())
            .expect("request");
        tower::ServiceExt::oneshot(app.clone(), req)
    };
    // The proxy's routes answer, without the admin token (inference keys are the proxy's).
    for (m, uri, want) in [
        ("POST", "/v1/chat/completions", "from the proxy"),
        ("GET", "/v1/models", "from the proxy"),
        ("POST", "/api/audio/diarize-chunk", "diarized"),
    ] {
        let r = call(m, uri).await.expect("resp");
        assert_eq!(r.status(), 200, "{m} {uri}");
        let body = axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .expect("body");
        assert_eq!(body, want);
    }
    // Our routes keep their auth and fallbacks.
    assert_eq!(
        call("POST", "/api/reconcile",)
            .await
            .expect("resp")
            .status(),
        401
    );
    assert_eq!(call("GET", "/nothing").await.expect("resp").status(), 401);
    let r = call("GET", "/metrics").await.expect("resp");
    assert_eq!(r.status(), 401, "/metrics needs the token when one is set");
    let req = axum::http::Request::get("/metrics")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(axum::body::Body::empty())
        .expect("request");
    let r = tower::ServiceExt::oneshot(app.clone(), req)
        .await
        .expect("resp");
    let body = axum::body::to_bytes(r.into_body(), 1 << 20)
        .await
        .expect("body");
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("spark_control_polls_total"), "{text}");
    assert!(text.ends_with("proxy_requests_total 42\n"), "{text}");
}
