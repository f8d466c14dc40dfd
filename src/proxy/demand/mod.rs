//! What the proxy knows of requests beyond one exchange: how many are in flight per model
//! (`proxy.max_concurrent`) and per deployment (the drain before a swap), when each
//! deployment last had one (idle unload), and the request-triggered swaps with their
//! queues (`on_request: swap`).
//!
//! Lives outside the route table (which is rebuilt on every status change, and would reset
//! counters), shared by the proxy, the executor (it drains a deployment before stopping its
//! model) and the idle-unload task. The file stays the truth: a swap is a recorded edit of
//! desired.yaml made by a [`Swapper`] (the HTTP side's conflict-checked store), never a
//! route change of its own; requests wait for the control loop to converge to that edit.
//!
//! `swap.rs` has the request-triggered swap and its queue, `idle.rs` the idle unload.
//!
//! The hot path takes one read lock for a hash lookup per request (the deployment's and,
//! when limited, the model's counters), then only atomics.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::error::ProxyError;

/// Why a deployment's model is changed by the proxy side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwapCause {
    /// A request named the model: who sent it (address or user agent) and on which route.
    Request { client: String, route: String },
    /// No request for the deployment's `idle_unload_after`.
    Idle { after: Duration },
}

/// Writes a deployment's `active_model` into the desired file, recorded (event log,
/// git-ops commit). `Err` says why it could not (shown to the waiting clients).
pub trait Swapper: Send + Sync {
    fn set_model(
        &self,
        deployment: String,
        model: Option<String>,
        cause: SwapCause,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
}

/// Counters of one model.
#[derive(Default)]
struct ModelCounters {
    in_flight: AtomicUsize,
    waiting: AtomicUsize,
}

/// Counters and swap state of one deployment.
struct DeploymentCounters {
    in_flight: AtomicUsize,
    /// Notified whenever `in_flight` falls to 0.
    idle: Notify,
    /// Cancelled to end the deployment's streams still running after a drain's grace;
    /// replaced by a fresh one after each cut.
    cut: Mutex<CancellationToken>,
    /// Milliseconds since `Demand::epoch` of the last request (0: none yet).
    last_request_ms: AtomicU64,
    /// Held by the one request-triggered swap running on this deployment; FIFO, so the
    /// requests waiting behind it go on in arrival order.
    swap: tokio::sync::Mutex<()>,
    /// When the last request-triggered swap was asked for.
    last_swap: Mutex<Option<Instant>>,
}

impl Default for DeploymentCounters {
    fn default() -> Self {
        DeploymentCounters {
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            cut: Mutex::new(CancellationToken::new()),
            last_request_ms: AtomicU64::new(0),
            swap: tokio::sync::Mutex::new(()),
            last_swap: Mutex::new(None),
        }
    }
}

/// Totals for `/metrics`.
pub struct DemandTotals {
    /// Swaps asked for by requests.
    pub swaps_request: AtomicU64,
    /// Unloads after `idle_unload_after`.
    pub swaps_idle: AtomicU64,
    /// Model changes by a hand edit of the file.
    pub swaps_file: AtomicU64,
    /// Model changes by an edit in the UI.
    pub swaps_ui: AtomicU64,
    /// Model changes by an API client's edit.
    pub swaps_api: AtomicU64,
    /// Requests refused because a model's queue was full or its wait ran out.
    pub queue_refused: AtomicU64,
    /// Requests refused past `max_concurrent`.
    pub limited: AtomicU64,
    /// Drains that ended with nothing in flight.
    pub drained: AtomicU64,
    /// Streams ended with an SSE error event after a drain's grace.
    pub cut_streams: AtomicU64,
    /// How long requests waited for a request-triggered swap.
    wait: crate::prom::Histogram,
}

impl Default for DemandTotals {
    fn default() -> Self {
        DemandTotals {
            swaps_request: AtomicU64::new(0),
            swaps_idle: AtomicU64::new(0),
            swaps_file: AtomicU64::new(0),
            swaps_ui: AtomicU64::new(0),
            swaps_api: AtomicU64::new(0),
            queue_refused: AtomicU64::new(0),
            limited: AtomicU64::new(0),
            drained: AtomicU64::new(0),
            cut_streams: AtomicU64::new(0),
            wait: crate::prom::Histogram::new(crate::prom::LATENCY_BUCKETS),
        }
    }
}

/// The shared registry (one per server).
pub struct Demand {
    epoch: Instant,
    models: RwLock<HashMap<String, Arc<ModelCounters>>>,
    deployments: RwLock<HashMap<String, Arc<DeploymentCounters>>>,
    swapper: RwLock<Option<Arc<dyn Swapper>>>,
    /// Totals for `/metrics`.
    pub totals: DemandTotals,
}

impl Default for Demand {
    fn default() -> Self {
        Demand {
            epoch: Instant::now(),
            models: Default::default(),
            deployments: Default::default(),
            swapper: RwLock::new(None),
            totals: Default::default(),
        }
    }
}

fn entry<T: Default>(map: &RwLock<HashMap<String, Arc<T>>>, key: &str) -> Arc<T> {
    if let Some(c) = map.read().ok().and_then(|m| m.get(key).cloned()) {
        return c;
    }
    match map.write() {
        Ok(mut m) => m.entry(key.to_string()).or_default().clone(),
        Err(_) => Arc::new(T::default()),
    }
}

/// One request in flight: counted on its deployment (and model, when limited) until
/// dropped, which is when its response body ends.
pub struct InFlight {
    deployment: Arc<DeploymentCounters>,
    model: Option<Arc<ModelCounters>>,
    /// Cancelled when a drain's grace ended with this request still running.
    pub cut: CancellationToken,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(m) = &self.model {
            m.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
        if self.deployment.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.deployment.idle.notify_waiters();
        }
    }
}

impl Demand {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Installs the writer of request-triggered edits.
    pub fn set_swapper(&self, swapper: Arc<dyn Swapper>) {
        if let Ok(mut s) = self.swapper.write() {
            *s = Some(swapper);
        }
    }

    /// Takes the writer out (the server stopped).
    pub fn clear_swapper(&self) {
        if let Ok(mut s) = self.swapper.write() {
            *s = None;
        }
    }

    fn swapper(&self) -> Option<Arc<dyn Swapper>> {
        self.swapper.read().ok().and_then(|s| s.clone())
    }

    fn deployment(&self, name: &str) -> Arc<DeploymentCounters> {
        entry(&self.deployments, name)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Admits a request for `model` on `deployment`: 429 past the model's `max_concurrent`.
    pub fn admit(
        &self,
        deployment: &str,
        model: &str,
        limit: Option<u32>,
    ) -> Result<InFlight, ProxyError> {
        let dep = self.deployment(deployment);
        dep.last_request_ms.store(self.now_ms(), Ordering::Release);
        let model_counters = match limit {
            Some(limit) => {
                let m = entry(&self.models, model);
                let before = m.in_flight.fetch_add(1, Ordering::AcqRel);
                if before >= limit as usize {
                    m.in_flight.fetch_sub(1, Ordering::AcqRel);
                    self.totals.limited.fetch_add(1, Ordering::Relaxed);
                    return Err(ProxyError::TooMany {
                        model: model.to_string(),
                        limit,
                        retry_after: 1,
                    });
                }
                Some(m)
            }
            None => None,
        };
        dep.in_flight.fetch_add(1, Ordering::AcqRel);
        let cut = dep.cut.lock().map(|c| c.clone()).unwrap_or_default();
        Ok(InFlight {
            deployment: dep,
            model: model_counters,
            cut,
        })
    }

    /// Counts `n` deployment model changes by `cause` (`file`, `ui`, `api`; the proxy side
    /// counts its own `request` and `idle` ones).
    pub fn note_swaps(&self, cause: &str, n: usize) {
        let counter = match cause {
            "file" => &self.totals.swaps_file,
            "ui" => &self.totals.swaps_ui,
            "api" => &self.totals.swaps_api,
            _ => return,
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Requests in flight on `deployment` now.
    pub fn in_flight(&self, deployment: &str) -> usize {
        self.deployment(deployment)
            .in_flight
            .load(Ordering::Acquire)
    }

    /// Requests waiting for a swap to `model` now.
    pub fn waiting(&self, model: &str) -> usize {
        entry(&self.models, model).waiting.load(Ordering::Acquire)
    }

    /// How long `deployment` has had no request (None: never had one).
    pub fn idle_for(&self, deployment: &str) -> Option<Duration> {
        let last = self
            .deployment(deployment)
            .last_request_ms
            .load(Ordering::Acquire);
        (last > 0).then(|| Duration::from_millis(self.now_ms().saturating_sub(last)))
    }

    /// Marks `deployment` as just used (its model became ready: the idle clock starts).
    pub fn touch(&self, deployment: &str) {
        self.deployment(deployment)
            .last_request_ms
            .store(self.now_ms(), Ordering::Release);
    }

    /// Before a swap stops `deployment`'s model: waits up to `grace` for its requests in
    /// flight to finish (`say` is told how many at the start), then ends the streams still
    /// running (one SSE `error` event each) and waits a little for them to go. Returns how
    /// many were cut.
    pub async fn drain(&self, deployment: &str, grace: Duration, say: impl Fn(String)) -> usize {
        let dep = self.deployment(deployment);
        let n = dep.in_flight.load(Ordering::Acquire);
        if n == 0 {
            return 0;
        }
        say(format!(
            "draining {n} request{} (up to {} s, proxy.drain_grace_secs)",
            if n == 1 { "" } else { "s" },
            grace.as_secs()
        ));
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let idle = dep.idle.notified();
            let left = dep.in_flight.load(Ordering::Acquire);
            if left == 0 {
                self.totals.drained.fetch_add(1, Ordering::Relaxed);
                say("drained: no request in flight".into());
                return 0;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                break;
            }
        }
        let left = dep.in_flight.load(Ordering::Acquire);
        if let Ok(mut cut) = dep.cut.lock() {
            cut.cancel();
            *cut = CancellationToken::new();
        }
        self.totals
            .cut_streams
            .fetch_add(left as u64, Ordering::Relaxed);
        say(format!(
            "{left} request{} still running after {} s: ended with an error event",
            if left == 1 { "" } else { "s" },
            grace.as_secs()
        ));
        let after = tokio::time::Instant::now() + Duration::from_secs(2);
        while dep.in_flight.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < after {
            let _ = tokio::time::timeout_at(after, dep.idle.notified()).await;
        }
        left
    }

    /// Records a finished wait for a swap.
    fn waited(&self, waited: Duration) {
        self.totals.wait.record(waited);
    }

    /// Prometheus text for the demand counters.
    pub fn render_prometheus(&self, out: &mut String) {
        use crate::prom::{family, sample};
        let t = &self.totals;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let swaps = "spark_control_swaps_total";
        family(out, swaps, "counter", "Deployment model changes asked for, by cause: file (a hand edit), ui, api, request (on_request: swap), idle (idle_unload_after).");
        for (cause, n) in [
            ("file", &t.swaps_file),
            ("ui", &t.swaps_ui),
            ("api", &t.swaps_api),
            ("request", &t.swaps_request),
            ("idle", &t.swaps_idle),
        ] {
            sample(out, swaps, &[("cause", cause)], get(n));
        }
        let depth = "spark_control_swap_queue_depth";
        family(
            out,
            depth,
            "gauge",
            "Requests waiting for a request-triggered swap, per model.",
        );
        if let Ok(m) = self.models.read() {
            let mut names: Vec<_> = m.iter().collect();
            names.sort_by(|a, b| a.0.cmp(b.0));
            for (name, c) in names {
                let n = c.waiting.load(Ordering::Relaxed) as f64;
                sample(out, depth, &[("model", name)], n);
            }
        }
        let wait = "spark_control_swap_wait_seconds";
        family(
            out,
            wait,
            "histogram",
            "How long requests waited for a request-triggered swap before going upstream.",
        );
        t.wait.render(out, wait, &[]);
        for (name, help, v) in [
            (
                "spark_control_swap_queue_refused_total",
                "Requests refused because a swap queue was full or its wait ran out.",
                get(&t.queue_refused),
            ),
            (
                "spark_control_limited_total",
                "Requests refused past proxy.max_concurrent.",
                get(&t.limited),
            ),
            (
                "spark_control_drains_total",
                "Drains before a swap that ended with nothing in flight.",
                get(&t.drained),
            ),
            (
                "spark_control_cut_streams_total",
                "Streams ended with an SSE error event after a drain's grace.",
                get(&t.cut_streams),
            ),
        ] {
            family(out, name, "counter", help);
            sample(out, name, &[], v);
        }
    }

    /// Unloads `deployment`'s model after `after` without a request (the idle task).
    pub async fn unload_idle(&self, deployment: &str, after: Duration) -> Result<(), String> {
        let swapper = self
            .swapper()
            .ok_or("no writer of the desired file is installed")?;
        swapper
            .set_model(deployment.to_string(), None, SwapCause::Idle { after })
            .await?;
        self.totals.swaps_idle.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

mod idle;
mod swap;
#[cfg(test)]
mod tests;

pub use idle::spawn_idle_unload;
pub use swap::swap_target;
