//! Swap benchmark on two real sshd "Sparks" (run as root, needs openssh-server), once per
//! launcher generation:
//!
//!   cargo bench --bench swap -- [--swaps N] [--vllm-startup-ms MS]
//!
//! Each swap: the desired file is rewritten (temp file + rename) to the other of two
//! models (both already in the HF cache), and the time until the new model answers
//! `/v1/models` is measured. The controller's overhead is that time minus the fake vLLM's
//! start-up delay (`--vllm-startup-ms`, default 1000) and the simulated launcher's own
//! start-up (`--launcher-startup-ms`, default 1500: Ray/cluster checks before it execs
//! vLLM), so the overhead is the controller's work: the settle
//! window (300 ms), stop (own launcher, `launch-cluster.sh -n … stop`, host-by-host
//! verification), GPU memory settling (the simulator holds memory 300 ms after a stop),
//! launch (owned launcher, until `vllm serve` runs in the container), and readiness
//! polling. Prints a table and a JSON line. Bounded: N swaps (default 10) per generation.

mod common;
#[path = "../tests/it/harness/mod.rs"]
#[allow(unused_imports)]
mod harness;

use common::arg;
use std::time::{Duration, Instant};

use harness::cluster::{Cluster, Generation};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn main() {
    let swaps = arg("--swaps", 10) as usize;
    let delay = arg("--vllm-startup-ms", 1000);
    let launcher_ms = arg("--launcher-startup-ms", 1500);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut json = Vec::new();
    for g in [Generation::A, Generation::B] {
        let (total, overhead) = rt.block_on(async {
            let mut c = Cluster::with_launcher(delay, g);
            c.knob("launcher-startup-ms", Some(&launcher_ms.to_string()));
            c.start_controller();
            let models = [
                ("qwen36", "RedHatAI/Qwen3.6-35B-A3B-NVFP4"),
                ("gemma4", "google/gemma-4-26B-A4B-it"),
            ];
            // Warm up: both models downloaded and launched once.
            for (m, repo) in models.iter().rev().chain(models.iter()) {
                c.write(&c.desired(m, ""));
                c.wait_serving(repo, 180).await;
            }
            let mut total = Vec::new();
            for i in 0..swaps {
                c.wait_status("idle", 60, |s| s.plan.steps.is_empty() && !s.busy())
                    .await;
                let (m, repo) = models[(i + 1) % 2];
                let t0 = Instant::now();
                c.write(&c.desired(m, ""));
                let deadline = Instant::now() + Duration::from_secs(120);
                while c.served().await.is_none_or(|l| l != [repo.to_string()]) {
                    assert!(Instant::now() < deadline, "no swap within 120 s");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                total.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
            let overhead: Vec<f64> = total
                .iter()
                .map(|t| t - delay as f64 - launcher_ms as f64)
                .collect();
            (median(total), median(overhead))
        });
        println!(
            "generation {g:?}: edit -> ready median {total:.0} ms over {swaps} swaps; minus the fake vLLM's {delay} ms and the simulated launcher's {launcher_ms} ms start-up = controller overhead {overhead:.0} ms"
        );
        json.push(format!(
            "\"{g:?}\":{{\"edit_to_ready_ms_median\":{total:.0},\"overhead_ms_median\":{overhead:.0}}}"
        ));
    }
    println!(
        "{{\"swaps\":{swaps},\"vllm_startup_ms\":{delay},\"launcher_startup_ms\":{launcher_ms},{}}}",
        json.join(",")
    );
}
