//! A fake Hugging Face Hub for tests and the demo: answers
//! `GET /api/models/{org}/{name}` (with or without `?blobs=true`) like the real Hub's
//! model-info endpoint, with file sizes consistent with what the `hf` shim writes
//! (`config.json` 1024 bytes, then two shards splitting the rest).
//!
//! Runs on its own thread and runtime on 127.0.0.1:0 so sync callers (the demo's setup,
//! test harnesses) can own it; dropping it stops the server. Knobs: a default repo size,
//! per-repo sizes, repos that do not exist (401 `RepoNotFound`, as the Hub answers
//! anonymous callers), gated repos (model info answers, `gated: "manual"`), repos whose
//! sizes are withheld, and a switch that makes every answer a 500.
//!
//! Must not: listen on anything but 127.0.0.1, or reach the real Hub.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::SimError;

/// The `hf` shim's default repo size (its `hf-size` knob default).
pub const DEFAULT_REPO_BYTES: u64 = 3_145_728;

/// What the fake Hub answers.
#[derive(Debug, Clone)]
pub struct FakeHubState {
    /// Size of every repo not in `sizes`.
    pub default_bytes: u64,
    /// Per-repo sizes.
    pub sizes: BTreeMap<String, u64>,
    /// Repos that do not exist.
    pub missing: BTreeSet<String>,
    /// Gated repos.
    pub gated: BTreeSet<String>,
    /// Repos listed without sizes.
    pub sizeless: BTreeSet<String>,
    /// Every request answers 500.
    pub broken: bool,
    /// Requests seen (for tests).
    pub requests: u64,
}

impl Default for FakeHubState {
    fn default() -> Self {
        FakeHubState {
            default_bytes: DEFAULT_REPO_BYTES,
            sizes: BTreeMap::new(),
            missing: BTreeSet::new(),
            gated: BTreeSet::new(),
            sizeless: BTreeSet::new(),
            broken: false,
            requests: 0,
        }
    }
}

/// The files the `hf` shim writes for a repo of `total` bytes.
pub fn shim_files(total: u64) -> Vec<(&'static str, u64)> {
    let cfg = 1024.min(total);
    let shard1 = (total - cfg) / 2;
    let shard2 = total - cfg - shard1;
    vec![
        ("config.json", cfg),
        ("model-00001-of-00002.safetensors", shard1),
        ("model-00002-of-00002.safetensors", shard2),
    ]
}

type Shared = Arc<Mutex<FakeHubState>>;

/// A running fake Hub.
pub struct FakeHub {
    url: String,
    state: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for FakeHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHub").field("url", &self.url).finish()
    }
}

impl FakeHub {
    /// Starts a fake Hub on 127.0.0.1 (a free port).
    pub fn start() -> Result<FakeHub, SimError> {
        let std_listener =
            std::net::TcpListener::bind("127.0.0.1:0").map_err(|source| SimError::Bind {
                addr: "127.0.0.1:0".into(),
                source,
            })?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| SimError::io("cannot configure", "fake hub socket", e))?;
        let addr = std_listener
            .local_addr()
            .map_err(|e| SimError::io("cannot read", "fake hub address", e))?;
        let state: Shared = Arc::new(Mutex::new(FakeHubState::default()));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new()
            .route("/api/models/{org}/{name}", get(model_info))
            .with_state(state.clone());
        let thread = std::thread::Builder::new()
            .name("fake-hub".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                        return;
                    };
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stop_rx.await;
                        })
                        .await;
                });
            })
            .map_err(|e| SimError::io("cannot start", "fake hub thread", e))?;
        Ok(FakeHub {
            url: format!("http://{addr}"),
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Its base URL (`http://127.0.0.1:PORT`), to use as `HF_ENDPOINT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Changes what it answers.
    pub fn update(&self, f: impl FnOnce(&mut FakeHubState)) {
        if let Ok(mut g) = self.state.lock() {
            f(&mut g);
        }
    }

    /// A copy of what it answers (and how many requests it saw).
    pub fn state(&self) -> FakeHubState {
        self.state.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn model_info(
    State(state): State<Shared>,
    Path((org, name)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let repo = format!("{org}/{name}");
    let blobs = q.get("blobs").is_some_and(|v| v == "true" || v == "1");
    let Ok(mut s) = state.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    s.requests += 1;
    if s.broken {
        return (StatusCode::INTERNAL_SERVER_ERROR, "fake hub: broken knob").into_response();
    }
    if s.missing.contains(&repo) {
        return (
            StatusCode::UNAUTHORIZED,
            [
                ("x-error-code", "RepoNotFound"),
                ("x-error-message", "Repository not found"),
            ],
            Json(json!({ "error": "Repository not found" })),
        )
            .into_response();
    }
    let total = s.sizes.get(&repo).copied().unwrap_or(s.default_bytes);
    let with_sizes = blobs && !s.sizeless.contains(&repo);
    let siblings: Vec<serde_json::Value> = shim_files(total)
        .into_iter()
        .map(|(f, size)| {
            let mut v = json!({ "rfilename": f });
            if with_sizes {
                v["size"] = json!(size);
                v["blobId"] = json!(format!("{:040x}", size));
                if f.ends_with(".safetensors") {
                    v["lfs"] = json!({ "size": size, "sha256": format!("{:064x}", size), "pointerSize": 135 });
                }
            }
            v
        })
        .collect();
    let gated = if s.gated.contains(&repo) {
        json!("manual")
    } else {
        json!(false)
    };
    Json(json!({
        "_id": format!("{:024x}", total),
        "id": repo,
        "modelId": repo,
        "private": false,
        "gated": gated,
        "disabled": false,
        "sha": format!("{:040x}", total),
        "siblings": siblings,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_files_add_up() {
        for total in [0u64, 10, 1024, 3_145_728, 1_000_001] {
            let files = shim_files(total);
            assert_eq!(files.iter().map(|f| f.1).sum::<u64>(), total, "{total}");
        }
    }

    #[test]
    fn answers_like_the_hub() {
        let hub = FakeHub::start().expect("start");
        hub.update(|s| {
            s.missing.insert("org/gone".into());
            s.sizes.insert("org/big".into(), 5000);
        });
        let rt = tokio::runtime::Runtime::new().expect("rt");
        let client = crate::hub::Hub::new(crate::hub::HubConfig::at(hub.url()));
        let info = rt.block_on(client.repo_info("org/big")).expect("info");
        assert_eq!(info.total_bytes, Some(5000));
        assert_eq!(info.files, 3);
        let e = rt.block_on(client.repo_info("org/gone"));
        assert!(
            matches!(e, Err(crate::hub::HubError::NotFound { .. })),
            "{e:?}"
        );
        hub.update(|s| s.broken = true);
        let e = rt.block_on(client.repo_info("org/big"));
        assert!(
            matches!(e, Err(crate::hub::HubError::Unavailable { .. })),
            "{e:?}"
        );
        assert_eq!(hub.state().requests, 3);
    }
}
