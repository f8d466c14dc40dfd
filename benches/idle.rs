//! The controller at rest (run as root, needs openssh-server):
//!
//!   cargo bench --bench idle -- [--minutes M] [--every-secs S]
//!
//! Two real sshd "Sparks" with the simulator behind them; `spark-control serve` (the
//! release binary, its own process, the embedded UI included) converges them to one model
//! and two services, then sits idle for M minutes (default 10), polling every 5 s as a
//! default desired file says. Every S seconds (default 10) it samples the controller's
//! own `/proc/<pid>/status` (VmRSS, VmHWM) and `/proc/<pid>/stat` (utime + stime: the
//! controller's CPU, its children excluded — it starts none, SSH is in-process).
//! Prints a table and a JSON line. Bounded: M minutes, then the process is stopped.

mod common;
#[path = "../tests/it/harness/mod.rs"]
#[allow(unused_imports)]
mod harness;

use common::arg;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::cluster::Cluster;
use harness::sshd::free_port;

/// Fields of `/proc/<pid>/status`, in KiB (0 when absent): VmRSS, VmHWM (high-water),
/// RssAnon (heap and stacks), RssFile (mapped file pages: the binary's own code and the
/// embedded UI, shared with the page cache).
fn status_kib<const N: usize>(pid: u32, names: [&str; N]) -> [u64; N] {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    names.map(|name| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    })
}

/// Threads of the process.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

/// (VmRSS, VmHWM) in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let [rss, hwm] = status_kib(pid, ["VmRSS", "VmHWM"]);
    (rss, hwm)
}

/// utime + stime of the process itself, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): utime is field 14, stime 15.
    let get = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(14) + get(15)
}

fn ticks_per_sec() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output();
    out.ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn main() {
    let minutes = arg("--minutes", 10);
    let every = Duration::from_secs(arg("--every-secs", 10).max(1));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let c = Cluster::new(1000);
        // The file as a user keeps it: default poll interval (5 s).
        let text = c.desired("qwen36", "").replace("poll_interval_secs: 1, ", "");
        c.write(&text);
        let port = free_port("127.0.0.1");
        // `SPARK_IDLE_WRAP="valgrind --tool=massif --massif-out-file=/tmp/massif.out"`
        // runs the controller under a profiler (a heap profile of the idle controller).
        let wrap: Vec<String> = std::env::var("SPARK_IDLE_WRAP")
            .map(|w| w.split_whitespace().map(String::from).collect())
            .unwrap_or_default();
        let bin = env!("CARGO_BIN_EXE_spark-control");
        let mut cmd = match wrap.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let limit = if wrap.is_empty() { 180 } else { 900 };
        let mut child = cmd
            .arg("serve")
            .arg("--desired")
            .arg(&c.desired_path)
            .arg("--data-dir")
            .arg(&c.data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("HF_ENDPOINT", c.hub.url())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start spark-control serve");
        let pid = child.id();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .expect("client");
        let url = format!("http://127.0.0.1:{port}/api/state");
        let t = Instant::now();
        loop {
            let state: Option<serde_json::Value> = match client.get(&url).send().await {
                Ok(r) => r.json().await.ok(),
                Err(_) => None,
            };
            let idle = state.as_ref().is_some_and(|s| {
                s["ready"] == true
                    && s["busy"] == false
                    && s["plan"]["steps"].as_array().is_some_and(|a| a.is_empty())
            });
            if idle {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(limit),
                "not converged after {limit} s: {state:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let converged = t.elapsed();
        let hz = ticks_per_sec();
        let (rss0, _) = memory(pid);
        let cpu0 = cpu_ticks(pid);
        let start = Instant::now();
        let end = start + Duration::from_secs(minutes * 60);
        let mut samples = Vec::new();
        println!("{:>7} {:>9} {:>9} {:>7}", "t (s)", "RSS MiB", "HWM MiB", "CPU %");
        let mut last = (start, cpu0);
        while Instant::now() < end {
            tokio::time::sleep(every.min(end.saturating_duration_since(Instant::now()))).await;
            let (rss, hwm) = memory(pid);
            let ticks = cpu_ticks(pid);
            let now = Instant::now();
            let pct = (ticks - last.1) as f64 / hz / (now - last.0).as_secs_f64() * 100.0;
            last = (now, ticks);
            println!(
                "{:>7.0} {:>9.1} {:>9.1} {:>7.2}",
                (now - start).as_secs_f64(),
                rss as f64 / 1024.0,
                hwm as f64 / 1024.0,
                pct
            );
            samples.push(rss);
        }
        let wall = start.elapsed().as_secs_f64();
        let cpu = (cpu_ticks(pid) - cpu0) as f64 / hz / wall * 100.0;
        let (rss_end, hwm) = memory(pid);
        let [anon, file] = status_kib(pid, ["RssAnon", "RssFile"]);
        let nthreads = threads(pid);
        let rss_max = samples.iter().copied().max().unwrap_or(rss_end);
        let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        let _ = child.wait();
        println!(
            "idle {minutes} min with two hosts: RSS {:.1} MiB at rest start, {:.1} MiB at the end, {:.1} MiB max sampled, {:.1} MiB high-water; CPU {:.2} % of one core (converged in {:.1} s)",
            rss0 as f64 / 1024.0,
            rss_end as f64 / 1024.0,
            rss_max as f64 / 1024.0,
            hwm as f64 / 1024.0,
            cpu,
            converged.as_secs_f64()
        );
        println!(
            "at the end: {:.1} MiB anonymous (heap, stacks), {:.1} MiB file-backed (the binary's pages), {nthreads} threads",
            anon as f64 / 1024.0,
            file as f64 / 1024.0
        );
        println!(
            "{}",
            serde_json::json!({
                "bench": "idle",
                "rss_anon_kib": anon,
                "rss_file_kib": file,
                "threads": nthreads,
                "minutes": minutes,
                "rss_start_kib": rss0,
                "rss_end_kib": rss_end,
                "rss_max_kib": rss_max,
                "hwm_kib": hwm,
                "cpu_percent": cpu,
            })
        );
        drop(c);
    });
}
