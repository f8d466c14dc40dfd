//! Telemetry for the dashboard: per-host GPU utilisation, memory, temperature, power and
//! SSH round trip, and vLLM's throughput, queue and KV-cache usage, kept in memory as
//! time series for the last hour.
//!
//! Two feeds: every new observation the control loop publishes (GPUs via `nvidia-smi`,
//! parsed by `observe::parse::nvidia_smi`; the poll's round trip), and its own scrape of
//! vLLM's `/metrics` on the head every few seconds (`vllm` parses it; token rates come
//! from counter deltas). Must not: run commands on hosts, change anything, or keep more
//! than the configured window.

pub mod series;
pub mod vllm;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;
use tokio::sync::watch as tw;
use tokio_util::sync::CancellationToken;

use crate::model::observed::Observed;
use crate::status::Status;
use series::Series;
use vllm::VllmSample;

/// How telemetry is gathered.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// How often vLLM's `/metrics` is scraped.
    pub scrape_interval: Duration,
    /// How much history is kept.
    pub keep: Duration,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            scrape_interval: Duration::from_secs(5),
            keep: Duration::from_secs(3600),
        }
    }
}

#[derive(Default)]
struct HostSeries {
    gpu_util: Series,
    mem_used_mib: Series,
    mem_total_mib: Option<f64>,
    temp_c: Series,
    power_w: Series,
    rtt_ms: Series,
}

/// One deployment's vLLM series.
#[derive(Default)]
struct VllmSeries {
    gen_tps: Series,
    prompt_tps: Series,
    running: Series,
    waiting: Series,
    kv_cache: Series,
    last_counters: Option<(Instant, VllmSample)>,
}

#[derive(Default)]
struct Store {
    hosts: BTreeMap<String, HostSeries>,
    /// Per deployment name.
    vllm: BTreeMap<String, VllmSeries>,
    /// The first deployment: its series are also the top-level `vllm` (as before
    /// deployments).
    first: Option<String>,
    last_generation: u64,
}

/// Points of one metric: `[[unix_ms, value], …]`, oldest first.
pub type Points = Vec<(i64, f64)>;

/// One host's series.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct HostWire {
    /// GPU utilisation, percent (mean over the host's GPUs).
    pub gpu_util: Points,
    /// GPU memory used, MiB (sum; 0 on the GB10, which reports `[N/A]`).
    pub mem_used_mib: Points,
    /// GPU memory total, MiB (latest; None when never reported).
    pub mem_total_mib: Option<f64>,
    /// Temperature, °C (hottest GPU).
    pub temp_c: Points,
    /// Power draw, W (sum).
    pub power_w: Points,
    /// SSH round trip, ms.
    pub rtt_ms: Points,
}

/// vLLM's series.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct VllmWire {
    /// Generated tokens per second.
    pub gen_tps: Points,
    /// Prompt tokens per second.
    pub prompt_tps: Points,
    /// Requests running.
    pub running: Points,
    /// Requests waiting.
    pub waiting: Points,
    /// KV-cache usage, fraction 0..=1.
    pub kv_cache: Points,
}

/// `GET /api/telemetry`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TelemetryWire {
    /// Per host.
    pub hosts: BTreeMap<String, HostWire>,
    /// The first deployment's vLLM (the only one before deployments; kept as it was).
    pub vllm: VllmWire,
    /// Every deployment's vLLM, by deployment name (the first's again under its name).
    pub deployments: BTreeMap<String, VllmWire>,
}

/// The newest vLLM values, for `/metrics` gauges. Each is None when not scraped within
/// three scrape intervals (vLLM down, nothing configured): a gauge never shows stale data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VllmLatest {
    /// Generated tokens per second.
    pub gen_tps: Option<f64>,
    /// Prompt tokens per second.
    pub prompt_tps: Option<f64>,
    /// Requests running.
    pub running: Option<f64>,
    /// Requests waiting.
    pub waiting: Option<f64>,
    /// KV-cache usage, fraction 0..=1.
    pub kv_cache: Option<f64>,
}

/// The telemetry store and its feeding tasks. Cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    store: Arc<Mutex<Store>>,
    keep_ms: i64,
    /// How old a point may be and still count as the current value.
    fresh_ms: i64,
}

impl Telemetry {
    /// An empty store (no tasks).
    pub fn new(settings: &TelemetrySettings) -> Self {
        Telemetry {
            store: Arc::new(Mutex::new(Store::default())),
            keep_ms: i64::try_from(settings.keep.as_millis()).unwrap_or(i64::MAX),
            fresh_ms: i64::try_from(settings.scrape_interval.as_millis() * 3).unwrap_or(i64::MAX),
        }
    }

    /// Starts the feeds: observations from `status`, and the `/metrics` scrape.
    pub fn spawn(
        settings: TelemetrySettings,
        status: tw::Receiver<Arc<Status>>,
        shutdown: CancellationToken,
    ) -> Self {
        let t = Telemetry::new(&settings);
        let obs = t.clone();
        let mut rx = status.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = rx.changed() => if r.is_err() { return },
                    _ = stop.cancelled() => return,
                }
                let observed = rx.borrow_and_update().observed.clone();
                obs.record_observation(&observed);
            }
        });
        let scr = t.clone();
        tokio::spawn(async move {
            let http = crate::observe::probe_client();
            let mut tick = tokio::time::interval(settings.scrape_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.cancelled() => return,
                }
                // Every deployment's head, first deployment first.
                let targets: Vec<(String, Option<String>)> = {
                    let s = status.borrow();
                    s.desired.as_ref().map_or_else(Vec::new, |d| {
                        d.deployments()
                            .into_iter()
                            .map(|x| {
                                let url = d.hosts.get(&x.cluster.head).map(|h| {
                                    format!("http://{}:{}/metrics", h.address, x.cluster.port)
                                });
                                (x.name, url)
                            })
                            .collect()
                    })
                };
                scr.set_deployments(targets.iter().map(|(n, _)| n.as_str()));
                // All at once: one slow vLLM does not delay the others' points.
                let scrapes = targets.into_iter().filter_map(|(name, url)| {
                    let url = url?;
                    let http = http.clone();
                    Some(async move {
                        let body = match http.get(&url).send().await {
                            Ok(r) if r.status().is_success() => r.text().await.ok(),
                            _ => None,
                        };
                        (name, body)
                    })
                });
                for (name, body) in futures::future::join_all(scrapes).await {
                    if let Some(body) = body {
                        scr.record_vllm(&name, Instant::now(), &vllm::parse(&body));
                    }
                }
            }
        });
        t
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        // Poisoning only means a panic elsewhere; the series stay usable.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the GPUs and round trips of an observation (once per generation).
    pub fn record_observation(&self, o: &Observed) {
        let now = Utc::now().timestamp_millis();
        let keep = self.keep_ms;
        let mut s = self.lock();
        if o.generation == 0 || o.generation == s.last_generation {
            return;
        }
        s.last_generation = o.generation;
        for (name, h) in &o.hosts {
            let hs = s.hosts.entry(name.clone()).or_default();
            if let Some(rtt) = h.rtt_ms {
                hs.rtt_ms.push(now, rtt, keep);
            }
            let Some(gpus) = h.gpus.get().filter(|g| !g.is_empty()) else {
                continue;
            };
            let n = gpus.len() as f64;
            hs.gpu_util
                .push(now, gpus.iter().map(|g| g.util_pct).sum::<f64>() / n, keep);
            hs.mem_used_mib
                .push(now, gpus.iter().map(|g| g.mem_used_mib as f64).sum(), keep);
            hs.temp_c.push(
                now,
                gpus.iter().map(|g| g.temp_c).fold(f64::MIN, f64::max),
                keep,
            );
            hs.power_w
                .push(now, gpus.iter().map(|g| g.power_w).sum(), keep);
            let total: u64 = gpus.iter().map(|g| g.mem_total_mib).sum();
            if total > 0 {
                hs.mem_total_mib = Some(total as f64);
            }
        }
    }

    /// The configured deployments, first first: series of others are dropped.
    pub fn set_deployments<'a>(&self, names: impl Iterator<Item = &'a str>) {
        let names: Vec<&str> = names.collect();
        let mut s = self.lock();
        s.first = names.first().map(|n| n.to_string());
        s.vllm.retain(|k, _| names.contains(&k.as_str()));
    }

    /// Records one `/metrics` scrape of deployment `deployment`'s vLLM taken at `at`.
    pub fn record_vllm(&self, deployment: &str, at: Instant, sample: &VllmSample) {
        let now = Utc::now().timestamp_millis();
        let keep = self.keep_ms;
        let mut store = self.lock();
        if store.first.is_none() {
            store.first = Some(deployment.to_string());
        }
        let s = store.vllm.entry(deployment.to_string()).or_default();
        if let Some(v) = sample.running {
            s.running.push(now, v, keep);
        }
        if let Some(v) = sample.waiting {
            s.waiting.push(now, v, keep);
        }
        if let Some(v) = sample.kv_cache {
            s.kv_cache.push(now, v, keep);
        }
        if let Some((t0, prev)) = s.last_counters.take() {
            let dt = at.saturating_duration_since(t0).as_secs_f64();
            if let Some(r) = vllm::rate(prev.generation_tokens, sample.generation_tokens, dt) {
                s.gen_tps.push(now, r, keep);
            }
            if let Some(r) = vllm::rate(prev.prompt_tokens, sample.prompt_tokens, dt) {
                s.prompt_tps.push(now, r, keep);
            }
        }
        s.last_counters = Some((at, sample.clone()));
    }

    /// The first deployment's current vLLM values (see [`VllmLatest`]).
    pub fn vllm_latest(&self) -> VllmLatest {
        self.vllm_latest_at(Utc::now().timestamp_millis())
    }

    /// The first deployment's vLLM values current at `now_ms` (unix ms).
    pub fn vllm_latest_at(&self, now_ms: i64) -> VllmLatest {
        let first = self.lock().first.clone();
        first.map_or_else(VllmLatest::default, |f| self.vllm_latest_of(&f, now_ms))
    }

    /// Deployment `deployment`'s vLLM values current at `now_ms` (unix ms).
    pub fn vllm_latest_of(&self, deployment: &str, now_ms: i64) -> VllmLatest {
        let min = now_ms.saturating_sub(self.fresh_ms);
        let store = self.lock();
        let Some(s) = store.vllm.get(deployment) else {
            return VllmLatest::default();
        };
        VllmLatest {
            gen_tps: s.gen_tps.last_since(min),
            prompt_tps: s.prompt_tps.last_since(min),
            running: s.running.last_since(min),
            waiting: s.waiting.last_since(min),
            kv_cache: s.kv_cache.last_since(min),
        }
    }

    /// The series, points after `since_ms` (unix ms) only when given.
    pub fn snapshot(&self, since_ms: Option<i64>) -> TelemetryWire {
        let s = self.lock();
        TelemetryWire {
            hosts: s
                .hosts
                .iter()
                .map(|(name, h)| {
                    (
                        name.clone(),
                        HostWire {
                            gpu_util: h.gpu_util.since(since_ms),
                            mem_used_mib: h.mem_used_mib.since(since_ms),
                            mem_total_mib: h.mem_total_mib,
                            temp_c: h.temp_c.since(since_ms),
                            power_w: h.power_w.since(since_ms),
                            rtt_ms: h.rtt_ms.since(since_ms),
                        },
                    )
                })
                .collect(),
            vllm: s
                .first
                .as_ref()
                .and_then(|f| s.vllm.get(f))
                .map(|v| v.wire(since_ms))
                .unwrap_or_default(),
            deployments: s
                .vllm
                .iter()
                .map(|(name, v)| (name.clone(), v.wire(since_ms)))
                .collect(),
        }
    }
}

impl VllmSeries {
    fn wire(&self, since_ms: Option<i64>) -> VllmWire {
        VllmWire {
            gen_tps: self.gen_tps.since(since_ms),
            prompt_tps: self.prompt_tps.since(since_ms),
            running: self.running.since(since_ms),
            waiting: self.waiting.since(since_ms),
            kv_cache: self.kv_cache.since(since_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::observed::{Fact, GpuObserved, HostObserved};

    #[test]
    fn observations_become_points_once_per_generation() {
        let t = Telemetry::new(&TelemetrySettings::default());
        let mut o = Observed {
            generation: 1,
            ..Observed::default()
        };
        // GB10 as the real parser reads it: memory [N/A] → 0.
        let gpus = crate::observe::parse::nvidia_smi(&[
            "0, NVIDIA GB10, 96, [N/A], [N/A], 71, 83.15".to_string(),
        ])
        .expect("parses");
        o.hosts.insert(
            "spark1".into(),
            HostObserved {
                rtt_ms: Some(1.5),
                gpus: Fact::known_now(gpus),
                ..HostObserved::default()
            },
        );
        o.hosts.insert(
            "spark2".into(),
            HostObserved {
                gpus: Fact::known_now(vec![
                    GpuObserved {
                        util_pct: 10.0,
                        mem_used_mib: 100,
                        mem_total_mib: 1000,
                        temp_c: 40.0,
                        power_w: 5.0,
                        ..GpuObserved::default()
                    },
                    GpuObserved {
                        util_pct: 30.0,
                        mem_used_mib: 300,
                        mem_total_mib: 1000,
                        temp_c: 60.0,
                        power_w: 7.0,
                        ..GpuObserved::default()
                    },
                ]),
                ..HostObserved::default()
            },
        );
        t.record_observation(&o);
        t.record_observation(&o); // same generation: nothing new
        let w = t.snapshot(None);
        let s1 = &w.hosts["spark1"];
        assert_eq!(s1.gpu_util.len(), 1);
        assert_eq!(s1.gpu_util[0].1, 96.0);
        assert_eq!(s1.mem_used_mib[0].1, 0.0);
        assert_eq!(s1.mem_total_mib, None);
        assert_eq!(s1.power_w[0].1, 83.15);
        assert_eq!(s1.rtt_ms[0].1, 1.5);
        let s2 = &w.hosts["spark2"];
        assert_eq!(
            (
                s2.gpu_util[0].1,
                s2.mem_used_mib[0].1,
                s2.temp_c[0].1,
                s2.power_w[0].1
            ),
            (20.0, 400.0, 60.0, 12.0)
        );
        assert_eq!(s2.mem_total_mib, Some(2000.0));
        assert!(s2.rtt_ms.is_empty());
    }

    #[test]
    fn vllm_rates_from_counter_deltas() {
        let t = Telemetry::new(&TelemetrySettings::default());
        let t0 = Instant::now();
        let sample = |gen: f64| VllmSample {
            generation_tokens: Some(gen),
            prompt_tokens: Some(gen * 2.0),
            running: Some(1.0),
            waiting: Some(0.0),
            kv_cache: Some(0.25),
        };
        t.record_vllm("default", t0, &sample(100.0));
        std::thread::sleep(Duration::from_millis(5));
        t.record_vllm("default", t0 + Duration::from_secs(2), &sample(300.0));
        let w = t.snapshot(None);
        assert_eq!(w.vllm.running.len(), 2);
        assert_eq!(w.vllm.gen_tps.len(), 1);
        assert_eq!(w.vllm.gen_tps[0].1, 100.0);
        assert_eq!(w.vllm.prompt_tps[0].1, 200.0);
        assert_eq!(w.vllm.kv_cache[0].1, 0.25);
        let latest = t.vllm_latest();
        assert_eq!(latest.gen_tps, Some(100.0));
        assert_eq!(latest.kv_cache, Some(0.25));
        assert_eq!(latest.waiting, Some(0.0));
    }

    #[test]
    fn stale_vllm_values_are_not_current() {
        let t = Telemetry::new(&TelemetrySettings {
            scrape_interval: Duration::from_secs(5),
            keep: Duration::from_secs(3600),
        });
        t.record_vllm(
            "default",
            Instant::now(),
            &VllmSample {
                running: Some(2.0),
                ..VllmSample::default()
            },
        );
        let now = Utc::now().timestamp_millis();
        assert_eq!(t.vllm_latest_at(now).running, Some(2.0));
        // Past three scrape intervals (15 s) the point is no longer the current value.
        assert_eq!(t.vllm_latest_at(now + 16_000), VllmLatest::default());
        assert_eq!(
            t.snapshot(None).vllm.running.len(),
            1,
            "the history keeps it"
        );
    }

    #[test]
    fn each_deployment_has_its_own_series_and_the_first_is_also_vllm() {
        let t = Telemetry::new(&TelemetrySettings::default());
        t.set_deployments(["coder", "vision"].into_iter());
        let at = Instant::now();
        let running = |v: f64| VllmSample {
            running: Some(v),
            generation_tokens: Some(v * 100.0),
            ..VllmSample::default()
        };
        t.record_vllm("vision", at, &running(5.0));
        t.record_vllm("coder", at, &running(1.0));
        // Points are one per wall-clock millisecond at most.
        std::thread::sleep(Duration::from_millis(3));
        t.record_vllm("vision", at + Duration::from_secs(1), &running(6.0));
        let now = Utc::now().timestamp_millis();
        assert_eq!(t.vllm_latest_of("vision", now).running, Some(6.0));
        assert_eq!(t.vllm_latest_of("vision", now).gen_tps, Some(100.0));
        assert_eq!(t.vllm_latest_of("coder", now).running, Some(1.0));
        assert_eq!(t.vllm_latest_of("coder", now).gen_tps, None);
        assert_eq!(t.vllm_latest().running, Some(1.0), "the first is coder");
        let w = t.snapshot(None);
        assert_eq!(w.vllm, w.deployments["coder"]);
        assert_eq!(w.deployments["vision"].running.len(), 2);
        // A deployment removed from the file loses its series.
        t.set_deployments(["vision"].into_iter());
        let w = t.snapshot(None);
        assert!(!w.deployments.contains_key("coder"));
        assert_eq!(w.vllm, w.deployments["vision"]);
    }
}
