//! The launcher driver against both generations of the simulated `launch-cluster.sh`
//! (DESIGN §4), with the **default** cluster settings: every scenario runs once per
//! generation. Assertions are about the world: the fake vLLM processes and their argv and
//! environment, containers, the launcher process, files on the hosts, what `/api/state`
//! says.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spark_control::status::Outcome;

use crate::harness::cluster::{
    launches, vllm_processes, Cluster, Generation, Sampler, HEAD, WORKER,
};

const QWEN36: &str = "RedHatAI/Qwen3.6-35B-A3B-NVFP4";
const GEMMA4: &str = "google/gemma-4-26B-A4B-it";
const QWEN3VL: &str = "Qwen/Qwen3-VL-30B-A3B-Instruct-FP8";
const BIG: &str = "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8";

/// Whether the launcher spark-control started on the head is alive (its pid file and
/// `/proc`).
fn own_launcher_alive(c: &Cluster) -> bool {
    let f = c.spark1.home().join(".spark-control/launcher.pid");
    let Ok(p) = std::fs::read_to_string(f) else {
        return false;
    };
    let p = p.trim();
    std::fs::read(format!("/proc/{p}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("spark-control-launcher"))
}

async fn wait_idle(c: &Cluster, secs: u64) {
    c.wait_status("idle", secs, |s| {
        s.plan.complete && s.plan.steps.is_empty() && !s.busy()
    })
    .await;
}

/// Cold start solo; a swap; a cluster model on both hosts; cluster → solo with the
/// worker's container and vLLM gone before the solo model starts. Never two models up.
async fn cold_start_swap_cluster_and_back(g: Generation) {
    let mut c = Cluster::with_launcher(600, g);
    let sampler = Sampler::start(c.vllm_port);
    c.start_controller();
    c.wait_serving(QWEN36, 90).await;
    let s = c.status();
    let gen = s
        .observed
        .hosts
        .get("spark1")
        .and_then(|h| h.launcher.get())
        .and_then(|l| l.generation);
    assert_eq!(gen, Some(g), "the generation is detected and shown");
    c.write(&c.desired("gemma4", ""));
    c.wait_serving(GEMMA4, 90).await;
    c.write(&c.desired("qwen3-235b-fp8", ""));
    c.wait_serving(BIG, 120).await;
    assert!(
        c.container_running(WORKER, "vllm_node"),
        "the worker takes part"
    );
    let rec = c
        .status()
        .observed
        .hosts
        .get("spark1")
        .and_then(|h| h.launch.get().cloned().flatten())
        .expect("a launch record");
    assert_eq!(
        rec.nodes,
        ["127.0.1.2", "127.0.1.3"],
        "interconnect addresses in -n"
    );
    // Cluster → solo: sample the worker while the solo model appears.
    let stop = Arc::new(AtomicBool::new(false));
    let bad = Arc::new(Mutex::new(Vec::<String>::new()));
    let watcher = {
        let (stop, bad) = (stop.clone(), bad.clone());
        let port = c.vllm_port;
        let worker_state = c.sim_root(WORKER).join("containers/vllm_node/pid");
        let worker_root = c.sim_root(WORKER).display().to_string();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(150);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                let solo_up = vllm_processes(port).iter().any(|(_, m)| m == QWEN36);
                if solo_up {
                    let worker_pid = std::fs::read_to_string(&worker_state).unwrap_or_default();
                    let worker_alive = !worker_pid.trim().is_empty()
                        && std::path::Path::new(&format!("/proc/{}", worker_pid.trim())).exists();
                    let worker_vllm = worker_vllm_count(&worker_root);
                    if worker_alive || worker_vllm > 0 {
                        bad.lock().expect("lock").push(format!(
                            "solo vLLM up while the worker's container ({worker_alive}) / vLLM ({worker_vllm}) runs"
                        ));
                    }
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        })
    };
    c.write(&c.desired("qwen36", ""));
    c.wait_serving(QWEN36, 90).await;
    stop.store(true, Ordering::SeqCst);
    let _ = watcher.join();
    let bad = bad.lock().expect("lock").clone();
    assert!(bad.is_empty(), "{bad:?}");
    assert!(!c.container_running(WORKER, "vllm_node"));
    let (max_alive, seen) = sampler.finish();
    assert_eq!(max_alive, 1, "two models were up at once: {seen:?}");
    assert_eq!(launches(&seen, QWEN36), 2, "{seen:?}");
    assert_eq!(launches(&seen, GEMMA4), 1, "{seen:?}");
    assert_eq!(launches(&seen, BIG), 1, "{seen:?}");
    wait_idle(&c, 30).await;
}
both!(cold_start_swap_cluster_and_back);

/// Fake vLLM processes (any role) whose simulated host is `root`.
fn worker_vllm_count(root: &str) -> usize {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return 0;
    };
    rd.flatten()
        .filter(|e| {
            let p = e.path();
            let cmd = std::fs::read(p.join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (cmd.starts_with("vllm serve") || cmd.contains("/vllm serve"))
                && std::fs::read(p.join("environ"))
                    .unwrap_or_default()
                    .split(|b| *b == 0)
                    .any(|kv| kv == format!("SPARK_SIM_ROOT={root}").as_bytes())
        })
        .count()
}

/// Edits land while the launcher is still in its start-up (it sleeps before it execs
/// vLLM): at most one vLLM process at every 25 ms sample, and the last edit wins.
async fn edits_during_the_launchers_startup(g: Generation, n: usize) {
    let mut c = Cluster::with_launcher(400, g);
    c.knob("launcher-startup-ms", Some("2500"));
    let sampler = Sampler::start(c.vllm_port);
    c.start_controller();
    c.wait_serving(QWEN36, 90).await;
    let order = ["gemma4", "qwen3-vl", "qwen36", "gemma4", "qwen3-vl"];
    let repos = [GEMMA4, QWEN3VL, QWEN36, GEMMA4, QWEN3VL];
    // First edit, then wait until its launcher is in its start-up.
    c.write(&c.desired(order[0], ""));
    c.wait_status("launching", 90, |s| {
        s.operation
            .as_ref()
            .is_some_and(|o| o.phase.contains("+ launch"))
    })
    .await;
    let t = Instant::now() + Duration::from_secs(10);
    while !own_launcher_alive(&c) && Instant::now() < t {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for m in &order[1..n] {
        tokio::time::sleep(Duration::from_millis(400)).await;
        c.write(&c.desired(m, ""));
    }
    let last = repos[n - 1];
    c.wait_serving(last, 120).await;
    wait_idle(&c, 60).await;
    // Long enough for a launcher left behind to have exec'd its vLLM.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (max_alive, seen) = sampler.finish();
    assert_eq!(max_alive, 1, "two vLLMs at once: {seen:?}");
    let now = c.vllm_processes();
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0].1, last);
}

async fn two_edits_during_the_launchers_startup(g: Generation) {
    edits_during_the_launchers_startup(g, 2).await
}
both!(two_edits_during_the_launchers_startup);

async fn five_edits_during_the_launchers_startup(g: Generation) {
    edits_during_the_launchers_startup(g, 5).await
}
both!(five_edits_during_the_launchers_startup);

/// vLLM dies out of band after it was ready: on generation A the launcher's trap takes
/// the container down, on B the container stays up without vLLM. Either way: an event
/// says it crashed, and it is relaunched.
async fn crashed_vllm_is_relaunched_with_an_event(g: Generation) {
    let mut c = Cluster::with_launcher(400, g);
    c.start_controller();
    c.wait_serving(QWEN36, 90).await;
    wait_idle(&c, 30).await;
    let before = c.vllm_processes();
    assert_eq!(before.len(), 1);
    let pid = before[0].0;
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    c.wait_status("relaunched", 90, |_| {
        let now = c.vllm_processes();
        now.len() == 1 && now[0].0 != pid
    })
    .await;
    c.wait_serving(QWEN36, 60).await;
    let events = c.handle().events.query(&Default::default());
    assert!(
        events.iter().any(|e| e.service == "vllm"
            && !e.ok
            && e.error.as_deref().is_some_and(|m| m.contains("crashed"))),
        "a crash event: {events:?}"
    );
}
both!(crashed_vllm_is_relaunched_with_an_event);

/// Hostile `extra_args`, `env` and served names arrive literally in the fake vLLM's argv
/// and environment; nothing they spell runs on the head.
async fn hostile_arguments_arrive_literally(g: Generation) {
    let mut c = Cluster::with_launcher(300, g);
    let marker = c.dir.path().join("pwned");
    let marker2 = c.dir.path().join("pwned-env");
    let hostile = [
        format!("$(touch {})", marker.display()),
        format!("`touch {}`", marker.display()),
        format!("; touch {}", marker.display()),
        format!("| touch {}", marker.display()),
        "it's \"quoted\"".to_string(),
        "two  words".to_string(),
        "tab\tand trailing space ".to_string(),
    ];
    let list = hostile
        .iter()
        .map(|h| serde_json::to_string(h).expect("json"))
        .collect::<Vec<_>>()
        .join(", ");
    let env_value = format!("$(touch {}); `id` 'q' \"d\"", marker2.display());
    c.write(&c.desired(
        "qwen36",
        &format!(
            "overrides:\n  qwen36: {{ extra_args: [--served-model-name, {list}, --trust-remote-code], env: {{ SPARK_HOSTILE: {} }} }}\n",
            serde_json::to_string(&env_value).expect("json")
        ),
    ));
    c.start_controller();
    c.wait_status("launched", 90, |_| !c.launch_argv().is_empty())
        .await;
    let argv = c.launch_argv();
    let at = argv
        .iter()
        .position(|a| a == "--served-model-name")
        .expect("served names passed");
    assert_eq!(argv[at + 1..at + 1 + hostile.len()], hostile, "{argv:?}");
    assert!(argv.iter().any(|a| a == "--trust-remote-code"), "{argv:?}");
    let env = c.vllm_environ();
    assert!(
        env.iter()
            .any(|kv| *kv == format!("SPARK_HOSTILE={env_value}")),
        "the env value arrives as written"
    );
    // Ready under its (first) served name.
    c.wait_status("ready", 60, |s| {
        s.observed
            .vllm
            .get()
            .is_some_and(|v| v.models.contains(&hostile[0]))
    })
    .await;
    assert!(!marker.exists(), "a command in an argument ran on the head");
    assert!(
        !marker2.exists(),
        "a command in an env value ran on the head"
    );
}
both!(hostile_arguments_arrive_literally);

/// Without interconnect addresses the launcher refuses the node list: the launch fails
/// within seconds with the launcher's own line as the headline; nothing is left running.
async fn launcher_error_fails_fast_with_its_line(g: Generation) {
    let mut c = Cluster::with_launcher(300, g);
    let text = c
        .desired("qwen3-235b-fp8", "")
        .replace(", interconnect: 127.0.1.2", "")
        .replace(", interconnect: 127.0.1.3", "");
    c.write(&text);
    c.start_controller();
    let s = c
        .wait_status("a failed launch", 120, |s| {
            s.operation.as_ref().is_some_and(|o| {
                o.plan_text.contains("+ launch") && matches!(o.outcome, Outcome::Failed(_))
            })
        })
        .await;
    let op = s.operation.clone().expect("op");
    let Outcome::Failed(msg) = &op.outcome else {
        unreachable!()
    };
    assert!(
        msg.contains(
            "Error: Local IP (127.0.1.2) is not in the list of nodes (127.0.0.2,127.0.0.3)."
        ),
        "{msg}"
    );
    assert!(!msg.contains("Some(") && !msg.contains("Failed("), "{msg}");
    assert!(!own_launcher_alive(&c));
    assert!(!c.container_running(HEAD, "vllm_node"));
    assert!(!c.container_running(WORKER, "vllm_node"));
}
both!(launcher_error_fails_fast_with_its_line);

/// A launcher that hangs in its start-up fails after `launch_timeout_secs` with its last
/// lines; a hung launcher is also cancelled at once by a new desired state. Either way
/// the hosts are left with no launcher and no container.
async fn hung_launcher_fails_or_is_cancelled_within_seconds(g: Generation) {
    let mut c = Cluster::with_launcher(300, g);
    c.knob("launcher-startup-ms", Some("600000"));
    c.write(&c.desired("qwen36", "").replace(
        "  start_timeout_secs: 60\n",
        "  start_timeout_secs: 60\n  launch_timeout_secs: 4\n",
    ));
    c.start_controller();
    let s = c
        .wait_status("a failed launch", 120, |s| {
            s.operation.as_ref().is_some_and(|o| {
                o.plan_text.contains("+ launch") && matches!(o.outcome, Outcome::Failed(_))
            })
        })
        .await;
    let op = s.operation.clone().expect("op");
    let Outcome::Failed(msg) = &op.outcome else {
        unreachable!()
    };
    assert!(msg.contains("Waiting for cluster to be ready"), "{msg}");
    assert!(msg.contains("launch_timeout_secs"), "{msg}");
    assert!(!own_launcher_alive(&c), "the hung launcher is stopped");
    assert!(!c.container_running(HEAD, "vllm_node"));
    // Now without the short timeout: the retry hangs; a new desired state cancels it.
    c.write(&c.desired("qwen36", ""));
    c.handle()
        .commands
        .send(spark_control::reconcile::Command::Retry)
        .await
        .expect("retry");
    let t = Instant::now() + Duration::from_secs(60);
    while !own_launcher_alive(&c) && Instant::now() < t {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(own_launcher_alive(&c), "the retry's launcher runs");
    let asked = Instant::now();
    c.write(&c.desired("null", ""));
    c.wait_status("no launcher, no vLLM container", 30, |_| {
        !own_launcher_alive(&c) && !c.container_running(HEAD, "vllm_node")
    })
    .await;
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "{:?}",
        asked.elapsed()
    );
    assert!(!c.container_running(HEAD, "vllm_node"));
    let seen: BTreeSet<_> = c.vllm_processes().into_iter().collect();
    assert!(seen.is_empty(), "{seen:?}");
}
both!(hung_launcher_fails_or_is_cancelled_within_seconds);

/// A busy Docker daemon answers `docker top` a second late, about the moment it looked:
/// generation B's launcher may have run `docker exec -d` and exited 0 after that look
/// began. The launch is not called failed on such an answer; the model serves.
async fn a_slow_docker_daemon_does_not_fail_a_launch(g: Generation) {
    let mut c = Cluster::with_launcher(300, g);
    c.knob("docker-top-delay-ms", Some("1000"));
    let sampler = Sampler::start(c.vllm_port);
    c.start_controller();
    c.wait_serving(QWEN36, 120).await;
    wait_idle(&c, 60).await;
    let s = c.status();
    let op = s.operation.clone().expect("the launch's operation");
    assert!(matches!(op.outcome, Outcome::Succeeded), "{:?}", op.outcome);
    let (_, seen) = sampler.finish();
    assert_eq!(
        launches(&seen, QWEN36),
        1,
        "one vLLM, no retry after a false failure: {seen:?}"
    );
}
both!(a_slow_docker_daemon_does_not_fail_a_launch);
