//! Integration tests of the HTTP API: every route through `oneshot` on `app(state)`, over a
//! real control loop (`reconcile::spawn`) whose hosts are unreachable loopback addresses
//! (127.0.0.9/127.0.0.10, port 1: nothing listens), so the loop runs but contacts nothing.
//!
//! Fuzzing with schemathesis (finds 5xx and responses that break the documented schema):
//!
//! ```text
//! pip install schemathesis
//! mkdir -p /tmp/fuzz && printf 'version: 1\nhosts: {}\n' > /tmp/fuzz/desired.yaml
//! SPARK_CONTROL_ADMIN_TOKEN=tok cargo run -- serve --desired /tmp/fuzz/desired.yaml \
//!     --data-dir /tmp/fuzz --listen 127.0.0.1:9999 &
//! st run http://127.0.0.1:9999/api/openapi.json --checks all --max-examples 100 \
//!     --workers 1 --request-timeout 5 -H 'Authorization: Bearer tok'
//! ```
//!
//! Run both inside `unshare -n` (after `ip link set lo up`): the fuzzer writes arbitrary
//! host addresses into the desired file and the loop would try to reach them; a network
//! namespace with only loopback keeps every connection local. Expected findings: ST202
//! (schema-valid bodies that make the desired state invalid get 422; odd `If-Match` gets
//! 400); without a token, ST401/ST203 (writes are open by design). A 5xx is a bug.

mod concurrency;
mod discovery;
mod edits;
mod limits;
mod openapi;
mod routes;
mod serve;
mod slow;

use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use serde_json::Value;
use spark_control::hosts::Connector;
use spark_control::http::{app, AppState};
use spark_control::reconcile::{self, LoopConfig};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The desired file of most tests: two unreachable loopback hosts, a model, two services.
pub const DESIRED: &str = "\
# test cluster: nothing listens on these addresses
version: 1
hosts:
  spark1: { address: 127.0.0.9, port: 1 }   # head
  spark2: { address: 127.0.0.10, port: 1 }
cluster: { head: spark1, workers: [spark2] }
active_model: qwen36
services:
  parakeet: { kind: stt, host: spark2, port: 8000, model: nvidia/parakeet-tdt-0.6b-v3 }
  magpie: { kind: tts, host: spark2, port: 9000 }
ssh: { connect_timeout_secs: 1 }
";

/// The admin token of tests that use one.
pub const TOKEN: &str = "s3cret-admin-token";

/// The commented fixture with its LAN addresses moved to unreachable loopback ones.
pub fn commented_fixture() -> String {
    include_str!("../fixtures/commented.yaml")
        .replace("192.168.1.101", "127.0.0.9")
        .replace("\"192.168.1.102\"", "\"127.0.0.10\"")
        .replace("port: 22 }", "port: 1 }")
        .replace("user: nvidia }", "user: nvidia, port: 1 }")
}

/// A real control loop on a temp dir, and the app over it.
pub struct TestApp {
    pub _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub state: AppState,
    pub app: Router,
    pub shutdown: CancellationToken,
}

/// A response, read to the end.
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    }
}

impl TestApp {
    /// Starts the loop over `desired` with an optional admin token.
    pub async fn start(desired: &str, token: Option<&str>) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("desired.yaml");
        std::fs::write(&path, desired).expect("write desired");
        let key =
            spark_control::remote::keys::load_or_create_identity(dir.path()).expect("client key");
        let cfg = LoopConfig {
            desired_path: path.clone(),
            data_dir: dir.path().to_path_buf(),
            connector: Connector::Ssh {
                key: std::sync::Arc::new(key),
                known_hosts: dir.path().join("known_hosts"),
            },
            poll_interval: Some(Duration::from_secs(2)),
            settle: None,
        };
        let shutdown = CancellationToken::new();
        // The Hub on a loopback port where nothing listens: no test reaches the real Hub.
        let addons = reconcile::Addons {
            hub: spark_control::hub::HubConfig::at("http://127.0.0.1:9"),
            ..reconcile::Addons::default()
        };
        let (handle, _task) = reconcile::spawn_with(cfg, addons, shutdown.clone());
        // The OpenAI proxy as `app::start` merges it; no upstream is configured (503).
        let proxy = spark_control::proxy::router(
            tokio::sync::watch::channel(spark_control::proxy::Routes::default()).1,
            spark_control::proxy::ProxyConfig::default(),
            std::sync::Arc::new(spark_control::proxy::ProxyMetrics::new()),
        );
        let state = AppState::new(handle, token.map(String::from))
            .with_shutdown(shutdown.clone())
            .with_extra_router(proxy);
        let app = app(state.clone());
        TestApp {
            _dir: dir,
            path,
            state,
            app,
            shutdown,
        }
    }

    /// Waits (bounded) until the loop has a valid desired file and a first observation.
    pub async fn wait_ready(&self) {
        for _ in 0..200 {
            let s = self.state.handle.status.borrow().clone();
            if s.desired.is_some() && s.observed.generation > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the loop never became ready");
    }

    /// One request through `oneshot`.
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(body.into()).expect("request");
        let resp = self.app.clone().oneshot(req).await.expect("infallible");
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
            .await
            .expect("body");
        Resp {
            status: parts.status,
            headers: parts.headers,
            body: body.to_vec(),
        }
    }

    /// `GET /api/desired`: text and ETag.
    pub async fn desired(&self) -> (String, String) {
        let auth = self
            .state
            .admin_token
            .as_ref()
            .map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| ("authorization", a))
            .into_iter()
            .collect();
        let r = self
            .call("GET", "/api/desired", &headers, Body::empty())
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        (r.text(), r.header("etag").expect("ETag header"))
    }

    pub fn file(&self) -> String {
        std::fs::read_to_string(&self.path).expect("read desired")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
