//! The child roles: the fast fake upstream and the proxy, each announcing its port.

use std::sync::Arc;

use axum::body::Body;
use axum::serve::ListenerExt as _;
use bytes::Bytes;
use spark_control::proxy::{self, ProxyConfig, ProxyMetrics, Routes, Upstream};

pub(crate) const JSON_ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"fake","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}"#;
pub(crate) const SSE_CHUNKS: [&str; 4] = [
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"}}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: [DONE]\n\n",
];

pub(crate) async fn listen_and_announce(app: axum::Router) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("PORT {}", listener.local_addr()?.port());
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

/// The fast fake upstream: a fixed JSON answer, or four SSE chunks when `"stream":true`.
pub(crate) async fn serve_upstream() -> anyhow::Result<()> {
    async fn chat(body: Bytes) -> axum::response::Response {
        let streaming = body.windows(13).any(|w| w == b"\"stream\":true");
        let builder = axum::response::Response::builder().status(200);
        let response = if streaming {
            let chunks =
                SSE_CHUNKS.map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c.as_bytes())));
            builder
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(futures::stream::iter(chunks)))
        } else {
            builder
                .header("content-type", "application/json")
                .body(Body::from(JSON_ANSWER))
        };
        response.unwrap_or_default()
    }
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat));
    listen_and_announce(app).await
}

/// The proxy in front of `base`; with `policies`, the model is a catalog entry (routed by
/// name) on a deployment with `on_request: swap` and a `max_concurrent` never reached.
pub(crate) async fn serve_proxy(base: String, policies: bool) -> anyhow::Result<()> {
    let upstream = Upstream::Ready {
        base,
        model: Some("fake".into()),
    };
    let mut routes = Routes {
        vllm: upstream.clone(),
        ..Routes::default()
    };
    if policies {
        let entry = proxy::ModelEntry {
            name: "fake".into(),
            repo: "org/fake".into(),
            aliases: vec![],
            status: "serving".into(),
            deployment: Some("main".into()),
            could_run: vec!["main".into()],
            max_model_len: None,
            leaving: false,
            upstream,
        };
        routes.models = Arc::new(proxy::ModelTable::new(vec![entry], Some("main".into())));
        let mut policy = proxy::Policy::default();
        policy.swap_on_request.insert("main".into());
        policy.max_concurrent.insert("fake".into(), 1_000_000);
        routes.policy = Arc::new(policy);
    }
    let (_tx, rx) = tokio::sync::watch::channel(routes);
    let app = proxy::router(rx, ProxyConfig::default(), Arc::new(ProxyMetrics::new()));
    listen_and_announce(app).await
}
