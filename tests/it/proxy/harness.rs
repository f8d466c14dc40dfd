//! Shared setup of the proxy tests: serving on 127.0.0.1:0, the proxy fed a `watch` of
//! `Routes`, and a small HTTP client. No assertions live here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt as _;
use serde_json::Value;
use spark_control::proxy::{self, ProxyConfig, ProxyMetrics, Routes, Upstream};
use tokio::sync::watch;

use super::fake_upstream::{self, FakeUpstream};

/// Serves `app` on 127.0.0.1:0 with TCP_NODELAY; the task ends with the test's runtime.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

pub struct Proxy {
    pub url: String,
    pub routes: watch::Sender<Routes>,
    pub metrics: Arc<ProxyMetrics>,
}

pub async fn start_proxy(routes: Routes, config: ProxyConfig) -> Proxy {
    let (tx, rx) = watch::channel(routes);
    let metrics = Arc::new(ProxyMetrics::new());
    let addr = serve(proxy::router(rx, config, Arc::clone(&metrics))).await;
    Proxy {
        url: format!("http://{addr}"),
        routes: tx,
        metrics,
    }
}

pub fn ready(base: String) -> Upstream {
    Upstream::Ready {
        base,
        model: Some("fake/model".into()),
    }
}

/// Fake upstream + proxy with every service routed to the fake.
pub async fn setup(config: ProxyConfig) -> (FakeUpstream, Proxy) {
    let fake = fake_upstream::start().await;
    let routes = Routes {
        vllm: ready(fake.base()),
        stt: ready(fake.base()),
        tts: ready(fake.base()),
        ..Routes::default()
    };
    let proxy = start_proxy(routes, config).await;
    (fake, proxy)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub async fn post(url: &str, fake: &str, body: &'static str) -> reqwest::Response {
    client()
        .post(url)
        .header("x-fake", fake)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

pub async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

/// A raw TCP upstream: on every connection it reads one whole request (head, then a
/// `Content-Length` body), writes `response` as given in one write, and closes the
/// connection `close_after` later. For what a well-behaved server never does (cut a body
/// short) or does behind our back (close a pooled connection). Returns its base URL.
pub async fn raw_upstream(response: String, close_after: Duration) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let response = Arc::new(response);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let response = Arc::clone(&response);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let head_end = loop {
                    if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&request[..head_end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while request.len() < head_end + length {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket.write_all(response.as_bytes()).await;
                tokio::time::sleep(close_after).await;
            });
        }
    });
    format!("http://{addr}")
}
