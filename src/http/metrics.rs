//! `GET /metrics`: Prometheus text exposition of the build, the loop's counters and swap
//! durations, host reachability and GPUs, service health, vLLM readiness and load, SSH
//! connections per host, this process (`process_*`), then whatever the metrics hook
//! appends (the proxy's counters). Must not: compute anything expensive or block.
//!
//! Every host and service of the desired file always has its `_up` series (0 when
//! unknown), so an alert on `== 0` fires before the first answer too. GPU and vLLM gauges
//! appear only while their data is current: a stale value is worse than a gap.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::read::snapshot;
use super::AppState;
use crate::status::Outcome;

use crate::prom::{esc, family, sample};

/// The text, also used by tests.
pub fn render(state: &AppState) -> String {
    let m = &state.handle.metrics;
    let s = snapshot(state);
    let mut out = String::new();
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);

    family(
        &mut out,
        "spark_control_build_info",
        "gauge",
        "Always 1; the labels say which build runs.",
    );
    sample(
        &mut out,
        "spark_control_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );

    family(
        &mut out,
        "spark_control_polls_total",
        "counter",
        "Completed observations of the hosts.",
    );
    let _ = writeln!(out, "spark_control_polls_total {}", get(&m.polls));
    family(
        &mut out,
        "spark_control_poll_seconds_total",
        "counter",
        "Total time spent observing.",
    );
    let _ = writeln!(
        out,
        "spark_control_poll_seconds_total {:.3}",
        get(&m.poll_ms_total) as f64 / 1000.0
    );
    family(
        &mut out,
        "spark_control_plans_total",
        "counter",
        "Plans computed.",
    );
    let _ = writeln!(out, "spark_control_plans_total {}", get(&m.plans));
    family(
        &mut out,
        "spark_control_operations_total",
        "counter",
        "Operations (reconcile runs) by result.",
    );
    for (result, n) in [
        ("succeeded", get(&m.ops_succeeded)),
        ("failed", get(&m.ops_failed)),
        ("cancelled", get(&m.ops_cancelled)),
    ] {
        let _ = writeln!(
            out,
            "spark_control_operations_total{{result=\"{result}\"}} {n}"
        );
    }
    family(
        &mut out,
        "spark_control_operation_seconds_total",
        "counter",
        "Total time spent in operations (all results).",
    );
    let _ = writeln!(
        out,
        "spark_control_operation_seconds_total {:.3}",
        get(&m.op_ms_total) as f64 / 1000.0
    );
    family(
        &mut out,
        "spark_control_operation_running",
        "gauge",
        "1 while an operation runs.",
    );
    let _ = writeln!(
        out,
        "spark_control_operation_running {}",
        u8::from(s.busy())
    );
    if let Some(op) = s
        .operation
        .as_ref()
        .filter(|o| o.outcome != Outcome::Running)
    {
        if let Some(end) = op.finished_at {
            family(
                &mut out,
                "spark_control_last_operation_seconds",
                "gauge",
                "Duration of the last finished operation.",
            );
            let ms = (end - op.started_at).num_milliseconds().max(0);
            let _ = writeln!(
                out,
                "spark_control_last_operation_seconds {:.3}",
                ms as f64 / 1000.0
            );
        }
    }
    family(
        &mut out,
        "spark_control_backoff_failures",
        "gauge",
        "Consecutive failures of the current plan.",
    );
    let _ = writeln!(
        out,
        "spark_control_backoff_failures {}",
        s.backoff.as_ref().map_or(0, |b| b.failures)
    );
    family(
        &mut out,
        "spark_control_desired_valid",
        "gauge",
        "1 when a valid desired state is in force.",
    );
    let _ = writeln!(
        out,
        "spark_control_desired_valid {}",
        u8::from(s.desired.is_some())
    );

    family(
        &mut out,
        "spark_control_host_up",
        "gauge",
        "1 when the host answered the last poll over SSH, 0 when it did not or is not known yet.",
    );
    for name in known_names(
        s.desired.as_ref().map(|d| d.hosts.keys()),
        s.observed.hosts.keys(),
    ) {
        let up = s
            .observed
            .hosts
            .get(&name)
            .and_then(|h| h.reachable.get().copied())
            .unwrap_or(false);
        sample(
            &mut out,
            "spark_control_host_up",
            &[("host", &name)],
            f64::from(u8::from(up)),
        );
    }
    family(
        &mut out,
        "spark_control_host_rtt_seconds",
        "gauge",
        "SSH round trip of the last poll.",
    );
    for (name, h) in &s.observed.hosts {
        if let Some(ms) = h.rtt_ms {
            let _ = writeln!(
                out,
                "spark_control_host_rtt_seconds{{host=\"{}\"}} {:.4}",
                esc(name),
                ms / 1000.0
            );
        }
    }
    family(
        &mut out,
        "spark_control_service_up",
        "gauge",
        "1 when the service's health check passed, 0 when it failed or is not known yet.",
    );
    for name in known_names(
        s.desired.as_ref().map(|d| d.services.keys()),
        s.observed.services.keys(),
    ) {
        let up = s
            .observed
            .services
            .get(&name)
            .and_then(|f| f.get().copied())
            .unwrap_or(false);
        sample(
            &mut out,
            "spark_control_service_up",
            &[("service", &name)],
            f64::from(u8::from(up)),
        );
    }
    gpus(&mut out, &s.observed);
    family(
        &mut out,
        "spark_control_vllm_ready",
        "gauge",
        "1 when vLLM lists the active model.",
    );
    let ready = super::read::endpoints_of_status(&s);
    let _ = writeln!(out, "spark_control_vllm_ready {}", u8::from(ready));
    family(
        &mut out,
        "spark_control_ssh_connections_opened_total",
        "counter",
        "SSH connections opened per host.",
    );
    let conns = state.handle.hosts.borrow().connections();
    for (host, n) in conns {
        let _ = writeln!(
            out,
            "spark_control_ssh_connections_opened_total{{host=\"{}\"}} {n}",
            esc(&host)
        );
    }
    // Telemetry scrapes every deployment's vLLM; one series per deployment.
    let now_ms = chrono::Utc::now().timestamp_millis();
    let loads: Vec<(String, String, crate::telemetry::VllmLatest)> = match s.desired.as_ref() {
        Some(d) => d
            .deployments()
            .into_iter()
            .map(|x| {
                let latest = state.handle.telemetry.vllm_latest_of(&x.name, now_ms);
                let active = x.active_model.clone().unwrap_or_else(|| "none".into());
                (x.name, active, latest)
            })
            .collect(),
        None => Vec::new(),
    };
    vllm_load(&mut out, &loads);
    m.swaps.render(&mut out);
    crate::prom::process::render(&mut out);
    if let Some(hook) = &state.metrics_hook {
        hook(&mut out);
    }
    out
}

/// Names of the desired file and of the observation, sorted, once each.
fn known_names<'a>(
    desired: Option<impl Iterator<Item = &'a String>>,
    observed: impl Iterator<Item = &'a String>,
) -> std::collections::BTreeSet<String> {
    desired
        .into_iter()
        .flatten()
        .chain(observed)
        .cloned()
        .collect()
}

/// Per-GPU gauges of every host whose GPUs the last poll read. Memory only where the GPU
/// reports it (the GB10's unified memory reads `[N/A]`).
fn gpus(out: &mut String, observed: &crate::model::Observed) {
    type Pick = fn(&crate::model::observed::GpuObserved) -> Option<f64>;
    let families: [(&str, &str, Pick); 5] = [
        (
            "spark_control_gpu_utilization_ratio",
            "GPU utilisation, 0..1 (nvidia-smi).",
            |g| Some(g.util_pct / 100.0),
        ),
        (
            "spark_control_gpu_temperature_celsius",
            "GPU temperature.",
            |g| Some(g.temp_c),
        ),
        ("spark_control_gpu_power_watts", "GPU power draw.", |g| {
            Some(g.power_w)
        }),
        (
            "spark_control_gpu_memory_used_bytes",
            "GPU memory used (absent on unified memory).",
            |g| (g.mem_total_mib > 0).then_some(g.mem_used_mib as f64 * 1_048_576.0),
        ),
        (
            "spark_control_gpu_memory_total_bytes",
            "GPU memory total (absent on unified memory).",
            |g| (g.mem_total_mib > 0).then_some(g.mem_total_mib as f64 * 1_048_576.0),
        ),
    ];
    for (name, help, pick) in families {
        family(out, name, "gauge", help);
        for (host, h) in &observed.hosts {
            for g in h.gpus.get().into_iter().flatten() {
                if let Some(v) = pick(g).filter(|v| v.is_finite()) {
                    let index = g.index.to_string();
                    sample(out, name, &[("host", host), ("gpu", &index)], v);
                }
            }
        }
    }
}

/// vLLM's load from the telemetry scrape, labelled with its deployment and active model.
fn vllm_load(out: &mut String, loads: &[(String, String, crate::telemetry::VllmLatest)]) {
    type Pick = fn(&crate::telemetry::VllmLatest) -> Option<f64>;
    let families: [(&str, &str, Pick); 5] = [
        (
            "spark_control_vllm_generation_tokens_per_second",
            "Generated tokens per second (between the last two scrapes of vLLM).",
            |v| v.gen_tps,
        ),
        (
            "spark_control_vllm_prompt_tokens_per_second",
            "Prompt tokens per second (between the last two scrapes of vLLM).",
            |v| v.prompt_tps,
        ),
        (
            "spark_control_vllm_requests_running",
            "Requests vLLM is running.",
            |v| v.running,
        ),
        (
            "spark_control_vllm_requests_waiting",
            "Requests waiting in vLLM's queue.",
            |v| v.waiting,
        ),
        (
            "spark_control_vllm_kv_cache_usage_ratio",
            "vLLM's KV-cache usage, 0..1.",
            |v| v.kv_cache,
        ),
    ];
    for (name, help, pick) in families {
        family(out, name, "gauge", help);
        for (deployment, model, latest) in loads {
            if let Some(value) = pick(latest) {
                let labels = [
                    ("deployment", deployment.as_str()),
                    ("model", model.as_str()),
                ];
                sample(out, name, &labels, value);
            }
        }
    }
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&state),
    )
}
