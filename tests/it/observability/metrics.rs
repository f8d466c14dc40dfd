//! `/metrics` of a running demo after real traffic through its proxy: the new series are
//! there with values the world agrees with (`/proc` of the process, the requests sent, the
//! statuses received), and `promtool check metrics` finds nothing to complain about.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::json;

use super::{client, start_demo};
use crate::demo::wait_for;

const QWEN36: &str = "RedHatAI/Qwen3.6-35B-A3B-NVFP4";

/// `series{labels}` → value, from the text exposition.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let v = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().ok()?,
            };
            Some((series.to_string(), v))
        })
        .collect()
}

async fn try_scrape(base: &str) -> Option<(String, BTreeMap<String, f64>)> {
    let text = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let parsed = parse(&text);
    Some((text, parsed))
}

async fn scrape(base: &str) -> (String, BTreeMap<String, f64>) {
    try_scrape(base).await.expect("GET /metrics")
}

fn get(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    *m.get(series).unwrap_or_else(|| {
        panic!(
            "{series} missing; have:\n{:#?}",
            m.keys().collect::<Vec<_>>()
        )
    })
}

/// `/proc/<pid>/stat` start time (unix s) and `VmRSS` (bytes), read by the test itself.
fn proc_view(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect(")") + 1..];
    let start_ticks: f64 = after
        .split_whitespace()
        .nth(19)
        .expect("starttime")
        .parse()
        .expect("n");
    let btime: f64 = std::fs::read_to_string("/proc/stat")
        .expect("/proc/stat")
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
        .expect("btime");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rss_kib: f64 = status
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .expect("VmRSS");
    (btime + start_ticks / 100.0, rss_kib * 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_controller_exposes_proxy_gpu_vllm_swap_and_process_series() {
    let run = start_demo(&[], Stdio::null());
    let base = run.base.clone();
    let http = client();
    wait_for("the model ready in /metrics", 90, async || {
        try_scrape(&base)
            .await
            .is_some_and(|(_, m)| m.get("spark_control_vllm_ready") == Some(&1.0))
    })
    .await;

    // Traffic: a streamed completion for the served model, one for a model nobody serves.
    let chat = |model: &str| {
        json!({"model": model, "stream": true, "max_tokens": 8,
               "messages": [{"role": "user", "content": "hello"}]})
    };
    let r = http
        .post(format!("{base}/v1/chat/completions"))
        .json(&chat(QWEN36))
        .send()
        .await
        .expect("chat");
    assert_eq!(r.status(), 200);
    assert!(r.text().await.expect("stream").contains("data:"));
    let r = http
        .post(format!("{base}/v1/chat/completions"))
        .json(&chat("no-such-model"))
        .send()
        .await
        .expect("chat");
    let unknown_status = r.status().as_u16();
    assert!(unknown_status >= 400, "{unknown_status}");
    let _ = r.bytes().await;

    // vLLM's load arrives with the telemetry scrape (every 5 s; a rate needs two).
    wait_for("vLLM gauges in /metrics", 30, async || {
        scrape(&base)
            .await
            .1
            .keys()
            .any(|k| k.starts_with("spark_control_vllm_generation_tokens_per_second{"))
    })
    .await;
    let (_, m) = scrape(&base).await;

    assert_eq!(
        get(
            &m,
            &format!(
                "spark_control_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        1.0
    );
    for host in ["spark1", "spark2"] {
        assert_eq!(
            get(&m, &format!("spark_control_host_up{{host=\"{host}\"}}")),
            1.0
        );
    }
    let services: Vec<_> = m
        .iter()
        .filter(|(k, _)| k.starts_with("spark_control_service_up{"))
        .collect();
    assert!(
        services.iter().any(|(k, _)| k.contains("parakeet")),
        "{services:?}"
    );
    assert!(
        services.iter().all(|(_, v)| **v == 0.0 || **v == 1.0),
        "{services:?}"
    );

    // GPUs of the simulated head (the model runs there).
    let util = get(
        &m,
        "spark_control_gpu_utilization_ratio{host=\"spark1\",gpu=\"0\"}",
    );
    assert!((0.0..=1.0).contains(&util), "{util}");
    assert!(
        get(
            &m,
            "spark_control_gpu_temperature_celsius{host=\"spark1\",gpu=\"0\"}"
        ) > 0.0
    );
    assert!(
        get(
            &m,
            "spark_control_gpu_power_watts{host=\"spark1\",gpu=\"0\"}"
        ) > 0.0
    );
    let total = get(
        &m,
        "spark_control_gpu_memory_total_bytes{host=\"spark1\",gpu=\"0\"}",
    );
    let used = get(
        &m,
        "spark_control_gpu_memory_used_bytes{host=\"spark1\",gpu=\"0\"}",
    );
    assert!(total > 0.0 && used <= total, "{used} of {total}");

    // vLLM's load, labelled with the active model.
    let v = "{deployment=\"default\",model=\"qwen36\"}";
    let kv = get(&m, &format!("spark_control_vllm_kv_cache_usage_ratio{v}"));
    assert!((0.0..=1.0).contains(&kv), "{kv}");
    assert!(get(&m, &format!("spark_control_vllm_requests_running{v}")) >= 0.0);
    assert!(get(&m, &format!("spark_control_vllm_requests_waiting{v}")) >= 0.0);
    assert!(
        get(
            &m,
            &format!("spark_control_vllm_generation_tokens_per_second{v}")
        ) >= 0.0
    );

    // The first launch is a swap caused by "start", and took at least the model's load.
    let s = "{cause=\"start\",result=\"succeeded\"}";
    assert_eq!(
        get(&m, &format!("spark_control_swap_duration_seconds_count{s}")),
        1.0
    );
    assert!(get(&m, &format!("spark_control_swap_duration_seconds_sum{s}")) >= 1.5);

    // The proxy: exact codes, the request's model as label, time to first byte.
    let l = format!("route=\"chat_completions\",deployment=\"default\",model=\"{QWEN36}\"");
    assert_eq!(
        get(
            &m,
            &format!("spark_proxy_requests_total{{{l},code=\"200\"}}")
        ),
        1.0
    );
    // A model nothing serves is answered by the proxy itself: no deployment took it.
    let u = "route=\"chat_completions\",deployment=\"none\",model=\"no-such-model\"";
    assert_eq!(
        get(
            &m,
            &format!("spark_proxy_requests_total{{{u},code=\"{unknown_status}\"}}")
        ),
        1.0
    );
    assert_eq!(
        get(
            &m,
            &format!("spark_proxy_time_to_first_byte_seconds_count{{{l}}}")
        ),
        1.0
    );
    let ttft = get(
        &m,
        &format!("spark_proxy_time_to_first_byte_seconds_sum{{{l}}}"),
    );
    let whole = get(
        &m,
        &format!("spark_proxy_request_duration_seconds_sum{{{l}}}"),
    );
    assert!(ttft > 0.0 && ttft <= whole, "ttft {ttft} of {whole}");
    assert_eq!(get(&m, &format!("spark_proxy_in_flight{{{l}}}")), 0.0);

    // The process, as /proc sees it.
    let (started, rss) = proc_view(run.demo.0.id());
    let reported = get(&m, "process_start_time_seconds");
    assert!((reported - started).abs() < 1.0, "{reported} vs {started}");
    let reported_rss = get(&m, "process_resident_memory_bytes");
    assert!(
        reported_rss > rss / 2.0 && reported_rss < rss * 2.0,
        "{reported_rss} vs {rss}"
    );
    assert!(get(&m, "process_open_fds") >= 3.0);
    assert!(get(&m, "process_max_fds") >= get(&m, "process_open_fds"));
    assert!(get(&m, "process_cpu_seconds_total") > 0.0);

    // A swap made through the API the UI uses is counted under its cause.
    let r = http
        .post(format!("{base}/api/desired/edit"))
        .json(&json!({"op": "activate", "model": "gemma4"}))
        .send()
        .await
        .expect("activate");
    assert!(r.status().is_success(), "activate: {}", r.status());
    let swapped = "spark_control_swap_duration_seconds_count{cause=\"swap\",result=\"succeeded\"}";
    wait_for("the swap counted", 90, async || {
        try_scrape(&base)
            .await
            .is_some_and(|(_, m)| m.get(swapped) == Some(&1.0))
    })
    .await;
    let (text, m) = scrape(&base).await;
    assert_eq!(
        get(&m, &format!("spark_control_swap_duration_seconds_count{s}")),
        1.0
    );
    assert!(
        get(
            &m,
            "spark_control_swap_duration_seconds_sum{cause=\"swap\",result=\"succeeded\"}"
        ) >= 1.5
    );

    // Prometheus' own linter.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian: apt-get install prometheus)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = promtool.wait_with_output().expect("promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    assert!(run.stop().await.success());
}
