//! Swap benchmark on two real sshd "Sparks" (run as root, needs openssh-server), once per
//! launcher generation:
//!
//!   cargo bench --bench swap -- [--swaps N] [--vllm-startup-ms MS]
//!       [--launcher-startup-ms MS] [--gpu-hold-ms MS]
//!
//! Each swap: the desired file is rewritten (temp file + rename, a hand edit; then, in a
//! second run, through the store as the UI and API write) to the other of two models (both
//! already in the HF cache), from rest, and the time until the new model answers
//! `/v1/models` on the head is measured. The controller's overhead is that time minus the
//! simulated world's start-up: the fake vLLM's (`--vllm-startup-ms`, default 1000) and the
//! simulated launcher's own before it execs vLLM (`--launcher-startup-ms`, default 1500:
//! Ray/cluster checks). A second figure also takes out the simulator's GPU-memory hold
//! (`--gpu-hold-ms`, default 300: after a stop, nvidia-smi reports the old model's memory
//! for that long, as a real GPU frees it with a delay; the controller must wait it out
//! before the launch and cannot shorten it). What remains is the controller's own work:
//! the stop (own launcher, `launch-cluster.sh -n … stop`, host-by-host verification),
//! noticing the memory is free, the launch (owned launcher, until `vllm serve` runs in the
//! container), and the polling latency of each wait. sshd on the head stamps every
//! command's start (`SshdHost::stamp_commands`), which splits each swap into phases
//! (medians printed). Prints a table and a JSON line. Bounded: N swaps (default 10) per
//! generation and edit kind.

mod common;
#[path = "../tests/it/harness/mod.rs"]
#[allow(unused_imports)]
mod harness;

use common::{arg, commands_after, now_ns};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::cluster::{Cluster, Generation, HEAD, WORKER};

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
    /// The world's window inside the swap: from the start of the command that stopped the
    /// model until the GPU memory was free (the last simulated container's stop, which the
    /// simulator stamps, plus the memory hold). Neither part is the controller's to
    /// shorten.
    world: f64,
    start: f64,
    ready: f64,
}

fn phases(log: &std::path::Path, t0: u128, ready: u128, free_at: u128, hold: u128) -> Phases {
    let after = commands_after(log, t0);
    let at = |f: &dyn Fn(&str) -> bool| {
        after
            .iter()
            .find(|(_, c)| f(c))
            .map_or(f64::NAN, |(t, _)| (t - t0) as f64 / 1e6)
    };
    let ours = |c: &str| !c.contains("@@") && !c.ends_with("&2; true");
    let is_stop = |c: &str| c.contains("launch-cluster.sh") && c.contains("'stop'");
    let stop = at(&|c| is_stop(c));
    Phases {
        first: at(&|c| ours(c)),
        stop,
        // From the start of the operation's command during which the last container
        // stopped (generation A: stopping our launcher, whose exit stops its containers;
        // B: the launcher's `stop`) until the memory was free.
        world: after
            .iter()
            .filter(|(t, c)| ours(c) && *t <= free_at - hold)
            .map(|(t, _)| (free_at - t) as f64 / 1e6)
            .next_back()
            .unwrap_or(f64::NAN),
        start: at(&|c| c.contains("setsid sh -c") && c.contains("spark-control-launcher")),
        ready: (ready.saturating_sub(t0)) as f64 / 1e6,
    }
}

/// Whether vLLM at `url` (`/v1/models`) lists exactly `repo` now.
async fn lists(http: &reqwest::Client, url: &str, repo: &str) -> bool {
    let Ok(r) = http.get(url).send().await else {
        return false;
    };
    let Ok(v) = r.json::<serde_json::Value>().await else {
        return false;
    };
    let roots: Vec<&str> = v["data"]
        .as_array()
        .map(|d| d.iter().filter_map(|m| m["root"].as_str()).collect())
        .unwrap_or_default();
    !roots.is_empty() && roots.iter().all(|r| *r == repo)
}

fn main() {
    let swaps = arg("--swaps", 10) as usize;
    let delay = arg("--vllm-startup-ms", 1000);
    let launcher_ms = arg("--launcher-startup-ms", 1500);
    let hold_ms = arg("--gpu-hold-ms", 300);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut json = Vec::new();
    for g in [Generation::A, Generation::B] {
        for api in [false, true] {
            let how = if api { "UI/API edit" } else { "hand edit" };
            let (total, overhead, p, own, start_path) = rt.block_on(async {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_millis(500))
                    .no_proxy()
                    .build()
                    .expect("http client");
                let mut c = Cluster::with_launcher(delay, g);
                c.knob("launcher-startup-ms", Some(&launcher_ms.to_string()));
                c.knob("smi-settle-ms", Some(&hold_ms.to_string()));
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
                    // The warm-up ends on models[1]: swap i goes to models[i % 2], so the first
                    // swap is a real one.
                    let (m, repo) = models[i % 2];
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
                    // The simulator stamps each container's stop (unix ms, `stopped_at`;
                    // the next launch removes it): a sampler keeps the last one seen, for
                    // the world's part.
                    let done = Arc::new(AtomicBool::new(false));
                    let sampler = {
                        let (done, roots) = (done.clone(), [c.sim_root(HEAD), c.sim_root(WORKER)]);
                        tokio::spawn(async move {
                            let mut last = 0u128;
                            while !done.load(Ordering::Relaxed) {
                                for r in &roots {
                                    let f = r.join("containers/vllm_node/stopped_at");
                                    if let Some(ms) = std::fs::read_to_string(f)
                                        .ok()
                                        .and_then(|t| t.trim().parse::<u128>().ok())
                                        .filter(|ms| ms * 1_000_000 > t0_ns)
                                    {
                                        last = last.max(ms);
                                    }
                                }
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            last
                        })
                    };
                    // Ready: the head's vLLM lists the new repo. Asked every 10 ms with a
                    // short timeout (a stopped or loading vLLM refuses or holds the
                    // request), so the figure is not the probe's own retry delay.
                    let url = format!("http://{HEAD}:{}/v1/models", c.vllm_port);
                    let deadline = Instant::now() + Duration::from_secs(120);
                    while !lists(&http, &url, repo).await {
                        assert!(Instant::now() < deadline, "no swap within 120 s");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    done.store(true, Ordering::Relaxed);
                    let stopped_ms = sampler.await.unwrap_or(0);
                    total.push(t0.elapsed().as_secs_f64() * 1000.0);
                    let free_at = (stopped_ms + hold_ms as u128) * 1_000_000;
                    all.push(phases(
                        &stamps,
                        t0_ns,
                        now_ns(),
                        free_at,
                        hold_ms as u128 * 1_000_000,
                    ));
                }
                let overhead: Vec<f64> = total
                    .iter()
                    .map(|t| t - delay as f64 - launcher_ms as f64)
                    .collect();
                let med = |f: fn(&Phases) -> f64| median(all.iter().map(f).collect());
                let p = Phases {
                    first: med(|p| p.first),
                    stop: med(|p| p.stop - p.first),
                    world: med(|p| p.world),
                    start: med(|p| p.start - p.stop),
                    ready: med(|p| p.ready - p.start),
                };
                // The controller's own part: edit -> our launcher started, minus the world's
                // window (launcher stop -> memory free) it had to wait out; the rest of the overhead is the start path after it
                // (our start script's wait for the launcher's pid, the simulated launcher's
                // and fake vLLM's process starts on a shared machine).
                let own = median(all.iter().map(|p| p.start - p.world).collect());
                let start_path = median(
                    all.iter()
                        .map(|p| p.ready - p.start - (delay + launcher_ms) as f64)
                        .collect(),
                );
                (median(total), median(overhead), p, own, start_path)
            });
            let beyond = overhead - hold_ms as f64;
            println!(
                "generation {g:?}, {how}: edit -> ready median {total:.0} ms over {swaps} swaps; minus the fake vLLM's {delay} ms and the simulated launcher's {launcher_ms} ms start-up = controller overhead {overhead:.0} ms; minus the simulated GPU-memory hold ({hold_ms} ms) = {beyond:.0} ms"
            );
            println!(
                "  medians: edit -> first command {:.0} ms; -> launcher stop +{:.0} ms; -> owned launcher started +{:.0} ms (stop, checks, GPU memory); -> ready +{:.0} ms (of which {} ms start-up)",
                p.first,
                p.stop,
                p.start,
                p.ready,
                delay + launcher_ms
            );
            println!(
                "  the model's stop -> memory free (the world's: the containers' stop, then the {hold_ms} ms hold) {:.0} ms; controller's own (edit -> our launcher started, minus that window): median {own:.0} ms; start path beyond the nominal {} ms: median {start_path:.0} ms",
                p.world,
                delay + launcher_ms
            );
            let key = if api { "api" } else { "file" };
            json.push(format!(
                "\"{g:?}_{key}\":{{\"edit_to_ready_ms_median\":{total:.0},\"overhead_ms_median\":{overhead:.0},\"overhead_beyond_gpu_hold_ms_median\":{beyond:.0},\"own_ms_median\":{own:.0},\"start_path_ms_median\":{start_path:.0},\"first_command_ms\":{:.0},\"to_stop_ms\":{:.0},\"stop_to_start_ms\":{:.0},\"start_to_ready_ms\":{:.0}}}",
                p.first, p.stop, p.start, p.ready
            ));
        }
    }
    println!(
        "{{\"swaps\":{swaps},\"vllm_startup_ms\":{delay},\"launcher_startup_ms\":{launcher_ms},\"gpu_hold_ms\":{hold_ms},{}}}",
        json.join(",")
    );
}
