//! Swap benchmark on two real sshd "Sparks" (run as root, needs openssh-server), once per
//! launcher generation:
//!
//!   cargo bench --bench swap -- [--swaps N] [--vllm-startup-ms MS]
//!
//! Each swap: the desired file is rewritten (temp file + rename, a hand edit; then, in a
//! second run, through the store as the UI and API write, which skips the settle window)
//! to the other of two models (both already in the HF cache), and the time until the new
//! model answers
//! `/v1/models` is measured. The controller's overhead is that time minus the fake vLLM's
//! start-up delay (`--vllm-startup-ms`, default 1000) and the simulated launcher's own
//! start-up (`--launcher-startup-ms`, default 1500: Ray/cluster checks before it execs
//! vLLM), so the overhead is the controller's work: the settle
//! window (300 ms), stop (own launcher, `launch-cluster.sh -n … stop`, host-by-host
//! verification), GPU memory settling (the simulator holds memory 300 ms after a stop),
//! launch (owned launcher, until `vllm serve` runs in the container), and readiness
//! polling. sshd on the head stamps every command's start (`SshdHost::stamp_commands`),
//! which splits each swap into phases (medians printed). Prints a table and a JSON line.
//! Bounded: N swaps (default 10) per generation and edit kind.

mod common;
#[path = "../tests/it/harness/mod.rs"]
#[allow(unused_imports)]
mod harness;

use common::{arg, commands_after, now_ns};
use std::time::{Duration, Instant};

use harness::cluster::{Cluster, Generation};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Where one swap's time went, in ms from the edit: the operation's first command (not
/// an observer poll, whose scripts carry `@@` markers, nor telemetry's round-trip probe
/// `true`), the launcher's stop, the start of
/// our owned launcher, and the new model listed by `/v1/models`.
#[derive(Default, Clone, Copy)]
struct Phases {
    first: f64,
    stop: f64,
    start: f64,
    ready: f64,
}

fn phases(log: &std::path::Path, t0: u128, ready: u128) -> Phases {
    let after = commands_after(log, t0);
    let at = |f: &dyn Fn(&str) -> bool| {
        after
            .iter()
            .find(|(_, c)| f(c))
            .map_or(f64::NAN, |(t, _)| (t - t0) as f64 / 1e6)
    };
    Phases {
        first: at(&|c| !c.contains("@@") && !c.ends_with("&2; true")),
        stop: at(&|c| c.contains("launch-cluster.sh") && c.contains("'stop'")),
        start: at(&|c| c.contains("setsid sh -c") && c.contains("spark-control-launcher")),
        ready: (ready.saturating_sub(t0)) as f64 / 1e6,
    }
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
        for api in [false, true] {
            let how = if api { "UI/API edit" } else { "hand edit" };
            let (total, overhead, p) = rt.block_on(async {
                let mut c = Cluster::with_launcher(delay, g);
                c.knob("launcher-startup-ms", Some(&launcher_ms.to_string()));
                let stamps = c.spark1.stamp_commands();
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
                let mut all = Vec::new();
                for i in 0..swaps {
                    // At rest: idle, and an observation completed after the last
                    // operation (nothing starts before it: the loop's barrier).
                    let s = c
                        .wait_status("idle", 60, |s| s.plan.steps.is_empty() && !s.busy())
                        .await;
                    let generation = s.observed.generation;
                    c.wait_status("an observation after the operation", 30, |s| {
                        s.observed.generation > generation
                    })
                    .await;
                    let (m, repo) = models[(i + 1) % 2];
                    let t0 = Instant::now();
                    let t0_ns = now_ns();
                    if api {
                        let edit = spark_control::edit::DesiredEdit::Activate {
                            model: Some(m.into()),
                        };
                        c.handle()
                            .store
                            .edit(None, &edit, |_| Ok(()))
                            .await
                            .expect("store edit");
                    } else {
                        c.write(&c.desired(m, ""));
                    }
                    let deadline = Instant::now() + Duration::from_secs(120);
                    while c.served().await.is_none_or(|l| l != [repo.to_string()]) {
                        assert!(Instant::now() < deadline, "no swap within 120 s");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    total.push(t0.elapsed().as_secs_f64() * 1000.0);
                    all.push(phases(&stamps, t0_ns, now_ns()));
                }
                let overhead: Vec<f64> = total
                    .iter()
                    .map(|t| t - delay as f64 - launcher_ms as f64)
                    .collect();
                let med = |f: fn(&Phases) -> f64| median(all.iter().map(f).collect());
                let p = Phases {
                    first: med(|p| p.first),
                    stop: med(|p| p.stop - p.first),
                    start: med(|p| p.start - p.stop),
                    ready: med(|p| p.ready - p.start),
                };
                (median(total), median(overhead), p)
            });
            println!(
                "generation {g:?}, {how}: edit -> ready median {total:.0} ms over {swaps} swaps; minus the fake vLLM's {delay} ms and the simulated launcher's {launcher_ms} ms start-up = controller overhead {overhead:.0} ms"
            );
            println!(
                "  medians: edit -> first command {:.0} ms; -> launcher stop +{:.0} ms; -> owned launcher started +{:.0} ms (stop, checks, GPU memory); -> ready +{:.0} ms (of which {} ms start-up)",
                p.first,
                p.stop,
                p.start,
                p.ready,
                delay + launcher_ms
            );
            let key = if api { "api" } else { "file" };
            json.push(format!(
                "\"{g:?}_{key}\":{{\"edit_to_ready_ms_median\":{total:.0},\"overhead_ms_median\":{overhead:.0},\"first_command_ms\":{:.0},\"to_stop_ms\":{:.0},\"stop_to_start_ms\":{:.0},\"start_to_ready_ms\":{:.0}}}",
                p.first, p.stop, p.start, p.ready
            ));
        }
    }
    println!(
        "{{\"swaps\":{swaps},\"vllm_startup_ms\":{delay},\"launcher_startup_ms\":{launcher_ms},{}}}",
        json.join(",")
    );
}
