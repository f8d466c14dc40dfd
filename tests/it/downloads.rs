//! Model downloads on two real sshd "Sparks": the `hf` shim writes files of known sizes
//! over time; the fake Hub knows the same sizes. Assertions are about the world (files in
//! each host's HF cache, `hf` processes alive) and about what the API says.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use spark_control::http::{app, AppState};
use tower::ServiceExt;

use crate::harness::cluster::{Cluster, HEAD, WORKER};

/// Calls the HTTP API of the cluster's controller.
pub async fn api(c: &Cluster, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let router = app(AppState::new(c.handle().clone(), None));
    let mut req = axum::http::Request::builder().method(method).uri(path);
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            axum::body::Body::from(v.to_string())
        }
        None => axum::body::Body::empty(),
    };
    let resp = router
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("router answers");
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 16 * 1024 * 1024)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The job `id` from `GET /api/downloads`.
async fn job(c: &Cluster, id: &str) -> Value {
    let (s, v) = api(c, "GET", "/api/downloads", None).await;
    assert_eq!(s, 200);
    v.as_array()
        .and_then(|a| a.iter().find(|j| j["id"] == id).cloned())
        .unwrap_or_else(|| panic!("no job {id} in {v}"))
}

/// Polls job `id` every 150 ms until `pred`; returns every sample seen.
async fn follow(c: &Cluster, id: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    loop {
        let j = job(c, id).await;
        let done = pred(&j);
        seen.push(j);
        if done {
            return seen;
        }
        if Instant::now() > deadline {
            panic!(
                "job {id} not as expected after {secs}s: {}\nlog:\n{}",
                seen.last().map(|j| j.to_string()).unwrap_or_default(),
                c.log_tail(30)
            );
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn start(c: &Cluster, repo: &str, mode: &str) -> String {
    let (s, v) = api(
        c,
        "POST",
        "/api/downloads",
        Some(json!({ "repo": repo, "mode": mode })),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    v["id"].as_str().expect("id").to_string()
}

/// Bytes of the complete files of `repo` in a host's HF cache, and whether any file is
/// still `*.incomplete`.
fn cached(c: &Cluster, ip: &str, repo: &str) -> (u64, bool) {
    let dir = c
        .sim_root(ip)
        .join("hf/hub")
        .join(format!("models--{}", repo.replace('/', "--")));
    let mut total = 0;
    let mut partial = false;
    fn walk(d: &Path, total: &mut u64, partial: &mut bool) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, total, partial);
            } else if p.extension().is_some_and(|x| x == "incomplete") {
                *partial = true;
            } else if p.parent().and_then(|d| d.file_name()) != Some("refs".as_ref()) {
                *total += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    walk(&dir, &mut total, &mut partial);
    (total, partial)
}

/// `hf` shim processes alive on a host (registered in `run/hf-*.pid`).
pub fn hf_alive(c: &Cluster, ip: &str) -> usize {
    let Ok(rd) = std::fs::read_dir(c.sim_root(ip).join("run")) else {
        return 0;
    };
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("hf-"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter(|pid| Path::new(&format!("/proc/{}", pid.trim())).exists())
        .count()
}

fn host<'a>(j: &'a Value, name: &str) -> &'a Value {
    j["hosts"]
        .as_array()
        .and_then(|a| a.iter().find(|h| h["host"] == name))
        .unwrap_or_else(|| panic!("no host {name} in {j}"))
}

const MIB: u64 = 1024 * 1024;

async fn idle_cluster() -> Cluster {
    let mut c = Cluster::new(500);
    c.write(&c.desired("null", ""));
    c.start_controller();
    c.wait_status("first observation", 30, |s| s.observed.generation > 0)
        .await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adhoc_solo_download_rises_to_done_with_sane_rate_eta_and_suggestion() {
    let c = idle_cluster().await;
    let size = 8 * MIB;
    let speed = 2 * MIB;
    c.set_repo_size(size);
    c.knob("hf-speed", Some(&speed.to_string()));
    let id = start(&c, "acme/Tiny-Model_v2", "solo").await;
    let seen = follow(&c, &id, 60, |j| j["state"] == "done").await;
    // Monotonic bytes and percent, rising to exactly the Hub's total.
    let mut last = 0u64;
    let mut mid_rates = Vec::new();
    let mut mid_etas = Vec::new();
    for j in &seen {
        let h = host(j, "spark1");
        let b = h["bytes"].as_u64().expect("bytes");
        assert!(b >= last, "bytes went down: {last} → {b}");
        last = b;
        assert_eq!(h["total"].as_u64(), Some(size));
        let pct = h["percent"].as_f64().unwrap_or(0.0);
        assert!((0.0..=100.0).contains(&pct), "{pct}");
        if (0.2..0.8).contains(&(b as f64 / size as f64)) {
            if let Some(r) = h["rate_bps"].as_f64() {
                mid_rates.push(r);
            }
            if let Some(e) = h["eta_secs"].as_u64() {
                mid_etas.push((e, size - b));
            }
        }
    }
    let fin = seen.last().expect("samples");
    let h = host(fin, "spark1");
    assert_eq!(h["bytes"].as_u64(), Some(size));
    assert_eq!(h["percent"].as_f64(), Some(100.0));
    assert!(
        seen.len() >= 5,
        "too few samples to see progress: {}",
        seen.len()
    );
    // The shim writes at `speed` (bursty: 1/10 of it every 0.1 s plus shell overhead).
    assert!(!mid_rates.is_empty(), "no rate seen mid-download");
    for r in &mid_rates {
        assert!(
            *r > speed as f64 * 0.25 && *r < speed as f64 * 2.5,
            "rate {r} vs speed {speed}"
        );
    }
    for (eta, left) in &mid_etas {
        let ideal = *left as f64 / speed as f64;
        assert!(
            (*eta as f64) < ideal * 4.0 + 2.0,
            "eta {eta}s for {left} bytes left"
        );
    }
    // Done: add-to-catalog prefill; files on the head only; the job is on disk.
    assert_eq!(
        fin["suggestion"],
        json!({ "name": "tiny-model-v2", "repo": "acme/Tiny-Model_v2", "mode": "solo" })
    );
    assert!(fin["finished_at"].is_string());
    assert_eq!(cached(&c, HEAD, "acme/Tiny-Model_v2"), (size, false));
    assert_eq!(cached(&c, WORKER, "acme/Tiny-Model_v2"), (0, false));
    let on_disk = std::fs::read_to_string(c.data_dir.join(format!("downloads/{id}.json")))
        .expect("job persisted");
    assert!(on_disk.contains("\"done\""), "{on_disk}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_download_and_keeps_partial_files() {
    let c = idle_cluster().await;
    c.set_repo_size(64 * MIB);
    c.knob("hf-speed", Some(&(2 * MIB).to_string()));
    let id = start(&c, "acme/big", "solo").await;
    follow(&c, &id, 30, |j| {
        host(j, "spark1")["bytes"].as_u64().unwrap_or(0) > MIB
    })
    .await;
    let (s, v) = api(&c, "DELETE", &format!("/api/downloads/{id}"), None).await;
    assert_eq!(s, 202, "{v}");
    follow(&c, &id, 15, |j| j["state"] == "cancelled").await;
    // The world: no hf process left, the bytes on disk stop growing, partial files stay.
    let deadline = Instant::now() + Duration::from_secs(10);
    while hf_alive(&c, HEAD) > 0 {
        assert!(Instant::now() < deadline, "hf still runs after cancel");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (a, partial) = cached(&c, HEAD, "acme/big");
    let dir = c.sim_root(HEAD).join("hf/hub/models--acme--big");
    let size_now = || {
        std::process::Command::new("du")
            .args(["-sb"])
            .arg(&dir)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    };
    let before = size_now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(size_now(), before, "bytes still arriving after cancel");
    assert!(partial, "the partial file should stay for a later resume");
    assert!(a < 64 * MIB);
    // Cancelling again: it already ended.
    let (s, v) = api(&c, "DELETE", &format!("/api/downloads/{id}"), None).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["code"], "download_finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_restart_mid_download_resumes_the_job() {
    let mut c = idle_cluster().await;
    let size = 12 * MIB;
    c.set_repo_size(size);
    c.knob("hf-speed", Some(&(2 * MIB).to_string()));
    let id = start(&c, "acme/resumable", "solo").await;
    follow(&c, &id, 30, |j| {
        host(j, "spark1")["bytes"].as_u64().unwrap_or(0) > 3 * MIB
    })
    .await;
    // Crash: every task just stops; the job file says "running".
    c.controller.as_mut().expect("controller").kill();
    let on_disk = std::fs::read_to_string(c.data_dir.join(format!("downloads/{id}.json")))
        .expect("job persisted");
    assert!(on_disk.contains("\"running\""), "{on_disk}");
    c.start_controller();
    let seen = follow(&c, &id, 60, |j| j["state"] == "done").await;
    let fin = seen.last().expect("samples");
    assert_eq!(host(fin, "spark1")["bytes"].as_u64(), Some(size));
    assert!(
        host(fin, "spark1")["attempts"].as_u64().unwrap_or(0) >= 2,
        "the restarted controller ran a new attempt: {fin}"
    );
    // Resumed, not restarted from zero: no sample after the restart went below 3 MiB.
    assert!(seen
        .iter()
        .all(|j| host(j, "spark1")["bytes"].as_u64().unwrap_or(0) >= 3 * MIB));
    assert_eq!(cached(&c, HEAD, "acme/resumable"), (size, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_download_is_detected_and_retried_until_done() {
    let c = idle_cluster().await;
    let size = 6 * MIB;
    c.set_repo_size(size);
    c.knob("hf-speed", Some(&(3 * MIB).to_string()));
    c.knob("hf-stall", Some(&(2 * MIB).to_string()));
    let id = start(&c, "acme/stalls", "solo").await;
    // Stall after 3 s without new bytes (the harness setting): a warning, then retries.
    let seen = follow(&c, &id, 30, |j| j["state"] == "stalled").await;
    let h = host(seen.last().expect("samples"), "spark1");
    assert!(
        h["warning"].as_str().unwrap_or("").contains("stalled"),
        "{h}"
    );
    assert!(h["bytes"].as_u64().unwrap_or(0) >= 2 * MIB);
    follow(&c, &id, 20, |j| {
        host(j, "spark1")["attempts"].as_u64().unwrap_or(0) >= 2
    })
    .await;
    // The network comes back: the next attempt resumes and finishes.
    c.knob("hf-stall", None);
    let seen = follow(&c, &id, 40, |j| j["state"] == "done").await;
    let fin = seen.last().expect("samples");
    assert_eq!(host(fin, "spark1")["bytes"].as_u64(), Some(size));
    assert!(host(fin, "spark1")["warning"].is_null(), "{fin}");
    assert_eq!(cached(&c, HEAD, "acme/stalls"), (size, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_download_lands_on_both_hosts() {
    let c = idle_cluster().await;
    let size = 4 * MIB;
    c.set_repo_size(size);
    let id = start(&c, "acme/tp2-model", "cluster").await;
    let seen = follow(&c, &id, 40, |j| j["state"] == "done").await;
    let fin = seen.last().expect("samples");
    assert_eq!(fin["hosts"].as_array().map(Vec::len), Some(2));
    assert_eq!(fin["suggestion"]["mode"], "cluster");
    assert_eq!(cached(&c, HEAD, "acme/tp2-model"), (size, false));
    assert_eq!(cached(&c, WORKER, "acme/tp2-model"), (size, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_repo_and_unknown_size_are_clear() {
    let c = idle_cluster().await;
    c.set_repo_size(2 * MIB);
    // 1. The Hub says it does not exist: refused at once, nothing runs.
    c.hub.update(|s| {
        s.missing.insert("acme/nope".into());
    });
    let (s, v) = api(
        &c,
        "POST",
        "/api/downloads",
        Some(json!({ "repo": "acme/nope" })),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["code"], "repo_not_found");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("acme/nope"));
    let (s, v) = api(
        &c,
        "POST",
        "/api/downloads",
        Some(json!({ "repo": "not a repo" })),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (400, json!("invalid_repo"))
    );
    // 2. The Hub knows it but the host's CLI cannot get it (private, no token there):
    //    the job fails with the reason, not a hang.
    std::fs::write(c.sim_root(HEAD).join("knobs/hf-missing"), "acme/private\n").expect("knob");
    let id = start(&c, "acme/private", "solo").await;
    let seen = follow(&c, &id, 20, |j| j["state"] == "failed").await;
    let err = host(seen.last().expect("samples"), "spark1")["error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        err.contains("does not exist") && err.contains("token"),
        "{err}"
    );
    // 3. The Hub lists no sizes: "size unknown", still bytes and a rate. Slow enough (4 s
    //    for 2 MiB) that the 300 ms progress samples see a rate: at the default 4 MiB/s
    //    the download could finish between two samples (seen once: "a rate is shown
    //    without a size" failed in a serial full run).
    c.knob("hf-speed", Some("524288"));
    c.hub.update(|s| {
        s.sizeless.insert("acme/sizeless".into());
    });
    let id = start(&c, "acme/sizeless", "solo").await;
    let seen = follow(&c, &id, 30, |j| j["state"] == "done").await;
    let fin = seen.last().expect("samples");
    assert!(
        fin["note"].as_str().unwrap_or("").contains("size unknown"),
        "{fin}"
    );
    assert!(host(fin, "spark1")["total"].is_null());
    assert!(host(fin, "spark1")["percent"].is_null());
    assert_eq!(host(fin, "spark1")["bytes"].as_u64(), Some(2 * MIB));
    assert!(
        seen.iter()
            .any(|j| host(j, "spark1")["rate_bps"].as_f64().unwrap_or(0.0) > 0.0),
        "a rate is shown without a size"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_download_completes_before_the_launch() {
    let mut c = Cluster::new(500);
    let size = 6 * MIB;
    c.set_repo_size(size);
    c.knob("hf-speed", Some(&(2 * MIB).to_string()));
    let repo = "RedHatAI/Qwen3.6-35B-A3B-NVFP4";
    c.start_controller();
    // Sample until the model runs: the cache must be complete at the first launch, and
    // the operation's progress must have moved between 0 and 1 while downloading.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut progress = Vec::new();
    loop {
        if let Some(p) = c.status().operation.as_ref().and_then(|o| o.progress) {
            progress.push(p);
        }
        if !c.vllm_processes().is_empty() {
            assert_eq!(
                cached(&c, HEAD, repo),
                (size, false),
                "launched before the download finished"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never launched\n{}",
            c.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        progress.iter().any(|p| *p > 0.05 && *p < 0.95),
        "operation progress {progress:?}"
    );
    assert!(progress.windows(2).all(|w| w[1] >= w[0]), "{progress:?}");
    c.wait_serving(repo, 60).await;
    let (_, jobs) = api(&c, "GET", "/api/downloads", None).await;
    let declared: Vec<&Value> = jobs
        .as_array()
        .expect("list")
        .iter()
        .filter(|j| j["origin"]["kind"] == "declared")
        .collect();
    assert_eq!(declared.len(), 1, "{jobs}");
    assert_eq!(declared[0]["repo"], repo);
    assert_eq!(declared[0]["state"], "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_cli_fails_once_with_an_install_hint() {
    let c = idle_cluster().await;
    c.set_repo_size(2 * MIB);
    // spark2 has neither `hf` nor `huggingface-cli`: both are "command not found" (127).
    std::fs::write(c.sim_root(WORKER).join("knobs/hf-not-installed"), "").expect("knob");
    let id = start(&c, "acme/needs-cli", "cluster").await;
    let seen = follow(&c, &id, 30, |j| j["state"] == "failed").await;
    let fin = seen.last().expect("samples");
    let w = host(fin, "spark2");
    let err = w["error"].as_str().unwrap_or("");
    assert_eq!(w["state"], "failed", "{fin}");
    assert_eq!(w["attempts"].as_u64(), Some(1), "no retries: {fin}");
    assert_eq!(w["fatal"], true, "a retry would fail the same way: {fin}");
    assert!(
        err.contains("`hf` is not installed on spark2")
            && err.contains("huggingface-cli")
            && err.contains("pip install -U \"huggingface_hub[cli]\""),
        "{err}"
    );
    assert!(!err.contains("Some(") && !err.contains("gave up"), "{err}");
    // The head has the tool: its part finishes; the worker's cache stays empty.
    let fin = follow(&c, &id, 30, |j| host(j, "spark1")["state"] == "done").await;
    assert_eq!(fin.last().expect("samples")["state"], "failed");
    assert_eq!(cached(&c, HEAD, "acme/needs-cli"), (2 * MIB, false));
    assert_eq!(cached(&c, WORKER, "acme/needs-cli"), (0, false));
    // Stays failed: no attempt comes later (the harness retries after 0.5–2 s).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = job(&c, &id).await;
    assert_eq!(
        host(&later, "spark2")["attempts"].as_u64(),
        Some(1),
        "{later}"
    );
    assert_eq!(later["state"], "failed", "{later}");
}
