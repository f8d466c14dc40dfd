//! Routing by the request's `model`: every name of a catalog model (catalog name, repo,
//! alias) reaches the deployment serving it; a catalog model nothing serves is 404
//! `model_not_loaded` naming where it could run; an unknown name is 404 `model_not_found`;
//! no `model` goes to the first deployment. `/v1/models` is the catalog, answered by the
//! proxy (an empty list when nothing is configured).

use std::sync::Arc;

use serde_json::Value;
use spark_control::proxy::{ModelEntry, ModelTable, ProxyConfig, Routes, Upstream};

use super::fake_upstream;
use super::harness::{client, json_of, ready, start_proxy};

/// Nothing listens here: a request routed to it is a 502 naming this address.
const OTHER: &str = "http://127.0.0.1:9";

fn entry(
    name: &str,
    repo: &str,
    aliases: &[&str],
    deployment: Option<&str>,
    upstream: Upstream,
) -> ModelEntry {
    ModelEntry {
        name: name.into(),
        repo: repo.into(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        status: if deployment.is_some() {
            "serving"
        } else {
            "available"
        }
        .into(),
        deployment: deployment.map(str::to_string),
        could_run: vec!["coder".into(), "vision".into()],
        max_model_len: Some(8192),
        leaving: false,
        upstream,
    }
}

fn routes(first: String) -> Routes {
    let table = ModelTable::new(
        vec![
            entry(
                "gemma4",
                "google/gemma-4-26B-A4B-it",
                &[],
                None,
                Upstream::NotConfigured,
            ),
            entry(
                "qwen36",
                "RedHatAI/Qwen3.6-35B-A3B-NVFP4",
                &["coder-model"],
                Some("coder"),
                ready(first.clone()),
            ),
            entry(
                "qwen3-vl",
                "Qwen/Qwen3-VL-30B-A3B-Instruct-FP8",
                &["eyes"],
                Some("vision"),
                ready(OTHER.into()),
            ),
        ],
        Some("coder".into()),
    );
    Routes {
        vllm: ready(first),
        models: Arc::new(table),
        ..Routes::default()
    }
}

async fn chat(url: &str, model: Option<&str>) -> (u16, Value) {
    chat_with_key(url, model, None).await
}

/// [`chat`], with `Authorization: Bearer <key>` when a key is given.
async fn chat_with_key(url: &str, model: Option<&str>, key: Option<&str>) -> (u16, Value) {
    let body = match model {
        Some(m) => format!(r#"{{"model":"{m}","messages":[]}}"#),
        None => r#"{"messages":[]}"#.to_string(),
    };
    let mut request = client()
        .post(format!("{url}/v1/chat/completions"))
        .header("x-fake", "echo")
        .header("content-type", "application/json");
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.body(body).send().await.expect("send");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn requests_go_to_the_deployment_serving_their_model() {
    let fake = fake_upstream::start().await;
    let proxy = start_proxy(routes(fake.base()), ProxyConfig::default()).await;
    // The first deployment's model, by each of its names, and no model at all: the echo.
    for model in [
        Some("qwen36"),
        Some("RedHatAI/Qwen3.6-35B-A3B-NVFP4"),
        Some("coder-model"),
        None,
    ] {
        let (status, body) = chat(&proxy.url, model).await;
        assert_eq!(status, 200, "{model:?}: {body}");
        assert_eq!(body["model"].as_str(), model, "echoed body");
    }
    // The other deployment's model, by each name: its address, and only its address.
    for model in ["qwen3-vl", "Qwen/Qwen3-VL-30B-A3B-Instruct-FP8", "eyes"] {
        let (status, body) = chat(&proxy.url, Some(model)).await;
        assert_eq!(status, 502, "{model}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!("vllm unreachable at {OTHER}")),
            "{model}: {message}"
        );
    }
    // In the catalog, served nowhere.
    let (status, body) = chat(&proxy.url, Some("gemma4")).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "model_not_loaded");
    assert_eq!(body["error"]["param"], "model");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`gemma4`") && message.contains("`coder`, `vision`"),
        "{message}"
    );
    // Unknown.
    let (status, body) = chat(&proxy.url, Some("gpt-4o")).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "model_not_found");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("`gpt-4o`"));
}

#[tokio::test]
async fn v1_models_is_the_catalog_and_an_empty_list_when_nothing_is_configured() {
    let fake = fake_upstream::start().await;
    let proxy = start_proxy(routes(fake.base()), ProxyConfig::default()).await;
    let v = json_of(
        client()
            .get(format!("{}/v1/models", proxy.url))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(v["object"], "list");
    let rows: Vec<(String, String, Value)> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap_or_default().into(),
                m["status"].as_str().unwrap_or_default().into(),
                m["deployment"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("gemma4".into(), "available".into(), Value::Null),
            ("qwen36".into(), "serving".into(), "coder".into()),
            ("qwen3-vl".into(), "serving".into(), "vision".into()),
        ]
    );
    let one = &v["data"][1];
    assert_eq!(one["object"], "model");
    assert_eq!(one["repo"], "RedHatAI/Qwen3.6-35B-A3B-NVFP4");
    assert_eq!(one["aliases"], serde_json::json!(["coder-model"]));
    assert_eq!(one["max_model_len"], 8192);
    // One model by any of its names (a repo's `/` percent-encoded).
    let r = client()
        .get(format!(
            "{}/v1/models/RedHatAI%2FQwen3.6-35B-A3B-NVFP4",
            proxy.url
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await["id"], "qwen36");
    let r = client()
        .get(format!("{}/v1/models/nope", proxy.url))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);

    let empty = start_proxy(Routes::default(), ProxyConfig::default()).await;
    let r = client()
        .get(format!("{}/v1/models", empty.url))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(
        json_of(r).await,
        serde_json::json!({"object": "list", "data": []})
    );
}

#[tokio::test]
async fn metrics_name_the_deployment_that_took_each_request() {
    let coder = fake_upstream::start().await;
    let vision = fake_upstream::start().await;
    let mut r = routes(coder.base());
    let mut entries = r.models.entries.clone();
    for e in &mut entries {
        if e.name == "qwen3-vl" {
            e.upstream = ready(vision.base());
        }
    }
    r.models = Arc::new(ModelTable::new(entries, Some("coder".into())));
    let proxy = start_proxy(r, ProxyConfig::default()).await;
    for (model, code) in [
        (Some("qwen36"), 200),
        (Some("eyes"), 200),
        (Some("qwen3-vl"), 200),
        (None, 200),
        (Some("gemma4"), 404),
        (Some("gpt-4o"), 404),
    ] {
        let (status, body) = chat(&proxy.url, model).await;
        assert_eq!(status, code, "{model:?}: {body}");
    }
    let mut metrics = String::new();
    proxy.metrics.render_prometheus(&mut metrics);
    for line in [
        "spark_proxy_requests_total{route=\"chat_completions\",deployment=\"coder\",model=\"qwen36\",code=\"200\"} 1",
        "spark_proxy_requests_total{route=\"chat_completions\",deployment=\"vision\",model=\"eyes\",code=\"200\"} 1",
        "spark_proxy_requests_total{route=\"chat_completions\",deployment=\"vision\",model=\"qwen3-vl\",code=\"200\"} 1",
        // No `model`: the first deployment, labelled with its upstream's model.
        "spark_proxy_requests_total{route=\"chat_completions\",deployment=\"coder\",model=\"fake/model\",code=\"200\"} 1",
        "spark_proxy_requests_total{route=\"chat_completions\",deployment=\"none\",model=\"gemma4\",code=\"404\"} 1",
        "spark_proxy_requests_total{route=\"chat_completions\",deployment=\"none\",model=\"gpt-4o\",code=\"404\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in\n{metrics}"
        );
    }
    assert!(
        !metrics.contains("deployment=\"default\""),
        "no request is left under the placeholder: {metrics}"
    );
}

/// A multipart upload: the form fields in this order, then an audio file part (or the
/// file first when `file_first`).
fn upload_body(model: &str, file_first: bool) -> (String, Vec<u8>) {
    let boundary = "spark-boundary-1";
    let field = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n{model}\r\n"
    );
    let lang =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"language\"\r\n\r\nen\r\n");
    let mut file = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
    )
    .into_bytes();
    // Audio bytes, bigger than the proxy peeks at, with a fake delimiter-like run inside.
    file.extend((0..200_000u32).map(|i| (i % 251) as u8));
    file.extend_from_slice(b"\r\n");
    let mut body = Vec::new();
    if file_first {
        body.extend_from_slice(&file);
        body.extend_from_slice(field.as_bytes());
    } else {
        body.extend_from_slice(lang.as_bytes());
        body.extend_from_slice(field.as_bytes());
        body.extend_from_slice(&file);
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(url: &str, content_type: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let response = client()
        .post(format!("{url}/v1/audio/transcriptions"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap_or_default().to_vec())
}

#[tokio::test]
async fn audio_uploads_go_to_the_deployment_serving_their_form_model() {
    // A speech-to-text model in the catalog, served by the `vision` deployment's vLLM;
    // the speech service itself is unreachable, so any answer says where a request went.
    let vllm = fake_upstream::start().await;
    let mut r = routes(OTHER.into());
    let mut entries = r.models.entries.clone();
    entries.push(entry(
        "whisper",
        "openai/whisper-large-v3",
        &["stt-model"],
        Some("vision"),
        ready(vllm.base()),
    ));
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    r.models = Arc::new(ModelTable::new(entries, Some("coder".into())));
    r.stt = ready("http://127.0.0.1:7".into());
    let proxy = start_proxy(r.clone(), ProxyConfig::default()).await;

    // By catalog name and alias: vLLM gets the upload byte for byte.
    for model in ["whisper", "stt-model"] {
        let (content_type, body) = upload_body(model, false);
        let (status, echoed) = upload(&proxy.url, &content_type, body.clone()).await;
        assert_eq!(status, 200, "{model}: {}", String::from_utf8_lossy(&echoed));
        assert!(echoed == body, "{model}: the body arrived changed");
    }
    // A name the catalog does not know is the speech service's own: as before.
    let (content_type, body) = upload_body("nvidia/parakeet-tdt-0.6b-v3", false);
    let (status, answer) = upload(&proxy.url, &content_type, body).await;
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status, 502, "{answer}");
    assert!(
        answer.contains("stt unreachable at http://127.0.0.1:7"),
        "{answer}"
    );
    // A catalog model nothing serves.
    let (content_type, body) = upload_body("gemma4", false);
    let (status, answer) = upload(&proxy.url, &content_type, body).await;
    assert_eq!(status, 404);
    let v: Value = serde_json::from_slice(&answer).expect("json");
    assert_eq!(v["error"]["code"], "model_not_loaded");
    // The field after the audio (as the `openai` SDK may send it) routes the same way,
    // and vLLM still gets the upload byte for byte.
    let (content_type, body) = upload_body("whisper", true);
    let (status, echoed) = upload(&proxy.url, &content_type, body.clone()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&echoed));
    assert!(echoed == body, "the late-field body arrived changed");

    // Reading on for a late field stops at the audio cap: a chunked upload (no
    // Content-Length to refuse it early) over the cap whose field follows the file is 413.
    let small = start_proxy(
        r,
        ProxyConfig {
            max_audio_body: 100_000,
            ..ProxyConfig::default()
        },
    )
    .await;
    let (content_type, body) = upload_body("whisper", true);
    assert!(body.len() > 100_000);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(4096).map(|c| Ok(c.to_vec())).collect();
    let response = client()
        .post(format!("{}/v1/audio/transcriptions", small.url))
        .header("content-type", &content_type)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 413);
    let v: Value = response.json().await.expect("json");
    assert_eq!(v["error"]["code"], "request_too_large", "{v}");

    let mut metrics = String::new();
    proxy.metrics.render_prometheus(&mut metrics);
    for line in [
        "spark_proxy_requests_total{route=\"audio_transcriptions\",deployment=\"vision\",model=\"whisper\",code=\"200\"} 2",
        "spark_proxy_requests_total{route=\"audio_transcriptions\",deployment=\"vision\",model=\"stt-model\",code=\"200\"} 1",
        "spark_proxy_requests_total{route=\"audio_transcriptions\",deployment=\"default\",model=\"nvidia/parakeet-tdt-0.6b-v3\",code=\"502\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in\n{metrics}"
        );
    }
}

/// A key limited to some models (the keys file's `KEY model,model` lines): 403
/// `model_not_allowed` for any other, checked before anything is routed or swapped.
#[tokio::test]
async fn a_key_limited_to_some_models_may_use_only_those() {
    let fake = fake_upstream::start().await;
    let mut r = routes(fake.base());
    // With `on_request: swap` on coder, gemma4 would be swapped in (and fail: this proxy
    // has no writer): the key check comes first.
    let mut policy = spark_control::proxy::Policy::default();
    policy.swap_on_request.insert("coder".into());
    r.policy = Arc::new(policy);
    let config =
        spark_control::app::proxy_config(None, vec!["k-all".into(), "k-coder  qwen36, ".into()]);
    let proxy = start_proxy(r, config).await;
    let ask = |key: &'static str, model: Option<&'static str>| {
        let url = proxy.url.clone();
        async move { chat_with_key(&url, model, Some(key)).await }
    };
    for model in [Some("qwen36"), Some("coder-model"), None] {
        let (status, body) = ask("k-coder", model).await;
        assert_eq!(status, 200, "{model:?}: {body}");
    }
    for model in ["qwen3-vl", "eyes", "gemma4"] {
        let (status, body) = ask("k-coder", Some(model)).await;
        assert_eq!(status, 403, "{model}: {body}");
        assert_eq!(body["error"]["code"], "model_not_allowed", "{body}");
        assert_eq!(body["error"]["type"], "permission_error", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.ends_with("it may use: qwen36"), "{message}");
    }
    // The unlimited key reaches the other deployment (nothing listens there: 502).
    let (status, body) = ask("k-all", Some("eyes")).await;
    assert_eq!(status, 502, "{body}");
    let (status, _) = ask("k-nope", Some("qwen36")).await;
    assert_eq!(status, 401);
}
