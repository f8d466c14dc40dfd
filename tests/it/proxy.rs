//! Integration tests of the `/v1` passthrough proxy against a real fake upstream.
//!
//! Everything runs on 127.0.0.1 ports chosen by the OS: a programmable fake upstream
//! (`proxy/fake_upstream.rs`) and the real proxy router fed a `watch` of `Routes`.
//! Timing assertions are causal (A happened before B), never "faster than X".
#![allow(clippy::unwrap_used)]

mod by_model;
mod fake_upstream;
mod harness;

use std::time::{Duration, Instant};

use spark_control::proxy::{ProxyConfig, Routes, Upstream};

use fake_upstream::{burst_chunks, fixed_json, FakeUpstream, FIXED_SSE};
use harness::{client, json_of, post, raw_upstream, ready, setup, start_proxy, Proxy};

#[tokio::test]
async fn stream_chunks_arrive_with_the_upstreams_timing() {
    let (fake, proxy) = setup(ProxyConfig::default()).await;
    let url = format!("{}/v1/chat/completions", proxy.url);
    let mut response = post(&url, "two-slow", r#"{"stream":true}"#).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let first = response.chunk().await.unwrap().unwrap();
    let first_at = Instant::now();
    assert_eq!(&first[..], b"data: one\n\n");
    let mut rest = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(rest, b"data: two\n\n");
    let second_sent = fake.seen.second_sent_at.lock().unwrap().unwrap();
    assert!(
        first_at < second_sent,
        "the client got the first chunk only {:?} after the upstream sent the second",
        first_at - second_sent
    );
}

/// Upstream status `code` on a request with `stream` → what the client receives.
async fn check_upstream_error(proxy: &Proxy, code: u16, stream: bool) {
    let url = format!("{}/v1/chat/completions", proxy.url);
    let body = if stream {
        r#"{"stream":true}"#
    } else {
        r#"{"stream":false}"#
    };
    let response = post(&url, &format!("status-{code}"), body).await;
    assert_eq!(response.status().as_u16(), code, "status passes through");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = response.text().await.unwrap();
    let upstream_error = format!(
        r#"{{"object":"error","message":"fake failure {code}","type":"BadRequestError","param":null,"code":{code}}}"#
    );
    if stream {
        assert_eq!(content_type, "text/event-stream");
        let expected = format!(
            "event: error\ndata: {{\"error\":{{\"message\":\"fake failure {code}\",\"type\":\"BadRequestError\",\"param\":null,\"code\":{code}}}}}\n\n"
        );
        assert_eq!(text, expected, "exactly one SSE error event, then the end");
    } else {
        assert_eq!(content_type, "application/json");
        assert_eq!(text, upstream_error, "error body passes through verbatim");
    }
}

#[tokio::test]
async fn upstream_errors_pass_through_or_become_one_sse_error_event() {
    let (_fake, proxy) = setup(ProxyConfig::default()).await;
    for (code, stream) in [
        (400, true),
        (400, false),
        (500, true),
        (404, false),
        (429, true),
    ] {
        check_upstream_error(&proxy, code, stream).await;
    }
}

async fn closed_port_base() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn unreachable_upstream_is_502_vllm_unreachable() {
    let base = closed_port_base().await;
    for (upstream, extra) in [
        (ready(base.clone()), None),
        (
            Upstream::Down {
                base: base.clone(),
                why: "health check refused".into(),
            },
            Some("health check refused"),
        ),
    ] {
        let routes = Routes {
            vllm: upstream,
            ..Routes::default()
        };
        let proxy = start_proxy(routes, ProxyConfig::default()).await;
        let response = post(&format!("{}/v1/chat/completions", proxy.url), "echo", "{}").await;
        assert_eq!(response.status(), 502);
        let body = json_of(response).await;
        assert_eq!(body["detail"], "vllm unreachable");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("vllm unreachable at "), "{message}");
        if let Some(why) = extra {
            assert!(message.contains(why), "{message}");
        }
        assert_eq!(proxy.metrics.count("chat_completions", 5), 1);
    }
}

/// `routes` + config → status, `detail`, words in the message, Retry-After.
async fn check_unavailable(routes: Routes, path: &str, detail: &str, words: &str, retry: bool) {
    let proxy = start_proxy(routes, ProxyConfig::default()).await;
    let response = post(&format!("{}{path}", proxy.url), "echo", "{}").await;
    assert_eq!(response.status(), 503, "{path}");
    assert_eq!(
        response.headers().contains_key("retry-after"),
        retry,
        "{path}"
    );
    let body = json_of(response).await;
    assert_eq!(body["detail"], detail);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(words), "{message}");
}

#[tokio::test]
async fn swap_in_progress_and_missing_services_are_503() {
    let loading = Routes {
        vllm: Upstream::Loading {
            model: "qwen36".into(),
            base: None,
        },
        ..Routes::default()
    };
    check_unavailable(
        loading,
        "/v1/chat/completions",
        "model_loading",
        "'qwen36' is loading",
        true,
    )
    .await;
    check_unavailable(
        Routes::default(),
        "/v1/chat/completions",
        "vllm not configured",
        "no model is active",
        false,
    )
    .await;
    check_unavailable(
        Routes::default(),
        "/v1/audio/transcriptions",
        "stt not configured",
        "no stt service",
        false,
    )
    .await;
    check_unavailable(
        Routes::default(),
        "/api/audio/diarize-chunk",
        "stt not configured",
        "no stt service",
        false,
    )
    .await;
    check_unavailable(
        Routes::default(),
        "/v1/audio/speech",
        "tts not configured",
        "no tts service",
        false,
    )
    .await;
}

#[tokio::test]
async fn during_a_swap_requests_can_wait_for_the_model() {
    let fake = fake_upstream::start().await;
    let config = ProxyConfig {
        wait_for_ready: Some(Duration::from_secs(10)),
        ..ProxyConfig::default()
    };
    let loading = Routes {
        vllm: Upstream::Loading {
            model: "qwen36".into(),
            base: None,
        },
        ..Routes::default()
    };
    let proxy = start_proxy(loading.clone(), config).await;
    let url = format!("{}/v1/chat/completions", proxy.url);
    let request = tokio::spawn(async move { post(&url, "echo", "{\"a\":1}").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !request.is_finished(),
        "the request waits while the model loads"
    );
    proxy.routes.send_replace(Routes {
        vllm: ready(fake.base()),
        ..Routes::default()
    });
    let response = request.await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "{\"a\":1}");

    // A wait that runs out is the same 503 naming the model.
    let config = ProxyConfig {
        wait_for_ready: Some(Duration::from_millis(300)),
        ..ProxyConfig::default()
    };
    let proxy = start_proxy(loading, config).await;
    let response = post(&format!("{}/v1/completions", proxy.url), "echo", "{}").await;
    assert_eq!(response.status(), 503);
    assert!(json_of(response).await["error"]["message"]
        .as_str()
        .unwrap()
        .contains("qwen36"));
}

/// A body of `len` bytes to `path`, sent with Content-Length or chunked → status.
async fn check_size(proxy: &Proxy, path: &str, len: usize, chunked: bool, status: u16) {
    let bytes = vec![b'a'; len];
    let body = if chunked {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            bytes.chunks(256).map(|c| Ok(c.to_vec())).collect();
        reqwest::Body::wrap_stream(futures::stream::iter(chunks))
    } else {
        reqwest::Body::from(bytes)
    };
    let response = client()
        .post(format!("{}{path}", proxy.url))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        status,
        "{path} {len} bytes chunked={chunked}"
    );
    if status == 413 {
        assert_eq!(
            json_of(response).await["error"]["code"],
            "request_too_large"
        );
    }
}

#[tokio::test]
async fn bodies_over_the_caps_are_413() {
    let config = ProxyConfig {
        max_json_body: 1024,
        max_audio_body: 4096,
        ..ProxyConfig::default()
    };
    let (_fake, proxy) = setup(config).await;
    for chunked in [false, true] {
        check_size(&proxy, "/v1/chat/completions", 1024, chunked, 200).await;
        check_size(&proxy, "/v1/chat/completions", 1025, chunked, 413).await;
        check_size(&proxy, "/v1/audio/speech", 2000, chunked, 413).await;
        check_size(&proxy, "/v1/audio/transcriptions", 4000, chunked, 200).await;
        check_size(&proxy, "/api/audio/diarize-chunk", 4097, chunked, 413).await;
    }
}

#[tokio::test]
async fn inference_keys_are_required_when_configured() {
    let config = ProxyConfig {
        inference_keys: vec!["sk-one".into(), "sk-two".into()],
        ..ProxyConfig::default()
    };
    let (_fake, proxy) = setup(config).await;
    for (auth, status) in [
        (None, 401),
        (Some("Bearer sk-wrong"), 401),
        (Some("Bearer sk-one-and-more"), 401),
        (Some("Basic sk-one"), 401),
        (Some("Bearer sk-one"), 200),
        (Some("Bearer sk-two"), 200),
    ] {
        let mut request = client().get(format!("{}/v1/models", proxy.url));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{auth:?}");
        if status == 401 {
            let body = json_of(response).await;
            assert_eq!(body["error"]["type"], "invalid_request_error");
            assert_eq!(body["error"]["code"], "invalid_api_key");
        }
    }
}

#[tokio::test]
async fn client_going_away_cancels_the_upstream_within_a_second() {
    let (fake, proxy) = setup(ProxyConfig::default()).await;
    let url = format!("{}/v1/chat/completions", proxy.url);
    let mut response = post(&url, "endless", r#"{"stream":true}"#).await;
    response.chunk().await.unwrap().unwrap();
    drop(response);
    let gone_at = Instant::now();
    let mut seen = None;
    for _ in 0..200 {
        seen = *fake.seen.client_gone_at.lock().unwrap();
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seen = seen.expect("the fake upstream never saw the client go away");
    assert!(
        seen - gone_at < Duration::from_secs(1),
        "took {:?}",
        seen - gone_at
    );
}

/// Soft limit on open files, from /proc/self/limits.
fn open_files_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap_or(u64::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_streams_complete() {
    const STREAMS: usize = 1000;
    // Each stream holds 4 sockets in this process: client, proxy-accepted,
    // proxy-to-upstream, upstream-accepted.
    let needed = 4 * STREAMS as u64 + 256;
    let limit = open_files_limit();
    assert!(
        limit >= needed,
        "needs `ulimit -n {needed}` or more (soft limit is {limit})"
    );
    let (_fake, proxy) = setup(ProxyConfig::default()).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(STREAMS)
        .build()
        .unwrap();
    let url = format!("{}/v1/chat/completions", proxy.url);
    let tasks: Vec<_> = (0..STREAMS)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let response = client
                    .post(&url)
                    .header("x-fake", "three")
                    .body(r#"{"stream":true}"#)
                    .send()
                    .await?;
                let status = response.status();
                let body = response.bytes().await?;
                Ok::<_, reqwest::Error>((status, body))
            })
        })
        .collect();
    let all = tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(tasks))
        .await
        .expect("1000 streams did not finish within 60 s");
    for result in all {
        let (status, body) = result.unwrap().unwrap();
        assert_eq!(status, 200);
        assert_eq!(&body[..], b"data: 0\n\ndata: 1\n\ndata: 2\n\n");
    }
    assert_eq!(proxy.metrics.count("chat_completions", 2), STREAMS as u64);
}

/// The same request direct and through the proxy → identical status, type and bytes.
async fn check_verbatim(
    fake: &FakeUpstream,
    proxy: &Proxy,
    path: &str,
    body: &'static str,
    expected: &[u8],
) {
    let mut got = Vec::new();
    for base in [fake.base(), proxy.url.clone()] {
        let response = post(&format!("{base}{path}"), "fixed", body).await;
        let status = response.status();
        let content_type = response.headers()["content-type"].clone();
        // Framing follows the upstream: a length if it sent one, chunks if it chunked.
        let length = response.headers().get("content-length").cloned();
        got.push((
            status,
            content_type,
            length,
            response.bytes().await.unwrap(),
        ));
    }
    assert_eq!(got[0], got[1], "direct vs proxy for {path} {body}");
    assert_eq!(&got[1].3[..], expected, "{path} {body}");
}

#[tokio::test]
async fn bodies_pass_verbatim_byte_for_byte() {
    let (fake, proxy) = setup(ProxyConfig::default()).await;
    let stream: String = FIXED_SSE.concat();
    check_verbatim(
        &fake,
        &proxy,
        "/v1/chat/completions",
        r#"{"stream":true}"#,
        stream.as_bytes(),
    )
    .await;
    check_verbatim(
        &fake,
        &proxy,
        "/v1/chat/completions",
        r#"{"stream":false}"#,
        fixed_json().as_bytes(),
    )
    .await;
    check_verbatim(
        &fake,
        &proxy,
        "/v1/completions",
        r#"{"prompt":"x"}"#,
        fixed_json().as_bytes(),
    )
    .await;

    // Request bodies, paths and queries arrive verbatim too (the fake echoes them).
    let odd = "{\"content\":\"h\u{e9}llo\\u0000 \\\"q\\\"\r\n\t\"}  ";
    let response = client()
        .post(format!("{}/v1/embeddings?a=1&b=%20x", proxy.url))
        .header("content-type", "application/json; charset=utf-8")
        .body(odd)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-echo-path"],
        "/v1/embeddings?a=1&b=%20x"
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(response.text().await.unwrap(), odd);

    let mut metrics = String::new();
    proxy.metrics.render_prometheus(&mut metrics);
    for line in [
        "spark_proxy_requests_total{route=\"chat_completions\",deployment=\"default\",model=\"fake/model\",code=\"200\"} 2",
        "spark_proxy_requests_total{route=\"completions\",deployment=\"default\",model=\"fake/model\",code=\"200\"} 1",
        "spark_proxy_requests_total{route=\"embeddings\",deployment=\"default\",model=\"fake/model\",code=\"200\"} 1",
        "spark_proxy_request_duration_seconds_count{route=\"chat_completions\",deployment=\"default\",model=\"fake/model\"} 2",
        // Only the streamed one of the two chat requests has a time to first byte.
        "spark_proxy_time_to_first_byte_seconds_count{route=\"chat_completions\",deployment=\"default\",model=\"fake/model\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in\n{metrics}"
        );
    }
}

/// Frames that reach the proxy together leave together (one write), so these check that
/// nothing is lost, reordered or swallowed on the way: a burst bigger than one write, a
/// large plain body, and an upstream that dies mid-stream after a burst.
#[tokio::test]
async fn bursts_big_bodies_and_mid_stream_deaths_pass_through_intact() {
    let (fake, proxy) = setup(ProxyConfig::default()).await;
    let url = format!("{}/v1/chat/completions", proxy.url);

    let burst: String = burst_chunks().concat();
    assert!(burst.len() > 64 * 1024, "the burst must exceed one batch");
    for base in [fake.base(), proxy.url.clone()] {
        let response = post(&format!("{base}/v1/chat/completions"), "burst", "{}").await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), burst, "burst via {base}");
    }

    // A short stream that reaches the proxy whole keeps its chunked framing.
    for base in [fake.base(), proxy.url.clone()] {
        let response = post(&format!("{base}/v1/chat/completions"), "at-once", "{}").await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers().get("content-length"),
            None,
            "chunked via {base}"
        );
        assert_eq!(
            response.text().await.unwrap(),
            "data: 0\n\ndata: 1\n\ndata: 2\n\n"
        );
    }

    let big: String = (0..200_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let response = client()
        .post(format!("{}/v1/embeddings", proxy.url))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), big);

    // Dies 50 ms after its chunks (they went out in an earlier batch)...
    let response = post(&url, "burst-then-die", r#"{"stream":true}"#).await;
    check_cut_off(response, "a delayed death").await;
    // ...and in the same segment as its chunks, so frames and failure meet in one batch.
    let chunks: String = (0..3).map(|i| format!("9\r\ndata: {i}\n\n\r\n")).collect();
    let cut = raw_upstream(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
             transfer-encoding: chunked\r\n\r\n{chunks}"
        ),
        Duration::ZERO,
    )
    .await;
    proxy.routes.send_replace(Routes {
        vllm: ready(cut),
        ..Routes::default()
    });
    let response = post(&url, "-", r#"{"stream":true}"#).await;
    check_cut_off(response, "a death in the same segment").await;
}

/// Every chunk sent before the upstream died arrives, then an error (not a clean end).
async fn check_cut_off(mut response: reqwest::Response, case: &str) {
    assert_eq!(response.status(), 200, "{case}");
    let mut got = Vec::new();
    let ended = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => break "a clean end",
            Err(_) => break "an error",
        }
    };
    assert_eq!(
        String::from_utf8_lossy(&got),
        "data: 0\n\ndata: 1\n\ndata: 2\n\n",
        "{case}: every chunk sent before the upstream died arrives"
    );
    assert_eq!(
        ended, "an error",
        "{case}: a cut-off upstream must not look like a complete stream"
    );
}

/// vLLM's server (uvicorn) closes idle keep-alive connections after a few seconds: a
/// pooled connection the upstream has closed must never fail a request. Raw TCP upstreams
/// that answer with keep-alive framing (so the proxy pools the connection) and close each
/// connection right after the response, and 100 ms after it.
#[tokio::test]
async fn connections_the_upstream_closed_are_not_reused() {
    for close_after in [Duration::ZERO, Duration::from_millis(100)] {
        let ok = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\nok";
        let base = raw_upstream(ok.to_string(), close_after).await;
        let proxy = start_proxy(
            Routes {
                vllm: ready(base),
                ..Routes::default()
            },
            ProxyConfig::default(),
        )
        .await;
        let url = format!("{}/v1/chat/completions", proxy.url);
        for i in 0..8 {
            let response = post(&url, "-", r#"{"stream":false}"#).await;
            assert_eq!(
                response.status(),
                200,
                "request {i}, close after {close_after:?}"
            );
            assert_eq!(response.text().await.unwrap(), "ok");
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}
