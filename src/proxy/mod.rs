//! The OpenAI-compatible passthrough proxy: one host for every client.
//!
//! Owns the data path from OpenAI clients (SDKs, Open WebUI, curl) to the upstream
//! services: `/v1/*` → the vLLM of the deployment serving the request's `model` (see
//! `models.rs`; `/v1/models` is answered here from the catalog), `/v1/audio/transcriptions` and
//! `/api/audio/diarize-chunk` → speech-to-text, `/v1/audio/speech` → text-to-speech.
//! Upstream addresses come from a [`tokio::sync::watch`] of [`Routes`] published by the
//! control loop; this module only reads it.
//!
//! It is a dumb, fast forwarder: request bodies go upstream verbatim, responses stream
//! back frame by frame as they arrive (never held for data that has not arrived; frames
//! that arrived together leave in one write, see `body.rs`), hop-by-hop headers are
//! dropped, and vLLM's status codes and error bodies pass through. It must NOT hold control
//! state, take locks on the hot path, hold the watch borrow across `.await`, or parse
//! responses (the single exception: an upstream error body on a streaming request is turned
//! into one SSE `error` event).
//!
//! Choices worth knowing:
//! - `Upstream::Down` is still tried: observed readiness lags reality by a poll interval,
//!   a dead upstream costs at most the short connect timeout (then 502 "… unreachable"),
//!   and refusing would turn a flapping poll into a false outage.
//! - A streaming request whose upstream answers non-2xx keeps the upstream status code;
//!   its body becomes exactly one `event: error` SSE event carrying an OpenAI error object.
//! - The upstream client is a small keep-alive pool of hyper HTTP/1.1 connections
//!   (`client.rs`: `TCP_NODELAY`, IPv4 addresses tried first, a connection returns to the
//!   pool only after its response was read to the end); the request body type is axum's
//!   own `Body`, so nothing is re-wrapped or copied on the way through.

mod admission;
mod body;
mod client;
mod demand;
mod error;
mod forward;
mod metrics;
mod models;
mod multipart;
mod route;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::any;
use tokio::sync::watch;

pub use demand::{spawn_idle_unload, Demand, SwapCause, Swapper};
pub use error::ProxyError;
pub use error::Service;
pub use metrics::{ProxyMetrics, DEFAULT_DEPLOYMENT};
pub use models::{Lookup, ModelEntry, ModelTable};

/// Published by the control loop whenever desired placement or observed readiness changes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Routes {
    /// The active model's vLLM on the cluster head.
    pub vllm: Upstream,
    /// Speech-to-text service (parakeet).
    pub stt: Upstream,
    /// Text-to-speech service (magpie).
    pub tts: Upstream,
    /// Every catalog model: routing by the request's `model`, and `/v1/models`.
    pub models: std::sync::Arc<ModelTable>,
    /// Request policies from the desired file (live: republished with every edit).
    pub policy: std::sync::Arc<Policy>,
}

/// Request policies (`on_request`, `idle_unload_after`, `proxy.max_concurrent`, the swap
/// queue's bounds and the drain grace), as the desired file says them now.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Deployments with `on_request: swap`.
    pub swap_on_request: std::collections::BTreeSet<String>,
    /// Deployments with `idle_unload_after`, and it.
    pub idle_unload: std::collections::BTreeMap<String, Duration>,
    /// Most requests in flight per model, by catalog name.
    pub max_concurrent: std::collections::BTreeMap<String, u32>,
    /// Most requests waiting for a request-triggered swap, per model.
    pub queue: usize,
    /// Longest wait for a request-triggered swap.
    pub queue_wait: Duration,
    /// Least time between two request-triggered swaps of one deployment.
    pub min_interval: Duration,
    /// How long requests in flight may finish before a swap stops their model.
    pub drain_grace: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            swap_on_request: Default::default(),
            idle_unload: Default::default(),
            max_concurrent: Default::default(),
            queue: 64,
            queue_wait: Duration::from_secs(900),
            min_interval: Duration::from_secs(30),
            drain_grace: Duration::from_secs(30),
        }
    }
}

/// Where one upstream service is, and whether it can take requests.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Upstream {
    /// Nothing placed: 503 "no model is active" / "no stt service is configured".
    #[default]
    NotConfigured,
    /// Serving. `base` is e.g. `"http://127.0.0.2:8888"` (no `/v1`).
    Ready { base: String, model: Option<String> },
    /// A swap is in progress: 503 + `Retry-After` naming the model, or wait up to
    /// [`ProxyConfig::wait_for_ready`].
    Loading { model: String, base: Option<String> },
    /// Configured but not observed ready. Still tried (see the module doc).
    Down { base: String, why: String },
}

/// Knobs of the proxy. [`ProxyConfig::default`] gives the production defaults.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Limit for establishing the TCP connection to an upstream.
    pub connect_timeout: Duration,
    /// Limit for a whole exchange, response body included (big-context completions).
    pub overall_timeout: Duration,
    /// Largest JSON request body accepted (413 above it).
    pub max_json_body: usize,
    /// Largest audio (multipart) request body accepted (413 above it).
    pub max_audio_body: usize,
    /// When non-empty, requests must carry `Authorization: Bearer <one of these>`.
    pub inference_keys: Vec<String>,
    /// Per key (same order): the catalog models it may use; `None`: every model.
    pub key_models: Vec<Option<Vec<String>>>,
    /// When set, a request arriving during a swap waits up to this long for the model
    /// instead of getting 503 at once.
    pub wait_for_ready: Option<Duration>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            connect_timeout: Duration::from_secs(3),
            overall_timeout: Duration::from_secs(30 * 60),
            max_json_body: 32 * 1024 * 1024,
            max_audio_body: 100 * 1024 * 1024,
            inference_keys: Vec::new(),
            key_models: Vec::new(),
            wait_for_ready: None,
        }
    }
}

/// The proxy's routes: `/v1/*` and `/api/audio/diarize-chunk`, any method.
///
/// Merge it into the main router. Serve with `TCP_NODELAY` on accepted sockets
/// (`axum::serve::ListenerExt::tap_io`), or small SSE frames wait for Nagle.
pub fn router(
    routes: watch::Receiver<Routes>,
    config: ProxyConfig,
    metrics: Arc<ProxyMetrics>,
) -> axum::Router {
    router_with(routes, config, metrics, Demand::new())
}

/// [`router`] sharing `demand` (in-flight counts, swap queues) with the executor's drain,
/// the idle-unload task and `/metrics`.
pub fn router_with(
    routes: watch::Receiver<Routes>,
    config: ProxyConfig,
    metrics: Arc<ProxyMetrics>,
    demand: Arc<Demand>,
) -> axum::Router {
    let client = client::build(config.connect_timeout);
    let shared = Arc::new(forward::Shared {
        routes,
        config,
        metrics,
        client,
        demand,
    });
    axum::Router::new()
        .route("/v1/{*rest}", any(forward::handle))
        .route("/api/audio/diarize-chunk", any(forward::handle))
        .with_state(shared)
}
