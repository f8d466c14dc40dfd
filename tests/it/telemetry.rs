//! Telemetry on two real sshd "Sparks": GPU series from each host's `nvidia-smi` shim,
//! SSH round trips, and vLLM throughput scraped from the fake vLLM's `/metrics` while
//! real completions run through it. Also the demo, which must show a download
//! progressing and these plots moving.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::downloads::api;
use crate::harness::cluster::{Cluster, HEAD};

const QWEN36: &str = "RedHatAI/Qwen3.6-35B-A3B-NVFP4";

fn values(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(|p| p[1].as_f64()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_rtt_and_vllm_throughput_series() {
    let mut c = Cluster::new(300);
    c.set_repo_size(64 * 1024);
    c.start_controller();
    c.wait_serving(QWEN36, 60).await;
    // Load: a few completions, one after another, for a couple of seconds.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .no_proxy()
        .build()
        .expect("client");
    let url = format!("http://{HEAD}:{}/v1/completions", c.vllm_port);
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let r = http
            .post(&url)
            .json(&json!({ "model": QWEN36, "prompt": "Tell me about the DGX Spark.", "max_tokens": 64 }))
            .send()
            .await
            .expect("completion");
        assert!(r.status().is_success());
        let _ = r.bytes().await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (s, t) = api(&c, "GET", "/api/telemetry", None).await;
    assert_eq!(s, 200, "{t}");
    // GPUs: the head runs the model (busy), the worker idles; both report memory totals.
    let head = &t["hosts"]["spark1"];
    let worker = &t["hosts"]["spark2"];
    let head_util = values(&head["gpu_util"]);
    assert!(head_util.len() >= 3, "{head}");
    assert_eq!(
        head_util.last(),
        Some(&87.0),
        "the head's GPU is busy: {head}"
    );
    assert_eq!(values(&worker["gpu_util"]).last(), Some(&0.0), "{worker}");
    assert_eq!(head["mem_total_mib"], 122880.0);
    assert!(values(&head["temp_c"]).iter().all(|v| *v > 0.0));
    assert!(values(&head["power_w"]).iter().all(|v| *v > 0.0));
    // SSH round trips: real, small, positive.
    let rtt = values(&worker["rtt_ms"]);
    assert!(
        !rtt.is_empty() && rtt.iter().all(|v| *v > 0.0 && *v < 5000.0),
        "{rtt:?}"
    );
    // vLLM: tokens were generated, so some scrape saw a positive rate; gauges present.
    let gen = values(&t["vllm"]["gen_tps"]);
    assert!(gen.iter().any(|v| *v > 0.0), "gen_tps {gen:?}");
    assert!(gen.iter().all(|v| *v >= 0.0));
    assert!(values(&t["vllm"]["prompt_tps"]).iter().any(|v| *v > 0.0));
    assert!(!values(&t["vllm"]["running"]).is_empty());
    let kv = values(&t["vllm"]["kv_cache"]);
    assert!(
        !kv.is_empty() && kv.iter().all(|v| (0.0..=1.0).contains(v)),
        "{kv:?}"
    );
    // Time stamps increase; `since` returns only newer points.
    let pts = head["gpu_util"].as_array().expect("points");
    let ts: Vec<i64> = pts.iter().filter_map(|p| p[0].as_i64()).collect();
    assert!(ts.windows(2).all(|w| w[1] > w[0]), "{ts:?}");
    let mid = ts[ts.len() / 2];
    let (_, later) = api(&c, "GET", &format!("/api/telemetry?since={mid}"), None).await;
    let later_ts: Vec<i64> = later["hosts"]["spark1"]["gpu_util"]
        .as_array()
        .expect("points")
        .iter()
        .filter_map(|p| p[0].as_i64())
        .collect();
    assert!(!later_ts.is_empty() && later_ts.iter().all(|t| *t > mid));
    assert!(later_ts.len() < ts.len() + 5);
    let (s, _) = api(&c, "GET", "/api/telemetry?since=-1", None).await;
    assert_eq!(s, 400);
}

/// `spark-control demo` shows a download progressing (fake Hub sizes), telemetry plots
/// moving and the launcher's upstream two commits ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_shows_download_progress_telemetry_and_updates() {
    use crate::harness::sshd::free_port;
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(self.0.id().to_string())
                .status();
            let _ = self.0.wait();
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("demo-dl-")
        .tempdir()
        .expect("tempdir");
    let port = free_port("127.0.0.1");
    let (vllm, stt) = (free_port("127.0.0.2"), free_port("127.0.0.3"));
    let mut tts = free_port("127.0.0.3");
    while tts == stt {
        tts = free_port("127.0.0.3");
    }
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_spark-control"))
        .args(["demo", "--dir"])
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--vllm-port", &vllm.to_string()])
        .args([
            "--stt-port",
            &stt.to_string(),
            "--tts-port",
            &tts.to_string(),
        ])
        .args(["--startup-delay-ms", "1000"])
        .env_remove("HF_ENDPOINT")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the demo");
    let _demo = Kill(child);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .expect("client");
    let get = |path: &str| {
        let url = format!("http://127.0.0.1:{port}{path}");
        let client = client.clone();
        async move {
            let r = client.get(url).send().await.ok()?;
            r.json::<Value>().await.ok()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut percents = Vec::new();
    let mut gpu_points = Vec::new();
    let mut behind = None;
    loop {
        if let Some(jobs) = get("/api/downloads").await {
            if let Some(j) = jobs.as_array().and_then(|a| a.first()) {
                if let Some(p) = j["hosts"][0]["percent"].as_f64() {
                    percents.push(p);
                }
                if j["state"] == "done" && gpu_points.last().is_some_and(|n| *n >= 3) {
                    if let Some(u) = get("/api/updates").await {
                        behind = u["behind"].as_u64();
                    }
                    if behind == Some(2) {
                        break;
                    }
                }
            }
        }
        if let Some(t) = get("/api/telemetry").await {
            gpu_points.push(
                t["hosts"]["spark1"]["gpu_util"]
                    .as_array()
                    .map_or(0, Vec::len),
            );
        }
        assert!(
            Instant::now() < deadline,
            "demo: percents {percents:?}, gpu points {gpu_points:?}, behind {behind:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        percents.iter().any(|p| *p > 5.0 && *p < 95.0),
        "a download was seen in progress: {percents:?}"
    );
    assert_eq!(percents.last(), Some(&100.0));
    assert!(
        gpu_points.windows(2).any(|w| w[1] > w[0]),
        "plots move: {gpu_points:?}"
    );
}
