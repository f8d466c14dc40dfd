//! Telemetry on two real sshd "Sparks": GPU series from each host's `nvidia-smi` shim,
//! SSH round trips, and vLLM throughput scraped from the fake vLLM's `/metrics` while
//! real completions run through it.

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
