//! `spark-control demo` as a new user runs it: the UI answers within seconds, the initial
//! model becomes ready, a swap made through the API the UI uses completes, and Ctrl-C
//! (SIGTERM) stops everything it started.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::cluster::vllm_processes;
use crate::harness::sshd::free_port;

pub(crate) struct Demo(pub(crate) Child);

impl Demo {
    /// Its exit status, once it has exited; fails after `secs` seconds of `after`.
    pub(crate) async fn exited(&mut self, secs: u64, after: &str) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(Some(status)) = self.0.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the demo did not stop within {secs} s of {after}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) async fn get_json(client: &reqwest::Client, url: &str) -> Option<serde_json::Value> {
    client.get(url).send().await.ok()?.json().await.ok()
}

pub(crate) async fn wait_for(what: &str, secs: u64, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_ui_becomes_ready_and_swaps() {
    let dir = tempfile::Builder::new()
        .prefix("demo-")
        .tempdir()
        .expect("tempdir");
    let port = free_port("127.0.0.1");
    let vllm_port = free_port("127.0.0.2");
    let stt = free_port("127.0.0.3");
    let mut tts = free_port("127.0.0.3");
    while tts == stt {
        tts = free_port("127.0.0.3");
    }
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_spark-control"))
        .args(["demo", "--dir"])
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--vllm-port",
            &vllm_port.to_string(),
            "--stt-port",
            &stt.to_string(),
            "--tts-port",
            &tts.to_string(),
        ])
        .args(["--startup-delay-ms", "1500"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the demo");
    let mut demo = Demo(child);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .expect("client");

    // The UI answers within seconds.
    wait_for("the UI", 10, async || {
        client
            .get(format!("{base}/"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    let ui_after = started.elapsed();
    let page = client
        .get(format!("{base}/"))
        .send()
        .await
        .expect("GET /")
        .text()
        .await
        .expect("body");
    assert!(
        page.contains("<html") || page.contains("<!doctype") || page.contains("<!DOCTYPE"),
        "the UI page: {page:.200}"
    );
    assert!(
        ui_after < Duration::from_secs(10),
        "UI answered after {ui_after:?}"
    );

    // Setup shows the controller's public key to paste into the Sparks' authorized_keys.
    let setup = get_json(&client, &format!("{base}/api/setup"))
        .await
        .expect("/api/setup");
    assert!(
        setup["public_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("ssh-ed25519 ")),
        "{setup}"
    );
    assert!(setup["host_keys"].get("spark1").is_some(), "{setup}");

    // The initial model becomes ready (download, launch, wait) — seen through discovery.
    wait_for("qwen36 ready", 90, async || {
        get_json(&client, &format!("{base}/api/endpoints"))
            .await
            .is_some_and(|v| v["vllm"]["ready"] == true)
    })
    .await;
    // And through the proxy, as an OpenAI client sees it.
    let models = get_json(&client, &format!("{base}/v1/models"))
        .await
        .expect("/v1/models through the proxy");
    // The catalog, by catalog name, with the serving one marked.
    let serving = |v: &serde_json::Value| -> Vec<(String, String)> {
        v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["status"] == "serving")
            .map(|m| {
                (
                    m["id"].as_str().unwrap_or_default().into(),
                    m["repo"].as_str().unwrap_or_default().into(),
                )
            })
            .collect()
    };
    assert_eq!(
        serving(&models),
        vec![(
            "qwen36".to_string(),
            "RedHatAI/Qwen3.6-35B-A3B-NVFP4".to_string()
        )]
    );

    // A swap, through the same API call the UI's Activate button makes.
    let r = client
        .post(format!("{base}/api/desired/edit"))
        .json(&serde_json::json!({"op": "activate", "model": "gemma4"}))
        .send()
        .await
        .expect("activate");
    assert!(r.status().is_success(), "activate: {}", r.status());
    let text = std::fs::read_to_string(dir.path().join("desired.yaml")).expect("desired.yaml");
    assert!(text.contains("active_model: gemma4"), "{text}");
    assert!(text.contains("# simulated head"), "comments kept: {text}");
    wait_for("gemma4 serving", 90, async || {
        get_json(&client, &format!("{base}/v1/models"))
            .await
            .is_some_and(|v| {
                serving(&v)
                    == [(
                        "gemma4".to_string(),
                        "google/gemma-4-26B-A4B-it".to_string(),
                    )]
            })
    })
    .await;
    assert_eq!(vllm_processes(vllm_port).len(), 1);

    // SIGTERM: the demo stops and takes its simulated processes with it.
    let pid = demo.0.id();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let status = demo.exited(30, "SIGTERM").await;
    assert!(status.success(), "demo exit status {status:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        vllm_processes(vllm_port).is_empty(),
        "simulated vLLM left running"
    );
}

/// The first SIGTERM brings the running operation to a safe point (here: a launch being
/// cancelled, whose cleanup stops the launcher and the container on the simulated head);
/// a second one exits at once with 130, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::Builder::new()
        .prefix("demo-")
        .tempdir()
        .expect("tempdir");
    let port = free_port("127.0.0.1");
    let vllm_port = free_port("127.0.0.2");
    let child = Command::new(env!("CARGO_BIN_EXE_spark-control"))
        .args(["demo", "--dir"])
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--vllm-port", &vllm_port.to_string()])
        // The model takes a minute to load: the operation is in its wait when we stop.
        .args(["--startup-delay-ms", "60000"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the demo");
    let mut demo = Demo(child);
    let stderr = demo.0.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .expect("client");
    wait_for("the model loading", 60, async || {
        get_json(&client, &format!("{base}/api/state"))
            .await
            .is_some_and(|v| {
                v["operation"]["phase"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("wait until"))
            })
    })
    .await;
    let term = |pid: u32| {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
    };
    let pid = demo.0.id();
    term(pid);
    let lines: Vec<String> = rx
        .iter()
        .take_while(|l| !l.contains("shutting down"))
        .collect();
    term(pid);
    let status = demo.exited(5, "the second signal").await;
    let rest: Vec<String> = rx.try_iter().collect();
    assert_eq!(status.code(), Some(130), "{lines:?} {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("second signal")),
        "it says why it exits: {rest:?}"
    );
    assert!(
        rest.iter()
            .any(|l| l.contains("stopped") && l.contains("simulated process")),
        "the demo still stops what it started: {rest:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        vllm_processes(vllm_port).is_empty(),
        "simulated vLLM left running"
    );
}
