//! The server over a real socket: SSE logs (backlog, live, `skipped` for a slow reader,
//! per-operation filter), operation logs as JSON lines, and graceful shutdown that ends
//! open SSE streams.

use std::time::Duration;

use axum::body::Body;
use futures::StreamExt;
use http_body_util::BodyExt;
use spark_control::logs::Stream;

use super::{TestApp, DESIRED};

/// Reads SSE frames from a body until `pred` holds on the text so far (bounded).
async fn read_until(body: &mut Body, pred: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !pred(&text) {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .unwrap_or_else(|_| panic!("timed out; got:\n{text}"));
        match frame {
            Some(Ok(f)) => {
                if let Some(d) = f.data_ref() {
                    text.push_str(&String::from_utf8_lossy(d));
                }
            }
            other => panic!("stream ended ({other:?}); got:\n{text}"),
        }
    }
    text
}

#[tokio::test]
async fn sse_backlog_then_live_then_skipped() {
    let t = TestApp::start(DESIRED, None).await;
    let logs = t.state.handle.logs.clone();
    logs.push(
        Some(77),
        Some("spark1"),
        Stream::Stdout,
        "backlog line of op 77",
    );
    logs.push(Some(78), None, Stream::Control, "a line of another op");
    let req = axum::http::Request::get("/api/logs?op=77")
        .body(Body::empty())
        .expect("request");
    let resp = tower::ServiceExt::oneshot(t.app.clone(), req)
        .await
        .expect("resp");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let got = read_until(&mut body, |s| s.contains("backlog line of op 77")).await;
    assert!(
        got.contains("event: log") && got.contains("\"host\":\"spark1\""),
        "{got}"
    );
    logs.push(Some(77), None, Stream::Stderr, "live line");
    let got = read_until(&mut body, |s| s.contains("live line")).await;
    assert!(!got.contains("another op"), "filtered by op: {got}");
    // A reader that does not read while 3000 lines are written is told what it missed.
    for i in 0..3000 {
        logs.push(Some(77), None, Stream::Stdout, format!("flood {i}"));
    }
    let got = read_until(&mut body, |s| s.contains("event: skipped")).await;
    let n: u64 = got
        .split("event: skipped\ndata: ")
        .nth(1)
        .and_then(|r| r.lines().next())
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("skipped count in {got}"));
    assert!(n >= 3000 - 1024, "{n}");
    // One operation's lines as JSON lines.
    let r = t.call("GET", "/api/operations/77/logs", &[], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/x-ndjson")
    );
    let lines: Vec<serde_json::Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert!(lines.iter().all(|l| l["op"] == 77));
    assert_eq!(lines[0]["text"], "backlog line of op 77");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_ends_streams_and_returns() {
    let t = TestApp::start(DESIRED, None).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(spark_control::http::serve(
        listener,
        t.state.clone(),
        stop.clone(),
    ));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let r = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.text().await.expect("body"), "ok");
    t.state
        .handle
        .logs
        .push(None, None, Stream::Control, "hello over the socket");
    let resp = client
        .get(format!("http://{addr}/api/logs"))
        .send()
        .await
        .expect("sse");
    let mut stream = resp.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("hello over the socket") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("first event in time")
            .expect("stream open")
            .expect("chunk");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let started = std::time::Instant::now();
    stop.cancel();
    // The stream ends cleanly (no error) ...
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
            Ok(None) => break,
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => panic!("stream ended with an error: {e}"),
            Err(_) => panic!("the SSE stream did not end at shutdown"),
        }
    }
    // ... and the server returns promptly.
    let res = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returned")
        .expect("join");
    assert!(res.is_ok(), "{res:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Nothing listens any more.
    assert!(client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .is_err());
}
