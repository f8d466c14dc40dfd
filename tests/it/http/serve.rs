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

/// The `state` events of an SSE text, parsed, in order.
fn state_events(text: &str) -> Vec<serde_json::Value> {
    text.split("\n\n")
        .filter(|frame| frame.lines().any(|l| l == "event: state"))
        .map(|frame| {
            let data: String = frame
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            serde_json::from_str(&data).unwrap_or_else(|e| panic!("not JSON ({e}): {data}"))
        })
        .collect()
}

/// The state stream sends the state `/api/state` answers at once, then the state after
/// each change; every event carries the epoch, the same for every stream of one server and
/// another for another server (a restart). The data is what the documented `StateEvent`
/// schema says.
#[tokio::test]
async fn state_stream_sends_the_state_then_each_change_with_the_servers_epoch() {
    let t = TestApp::start(DESIRED, None).await;
    t.wait_ready().await;
    let open = |app: axum::Router| async move {
        let req = axum::http::Request::get("/api/state/stream")
            .body(Body::empty())
            .expect("request");
        let resp = tower::ServiceExt::oneshot(app, req).await.expect("resp");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        resp.into_body()
    };
    let mut body = open(t.app.clone()).await;
    let got = read_until(&mut body, |s| !state_events(s).is_empty()).await;
    let first = state_events(&got).remove(0);
    let epoch = first["epoch"].as_str().expect("an epoch").to_string();
    assert!(epoch.len() >= 16, "{epoch}");
    let polled = t.call("GET", "/api/state", &[], "").await.json();
    let keys = |v: &serde_json::Value| -> Vec<String> {
        v.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(keys(&first["state"]), keys(&polled), "the same shape");
    assert_eq!(first["state"]["desired"]["active_model"], "qwen36");
    assert_eq!(first["state"]["desired"], polled["desired"]);

    // A change reaches the open stream, with the same epoch.
    let r = t.call("POST", "/api/models/gemma4/activate", &[], "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = read_until(&mut body, |s| {
        state_events(s)
            .iter()
            .any(|e| e["state"]["desired"]["active_model"] == "gemma4")
    })
    .await;
    assert!(state_events(&got).iter().all(|e| e["epoch"] == *epoch));

    // The documented schema describes the events.
    let doc = t.call("GET", "/api/openapi.json", &[], "").await.json();
    let media = &doc["paths"]["/api/state/stream"]["get"]["responses"]["200"]["content"]
        ["text/event-stream"];
    assert_eq!(
        media["x-event-data"]["$ref"],
        "#/components/schemas/StateEvent"
    );
    let root = serde_json::json!({
        "$ref": "#/components/schemas/StateEvent",
        "components": { "schemas": super::openapi::as_json_schema(doc["components"]["schemas"].clone()) },
    });
    let validator = jsonschema::draft202012::new(&root).expect("the schema compiles");
    let last = state_events(&got).pop().expect("an event");
    let errors: Vec<String> = validator
        .iter_errors(&last)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let mut wrong = last.clone();
    wrong["epoch"] = serde_json::json!(7);
    assert!(!validator.is_valid(&wrong), "a numeric epoch passed");

    // A second stream of this server: the same epoch. Another server: another one.
    let mut again = open(t.app.clone()).await;
    let got = read_until(&mut again, |s| !state_events(s).is_empty()).await;
    assert_eq!(state_events(&got)[0]["epoch"], *epoch);
    let other = TestApp::start(DESIRED, None).await;
    let mut theirs = open(other.app.clone()).await;
    let got = read_until(&mut theirs, |s| !state_events(s).is_empty()).await;
    assert_ne!(
        state_events(&got)[0]["epoch"],
        *epoch,
        "a new server, a new epoch"
    );
}
