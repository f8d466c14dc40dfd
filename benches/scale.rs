//! Scale benchmark: 2 vs 8 simulated Sparks (run as root, needs openssh-server):
//!
//!   cargo bench --bench scale -- [--seconds S]
//!
//! For each fleet size the control loop runs in this process against real sshd hosts
//! (127.0.0.2… , a launcher checkout on each): with 2 hosts two solo deployments, with 8
//! hosts four deployments (three solo, one cluster over two hosts, three spare hosts).
//! Once everything serves and the loop is at rest, it measures for S seconds (default
//! 60): observations completed, mean observation time per poll (the loop's own
//! `poll_ms_total / polls`), and this process's CPU time (utime + stime from
//! /proc/self/stat; the simulated hosts' commands run under sshd, not here) per second
//! and per poll; the hosts' side (everything under each sshd: the poll scripts and the
//! simulator's shims they run, and the idle fake vLLMs) in CPU ms per host per poll —
//! all of it shares this machine's cores, where real Sparks have their own; then SSH sessions accepted per host by sshd's own log. Prints a table
//! and a JSON line. Bounded: two fleets, S seconds each.

mod common;
#[path = "../tests/it/harness/mod.rs"]
#[allow(unused_imports)]
mod harness;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::arg;
use harness::cluster::{Cluster, FleetDeployment, Generation};
use harness::sshd::free_port;

/// This process's CPU time so far (user + system), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

struct Figures {
    hosts: usize,
    deployments: usize,
    polls: u64,
    ms_per_poll: f64,
    cpu_percent: f64,
    cpu_ms_per_poll: f64,
    host_cpu_ms_per_poll: f64,
    connections: Vec<usize>,
}

async fn run(n: usize, seconds: u64) -> Figures {
    let mut c = Cluster::fleet(n, 300, Generation::B);
    let ip: Vec<String> = c.sshds().iter().map(|s| s.addr().to_string()).collect();
    let mut port = vec![c.vllm_port];
    for a in ip.iter().take(4).skip(1) {
        let mut p = free_port(a);
        while p == c.stt_port || p == c.tts_port {
            p = free_port(a);
        }
        port.push(p);
    }
    let all: [(FleetDeployment, &str); 4] = [
        (
            ("coder", 0, &[], port[0], Some("qwen36")),
            "RedHatAI/Qwen3.6-35B-A3B-NVFP4",
        ),
        (
            ("vision", 1, &[], port[1], Some("qwen3-vl")),
            "Qwen/Qwen3-VL-30B-A3B-Instruct-FP8",
        ),
        (
            ("chat", 2, &[], port[2], Some("gemma4")),
            "google/gemma-4-26B-A4B-it",
        ),
        (
            ("big", 3, &[4], port[3], Some("qwen3-235b-fp8")),
            "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8",
        ),
    ];
    // Two hosts: the two solo deployments; eight: all four.
    let layout = &all[..if n >= 8 { 4 } else { 2 }];
    let spec: Vec<FleetDeployment> = layout.iter().map(|(d, _)| *d).collect();
    c.write(&c.fleet_desired(&spec));
    c.start_controller();
    for ((_, h, _, p, _), repo) in layout {
        c.wait_serving_at(&ip[*h], *p, repo, 300).await;
    }
    c.wait_status("at rest", 120, |s| s.plan.steps.is_empty() && !s.busy())
        .await;
    // Warm-up: three observations at rest.
    let m = c.handle().metrics.clone();
    let p0 = m.polls.load(Ordering::Relaxed);
    c.wait_status("three observations at rest", 60, |_| {
        m.polls.load(Ordering::Relaxed) >= p0 + 3
    })
    .await;
    let hosts_cpu = |c: &Cluster| c.sshds().iter().map(|s| s.cpu_seconds()).sum::<f64>();
    let h0 = hosts_cpu(&c);
    let (polls0, ms0, cpu0, t0) = (
        m.polls.load(Ordering::Relaxed),
        m.poll_ms_total.load(Ordering::Relaxed),
        cpu_seconds(),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (polls1, ms1, cpu1, wall) = (
        m.polls.load(Ordering::Relaxed),
        m.poll_ms_total.load(Ordering::Relaxed),
        cpu_seconds(),
        t0.elapsed().as_secs_f64(),
    );
    let h1 = hosts_cpu(&c);
    let polls = polls1 - polls0;
    let cpu = cpu1 - cpu0;
    Figures {
        hosts: n,
        deployments: layout.len(),
        polls,
        ms_per_poll: (ms1 - ms0) as f64 / polls.max(1) as f64,
        cpu_percent: 100.0 * cpu / wall,
        cpu_ms_per_poll: 1000.0 * cpu / polls.max(1) as f64,
        host_cpu_ms_per_poll: 1000.0 * (h1 - h0) / (polls.max(1) as f64 * n as f64),
        connections: c.accepted_connections(),
    }
}

fn main() {
    let seconds = arg("--seconds", 60);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let figures: Vec<Figures> = rt.block_on(async {
        let mut out = Vec::new();
        for n in [2, 8] {
            out.push(run(n, seconds).await);
        }
        out
    });
    println!("| hosts | deployments | polls in {seconds} s | observation ms/poll | loop CPU % | CPU ms/poll | each host's side, CPU ms/poll | SSH sessions per host (sshd log) |");
    println!("|---|---|---|---|---|---|---|---|");
    for f in &figures {
        println!(
            "| {} | {} | {} | {:.1} | {:.2} | {:.2} | {:.1} | {:?} |",
            f.hosts,
            f.deployments,
            f.polls,
            f.ms_per_poll,
            f.cpu_percent,
            f.cpu_ms_per_poll,
            f.host_cpu_ms_per_poll,
            f.connections
        );
    }
    let json: Vec<serde_json::Value> = figures
        .iter()
        .map(|f| {
            serde_json::json!({
                "hosts": f.hosts, "deployments": f.deployments, "seconds": seconds,
                "polls": f.polls, "ms_per_poll": f.ms_per_poll, "cpu_percent": f.cpu_percent,
                "cpu_ms_per_poll": f.cpu_ms_per_poll,
                "host_cpu_ms_per_poll": f.host_cpu_ms_per_poll, "connections": f.connections,
            })
        })
        .collect();
    println!("{}", serde_json::Value::Array(json));
}
