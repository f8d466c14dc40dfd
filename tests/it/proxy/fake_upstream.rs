//! A small programmable fake upstream (vLLM / STT / TTS stand-in) for the proxy tests.
//!
//! Behaviour is chosen per request by the `x-fake` header, which the proxy forwards
//! verbatim: `echo` (default), `two-slow`, `status-<code>`, `endless`, `three`, `fixed`,
//! `sleep-<ms>`, `burst` (many chunks back to back), `at-once` (a short stream in one
//! write), `burst-then-die` (three chunks, then
//! the connection is cut mid-body). It records what the tests assert on (when the second slow chunk was sent,
//! when a stream's client went away). Serves on 127.0.0.1:0 only.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// What the fake saw, for assertions.
#[derive(Default)]
pub struct Seen {
    /// When the `two-slow` stream handed its second chunk to the server.
    pub second_sent_at: Mutex<Option<Instant>>,
    /// When an `endless` stream found its client gone.
    pub client_gone_at: Mutex<Option<Instant>>,
}

pub struct FakeUpstream {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
}

impl FakeUpstream {
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub async fn start() -> FakeUpstream {
    let seen = Arc::new(Seen::default());
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(Arc::clone(&seen));
    let addr = super::harness::serve(app).await;
    FakeUpstream { addr, seen }
}

/// The deterministic SSE stream of the `fixed` mode (odd bytes on purpose).
pub const FIXED_SSE: [&str; 4] = [
    "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"h\u{e9}llo \u{1f600}\"}}]}\n\n",
    ": keep-alive comment\r\n\r\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\" w\\\"orld\\n\"}}]}\n\n",
    "data: [DONE]\n\n",
];

/// The deterministic JSON body of the `fixed` mode when `stream` is not requested.
pub fn fixed_json() -> String {
    let filler = "x".repeat(20_000);
    format!("{{\"id\":\"c1\",\"object\":\"chat.completion\",\"choices\":[{{\"message\":{{\"content\":\"h\u{e9}llo \\\"{filler}\\\"\"}}}}]}}\n")
}

/// The `burst` mode's chunks: 300 of about 1 KiB, more than one write's worth.
pub fn burst_chunks() -> Vec<String> {
    (0..300)
        .map(|i| {
            format!(
                "data: {{\"n\":{i},\"pad\":\"{}\"}}\n\n",
                "p".repeat(i % 7 * 150)
            )
        })
        .collect()
}

async fn handle(State(seen): State<Arc<Seen>>, req: Request) -> Response {
    let mode = req
        .headers()
        .get("x-fake")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("echo")
        .to_owned();
    let path = req
        .uri()
        .path_and_query()
        .map_or(String::new(), |pq| pq.to_string());
    let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();

    if let Some(code) = mode.strip_prefix("status-") {
        let code: u16 = code.parse().expect("test invariant: status-<u16>");
        let error = format!(
            r#"{{"object":"error","message":"fake failure {code}","type":"BadRequestError","param":null,"code":{code}}}"#
        );
        let status = StatusCode::from_u16(code).expect("test invariant: valid status");
        return (status, [(header::CONTENT_TYPE, "application/json")], error).into_response();
    }
    if let Some(ms) = mode.strip_prefix("sleep-") {
        let ms: u64 = ms.parse().expect("test invariant: sleep-<ms>");
        tokio::time::sleep(Duration::from_millis(ms)).await;
        return "slept".into_response();
    }
    match mode.as_str() {
        "two-slow" => sse(|tx| async move {
            let _ = tx.send(Bytes::from_static(b"data: one\n\n")).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            *seen.second_sent_at.lock().expect("test lock") = Some(Instant::now());
            let _ = tx.send(Bytes::from_static(b"data: two\n\n")).await;
        }),
        "endless" => sse(|tx| async move {
            for i in 0..400 {
                let chunk = Bytes::from(format!("data: {i}\n\n"));
                if tx.send(chunk).await.is_err() {
                    *seen.client_gone_at.lock().expect("test lock") = Some(Instant::now());
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }),
        "three" => sse(|tx| async move {
            for i in 0..3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _ = tx.send(Bytes::from(format!("data: {i}\n\n"))).await;
            }
        }),
        "burst" => sse(|tx| async move {
            for chunk in burst_chunks() {
                let _ = tx.send(Bytes::from(chunk)).await;
            }
        }),
        "at-once" => {
            let chunks =
                (0..3).map(|i| Ok::<_, std::io::Error>(Bytes::from(format!("data: {i}\n\n"))));
            (
                [(header::CONTENT_TYPE, "text/event-stream")],
                Body::from_stream(futures::stream::iter(chunks)),
            )
                .into_response()
        }
        "burst-then-die" => {
            let chunks = (0..3).map(|i| Ok(Bytes::from(format!("data: {i}\n\n"))));
            // The chunks go out together; the connection is cut a moment later (hyper
            // drops a connection whose body fails before flushing what it holds).
            let failure = futures::stream::once(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(std::io::Error::other("upstream died"))
            });
            let body = futures::StreamExt::chain(futures::stream::iter(chunks), failure);
            (
                [(header::CONTENT_TYPE, "text/event-stream")],
                Body::from_stream(body),
            )
                .into_response()
        }
        "fixed" => {
            let wants_stream = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("stream").and_then(|s| s.as_bool()))
                .unwrap_or(false);
            if wants_stream {
                sse(|tx| async move {
                    for chunk in FIXED_SSE {
                        let _ = tx.send(Bytes::from_static(chunk.as_bytes())).await;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            } else {
                ([(header::CONTENT_TYPE, "application/json")], fixed_json()).into_response()
            }
        }
        _ => {
            let mut response = Response::new(Body::from(body));
            let headers = response.headers_mut();
            if let Some(ct) = content_type {
                headers.insert(header::CONTENT_TYPE, ct);
            }
            headers.insert(
                "x-echo-path",
                HeaderValue::from_str(&path).expect("test invariant: path is a header value"),
            );
            response
        }
    }
}

/// An SSE response whose chunks `produce` sends; each send is one body frame.
fn sse<F, Fut>(produce: F) -> Response
where
    F: FnOnce(mpsc::Sender<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    tokio::spawn(produce(tx));
    let stream = futures::StreamExt::map(ReceiverStream::new(rx), Ok::<_, std::io::Error>);
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(stream),
    )
        .into_response()
}
