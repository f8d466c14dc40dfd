//! `GET /metrics`: Prometheus text exposition of the loop's counters, host reachability,
//! service health, vLLM readiness, SSH connections per host, then whatever the metrics
//! hook appends (the proxy's counters). Must not: compute anything expensive or block.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::read::snapshot;
use super::AppState;
use crate::status::Outcome;

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The text, also used by tests.
pub fn render(state: &AppState) -> String {
    let m = &state.handle.metrics;
    let s = snapshot(state);
    let mut out = String::new();
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);

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
        "1 when the host answered the last poll over SSH, 0 when not; absent when unknown.",
    );
    for (name, h) in &s.observed.hosts {
        if let Some(up) = h.reachable.get() {
            let _ = writeln!(
                out,
                "spark_control_host_up{{host=\"{}\"}} {}",
                esc(name),
                u8::from(*up)
            );
        }
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
        "1 when the service's health check passed, 0 when it failed; absent when unknown.",
    );
    for (name, f) in &s.observed.services {
        if let Some(up) = f.get() {
            let _ = writeln!(
                out,
                "spark_control_service_up{{service=\"{}\"}} {}",
                esc(name),
                u8::from(*up)
            );
        }
    }
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
    if let Some(hook) = &state.metrics_hook {
        hook(&mut out);
    }
    out
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
