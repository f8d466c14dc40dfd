//! Control-loop benchmark on two real sshd "Sparks" (run as root, needs openssh-server):
//!
//!   cargo bench --bench control_loop -- [--swaps N] [--minutes M]
//!
//! 1. Edit → first remote command: the desired file is rewritten (temp file + rename, as
//!    editors do) to swap the model; the stop command is wrapped so the *remote* side
//!    records when it started. Latency = remote start − file write. N swaps. A hand edit
//!    waits out the settle window (default 300 ms: a changed file acts only once it stayed
//!    the same that long); then N more swaps through the store the UI and API write with
//!    (a whole, atomic write of our own, which skips the window).
//! 2. SSH connections per host while polling for M minutes (default 10): the transport's
//!    own counter and sshd's "Accepted publickey" log lines.
//!
//! Prints a table and a JSON line. Bounded: N swaps (default 10) and M minutes.

mod common;
#[path = "../tests/it/harness/mod.rs"]
#[allow(unused_imports)]
mod harness;

use common::arg;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use harness::cluster::Cluster;

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn main() {
    let swaps = arg("--swaps", 10);
    let minutes = arg("--minutes", 10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut c = Cluster::new(300);
        let stamp = c.dir.path().join("stop-started");
        let with_stamp = |c: &Cluster, active: &str| {
            c.desired(active, "").replace(
                "  settle_timeout_secs: 5\n",
                &format!(
                    "  settle_timeout_secs: 5\n  stop_template: [sh, -c, \"date +%s%N >> {} && exec ./launch-cluster.sh -n \\\"$1\\\" stop\", sh, \"{{nodes}}\"]\n",
                    stamp.display()
                ),
            )
        };
        let text = with_stamp(&c, "qwen36");
        c.write(&text);
        c.start_controller();
        c.wait_serving("RedHatAI/Qwen3.6-35B-A3B-NVFP4", 120).await;
        c.wait_status("idle", 60, |s| s.plan.steps.is_empty() && !s.busy()).await;

        // 1. Edit → first remote command: by hand (i < swaps), then through the store.
        let mut lat_ms = Vec::new();
        let mut api_ms = Vec::new();
        let mut write_ms = Vec::new();
        for i in 0..2 * swaps {
            let (model, repo) = if i % 2 == 0 {
                ("gemma4", "google/gemma-4-26B-A4B-it")
            } else {
                ("qwen36", "RedHatAI/Qwen3.6-35B-A3B-NVFP4")
            };
            let before = std::fs::read_to_string(&stamp).map(|s| s.lines().count()).unwrap_or(0);
            let t0 = now_ns();
            if i < swaps {
                c.write(&with_stamp(&c, model));
            } else {
                let edit = spark_control::edit::DesiredEdit::Activate { model: Some(model.into()) };
                c.handle().store.edit(None, &edit, |_| Ok(())).await.expect("store edit");
                // The store fsyncs the file and its directory before it returns: how long
                // that took is reported apart from the loop's own latency.
                write_ms.push((now_ns().saturating_sub(t0)) as f64 / 1e6);
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            let remote = loop {
                let text = std::fs::read_to_string(&stamp).unwrap_or_default();
                if text.lines().count() > before {
                    break text.lines().last().and_then(|l| l.trim().parse::<u128>().ok()).unwrap_or(0);
                }
                assert!(Instant::now() < deadline, "no stop command within 30 s of the edit");
                tokio::time::sleep(Duration::from_millis(2)).await;
            };
            let ms = (remote.saturating_sub(t0)) as f64 / 1e6;
            if i < swaps { lat_ms.push(ms) } else { api_ms.push(ms) }
            c.wait_serving(repo, 120).await;
            c.wait_status("idle", 60, |s| s.plan.steps.is_empty() && !s.busy()).await;
        }
        lat_ms.sort_by(|a, b| a.total_cmp(b));
        let p50 = lat_ms.get(lat_ms.len() / 2).copied().unwrap_or(0.0);
        let max = lat_ms.last().copied().unwrap_or(0.0);
        println!("hand edit -> first remote command: n={} p50={p50:.1} ms max={max:.1} ms (includes the 300 ms settle window)", lat_ms.len());
        api_ms.sort_by(|a, b| a.total_cmp(b));
        let api_p50 = api_ms.get(api_ms.len() / 2).copied().unwrap_or(0.0);
        let api_max = api_ms.last().copied().unwrap_or(0.0);
        println!("UI/API edit -> first remote command: n={} p50={api_p50:.1} ms max={api_max:.1} ms (target < 100 ms)", api_ms.len());
        write_ms.sort_by(|a, b| a.total_cmp(b));
        let write_p50 = write_ms.get(write_ms.len() / 2).copied().unwrap_or(0.0);
        println!("  of which the store's read + write + fsync (file and directory): p50={write_p50:.1} ms");

        // 2. Connections per host over M minutes of polling.
        let start = c.handle().metrics.polls.load(std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(minutes * 60)).await;
        let polls = c.handle().metrics.polls.load(std::sync::atomic::Ordering::Relaxed) - start;
        let conns = c.handle().hosts.borrow().connections();
        let accepted = |log: String| log.lines().filter(|l| l.contains("Accepted publickey")).count();
        let a1 = accepted(c.spark1.log());
        let a2 = accepted(c.spark2.log());
        println!(
            "polling for {minutes} min: {polls} polls; SSH connections opened: spark1={} spark2={} (sshd accepted: {a1}, {a2}; target 1 each)",
            conns.get("spark1").copied().unwrap_or(0),
            conns.get("spark2").copied().unwrap_or(0)
        );
        println!(
            "{{\"edit_to_command_ms_p50\":{p50:.1},\"edit_to_command_ms_max\":{max:.1},\"api_edit_to_command_ms_p50\":{api_p50:.1},\"api_edit_to_command_ms_max\":{api_max:.1},\"swaps\":{swaps},\"minutes\":{minutes},\"polls\":{polls},\"connections\":{{\"spark1\":{},\"spark2\":{}}},\"sshd_accepted\":[{a1},{a2}]}}",
            conns.get("spark1").copied().unwrap_or(0),
            conns.get("spark2").copied().unwrap_or(0)
        );
    });
}
