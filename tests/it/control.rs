//! The control loop against two real sshd "Sparks": swaps, relaunches, faults, restarts.
//! Every assertion is about the world (what serves, which processes and containers run),
//! not about which commands were sent.

/// `both!(scenario)`: `scenario(Generation)` as two tests, one per launcher generation
/// (`scenario::generation_a`, `scenario::generation_b`). Defined before the modules below,
/// which use it.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn generation_a() {
                super::$name(Generation::A).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn generation_b() {
                super::$name(Generation::B).await
            }
        }
    };
}

mod deployments;
mod launcher;
mod multi;
mod on_request;
mod partial;
mod scale;

use std::time::{Duration, Instant};

use spark_control::execute::ExecErrorKind;
use spark_control::reconcile::Command;
use spark_control::status::{Health, Outcome};

use crate::harness::cluster::{launches, Cluster, Sampler, HEAD, WORKER};

const QWEN36: &str = "RedHatAI/Qwen3.6-35B-A3B-NVFP4";
const GEMMA4: &str = "google/gemma-4-26B-A4B-it";
const QWEN3VL: &str = "Qwen/Qwen3-VL-30B-A3B-Instruct-FP8";

fn host_health(s: &spark_control::status::Status, name: &str) -> Option<Health> {
    s.resources
        .iter()
        .find(|r| r.kind == "host" && r.name == name)
        .map(|r| r.health)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_start_then_swap_never_two_models() {
    let mut c = Cluster::new(1500);
    let sampler = Sampler::start(c.vllm_port);
    c.start_controller();
    // 1. Cold start: downloads, launches, serves on the head; services start on spark2.
    c.wait_serving(QWEN36, 60).await;
    c.wait_status("services up", 30, |s| {
        s.observed.services.values().all(|f| f.get() == Some(&true))
    })
    .await;
    assert!(c.container_running(WORKER, "parakeet") && c.container_running(WORKER, "magpie"));
    assert!(!c.container_running(HEAD, "parakeet"));
    // 2. Swap A → B.
    c.write(&c.desired("gemma4", ""));
    c.wait_serving(GEMMA4, 60).await;
    let (max_alive, seen) = sampler.finish();
    assert_eq!(max_alive, 1, "two models were up at once: {seen:?}");
    assert_eq!(launches(&seen, QWEN36), 1);
    assert_eq!(launches(&seen, GEMMA4), 1);
    let s = c
        .wait_status("plan empty", 20, |s| s.plan.steps.is_empty() && !s.busy())
        .await;
    assert!(s.plan.complete, "{}", s.plan_text);
    // One SSH connection per host for everything above.
    let conns = c.handle().hosts.borrow().connections();
    assert_eq!(conns.get("spark1"), Some(&1), "{conns:?}");
    assert_eq!(conns.get("spark2"), Some(&1), "{conns:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn override_change_relaunches_unrelated_edit_does_not() {
    let mut c = Cluster::new(800);
    c.start_controller();
    c.wait_serving(QWEN36, 60).await;
    c.wait_status("idle", 30, |s| s.plan.steps.is_empty() && !s.busy())
        .await;
    let before = c.vllm_processes();
    assert_eq!(before.len(), 1);
    // An unrelated edit (a comment, another model's settings): the same process keeps serving.
    c.write(&format!(
        "{}# a comment\noverrides:\n  gemma4: {{ max_context: 8192 }}\n",
        c.desired("qwen36", "")
    ));
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        c.vllm_processes(),
        before,
        "an unrelated edit must not relaunch"
    );
    // 3. A setting of the active model: relaunched with the new flag.
    c.write(&c.desired(
        "qwen36",
        "overrides:\n  qwen36: { gpu_memory: 0.9, prefix_caching: true }\n",
    ));
    c.wait_status("new settings in force", 20, |s| {
        s.desired
            .as_ref()
            .is_some_and(|d| d.overrides.get("qwen36").and_then(|o| o.gpu_memory) == Some(0.9))
    })
    .await;
    let old_pid = before[0].0;
    c.wait_status("relaunched", 60, |s| {
        !s.busy()
            && s.plan.steps.is_empty()
            && c.vllm_processes().iter().any(|(p, _)| *p != old_pid)
    })
    .await;
    c.wait_serving(QWEN36, 30).await;
    let after = c.vllm_processes();
    assert_eq!(after.len(), 1);
    assert_ne!(
        after[0].0, before[0].0,
        "the model must have been relaunched"
    );
    let argv = c.launch_argv();
    assert!(
        argv.windows(2)
            .any(|w| w == ["--gpu-memory-utilization", "0.90"]),
        "{argv:?}"
    );
    assert!(
        argv.iter().any(|a| a == "--enable-prefix-caching"),
        "{argv:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_model_is_relaunched() {
    let mut c = Cluster::new(800);
    c.start_controller();
    c.wait_serving(QWEN36, 60).await;
    let before = c.vllm_processes();
    // 4. Kill the fake vLLM out of band.
    for (pid, _) in &before {
        let _ = std::process::Command::new("kill")
            .arg("-9")
            .arg(pid.to_string())
            .status();
    }
    c.wait_status("noticed the dead model", 30, |s| {
        s.busy() || s.observed.vllm.get().is_some_and(|v| v.models.is_empty())
    })
    .await;
    c.wait_serving(QWEN36, 60).await;
    let after = c.vllm_processes();
    assert_eq!(after.len(), 1);
    assert_ne!(after[0].0, before[0].0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_worker_gets_no_destructive_action_then_converges() {
    let mut c = Cluster::new(800);
    c.start_controller();
    c.wait_serving(QWEN36, 60).await;
    c.wait_status("services up", 30, |s| {
        s.observed.services.values().all(|f| f.get() == Some(&true))
    })
    .await;
    let model_pid = c.vllm_processes();
    // 5. spark2's sshd stops; meanwhile parakeet is set to not run.
    c.spark2.stop();
    c.wait_status("spark2 unreachable", 30, |s| {
        host_health(s, "spark2") == Some(spark_control::status::Health::Degraded)
    })
    .await;
    c.write(&c.desired("qwen36", "").replace(
        &format!("port: {}, running: true }}\n  magpie", c.stt_port),
        &format!("port: {}, running: false }}\n  magpie", c.stt_port),
    ));
    let s = c
        .wait_status("plan incomplete", 20, |s| !s.plan.complete)
        .await;
    assert!(
        s.plan.unknown.iter().any(|u| u.contains("spark2")),
        "{:?}",
        s.plan.unknown
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Nothing destructive happened: the model on spark1 still serves, same process; parakeet
    // still runs on spark2 (it cannot be stopped while unseen).
    assert_eq!(c.vllm_processes(), model_pid);
    assert!(c.container_running(WORKER, "parakeet"));
    let events = c.handle().events.query(&Default::default());
    assert!(
        events.iter().any(|e| e.service == "spark2" && !e.ok),
        "a transition event: {events:?}"
    );
    // It returns: the loop converges.
    c.spark2.start_again();
    c.wait_status("parakeet stopped", 60, |s| {
        s.plan.complete && s.plan.steps.is_empty() && !s.busy()
    })
    .await;
    assert!(!c.container_running(WORKER, "parakeet"));
    assert_eq!(c.vllm_processes(), model_pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_host_key_is_refused() {
    let mut c = Cluster::new(500);
    c.start_controller();
    c.wait_serving(QWEN36, 60).await;
    // 6. spark2's host key changes (and its sshd restarts): refused, host unreachable,
    // the error names both fingerprints.
    let old_fp = c.spark2.host_fingerprint();
    c.spark2.regenerate_host_key();
    let new_fp = c.spark2.host_fingerprint();
    assert_ne!(old_fp, new_fp);
    let s = c
        .wait_status("host key refused", 30, |s| {
            s.observed
                .hosts
                .get("spark2")
                .and_then(|h| h.containers.why())
                .is_some_and(|w| w.contains("host key"))
        })
        .await;
    let why = s.observed.hosts["spark2"]
        .containers
        .why()
        .unwrap_or_default()
        .to_string();
    assert!(why.contains(&old_fp) && why.contains(&new_fp), "{why}");
    assert_eq!(host_health(&s, "spark2"), Some(Health::Degraded));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_edit_changes_nothing() {
    let mut c = Cluster::new(500);
    c.start_controller();
    c.wait_serving(QWEN36, 60).await;
    c.wait_status("idle", 30, |s| s.plan.steps.is_empty() && !s.busy())
        .await;
    let before = c.vllm_processes();
    // 7. An invalid edit: the last good file stays in force, the error is visible.
    c.write(
        &c.desired("gemma4", "")
            .replace("workers: [spark2]", "workers: [spark9]"),
    );
    let s = c
        .wait_status("error visible", 20, |s| !s.desired_diagnostics.is_empty())
        .await;
    let err = s
        .desired_diagnostics
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        err.contains("cluster.workers[0]: unknown host `spark9`"),
        "{err}"
    );
    assert!(s
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("last valid one stays in force"));
    assert_eq!(
        s.desired
            .as_ref()
            .and_then(|d| d.active_model.clone())
            .as_deref(),
        Some("qwen36")
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(c.vllm_processes(), before);
    assert_eq!(c.served().await, Some(vec![QWEN36.to_string()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desired_change_mid_launch_ends_with_the_new_model() {
    let mut c = Cluster::new(600);
    c.start_controller();
    c.wait_serving(QWEN36, 60).await;
    let sampler = Sampler::start(c.vllm_port);
    // Slow start-up for the next model, then change our mind while it loads.
    std::fs::write(c.sim_root(HEAD).join("knobs/startup-delay-ms"), "12000").expect("knob");
    c.write(&c.desired("gemma4", ""));
    let gemma_op = c
        .wait_status("gemma4 loading", 60, |s| {
            s.operation.as_ref().is_some_and(|o| {
                o.outcome == Outcome::Running && o.phase.contains("wait until gemma4")
            })
        })
        .await
        .operation
        .as_ref()
        .map(|o| o.id)
        .expect("an operation");
    std::fs::write(c.sim_root(HEAD).join("knobs/startup-delay-ms"), "600").expect("knob");
    // 8. Pick B while A loads → A stopped, B serving.
    c.write(&c.desired("qwen3-vl", ""));
    c.wait_serving(QWEN3VL, 90).await;
    // The sampler sees it too (it samples every 25 ms): then its record is complete.
    let sampled = |s: &Sampler| s.served.lock().map(|g| g.clone()).unwrap_or_default();
    let t = Instant::now();
    while !sampled(&sampler).contains(QWEN3VL) && t.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let served = sampled(&sampler);
    let (max_alive, seen) = sampler.finish();
    assert_eq!(max_alive, 1, "two models up at once: {seen:?}");
    assert_eq!(c.vllm_processes().len(), 1);
    assert_eq!(launches(&seen, QWEN3VL), 1);
    // The stale launch was cancelled, not waited out: gemma4 was launched but never
    // served a request, and the event log says its operation was cancelled.
    assert_eq!(launches(&seen, GEMMA4), 1, "{seen:?}");
    let events = c
        .handle()
        .events
        .query(&spark_control::events::EventFilter::default());
    let lines: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{} {:?} {} {:?}",
                e.at.format("%T%.3f"),
                e.kind,
                e.service,
                e.error
            )
        })
        .collect();
    assert!(
        served.contains(QWEN3VL),
        "the sampler sees serving models: {served:?} {lines:#?}"
    );
    assert!(
        !served.iter().any(|m| m.contains("gemma")),
        "the stale model became ready: {served:?} {lines:#?}"
    );
    let cancelled = format!("operation {gemma_op} cancelled: the desired state changed");
    assert!(
        events
            .iter()
            .any(|e| e.error.as_deref() == Some(cancelled.as_str())),
        "no cancellation event for operation {gemma_op}: {events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.kind == spark_control::events::EventKind::Result
                && e.error
                    .as_deref()
                    .is_some_and(|m| m.starts_with("cancelled: "))),
        "no cancelled result in the event log: {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_service_runs_on_the_new_host_only() {
    let mut c = Cluster::new(500);
    c.start_controller();
    c.wait_status("services up", 60, |s| {
        s.observed.services.len() == 2
            && s.observed.services.values().all(|f| f.get() == Some(&true))
    })
    .await;
    assert!(c.container_running(WORKER, "parakeet"));
    // 9. Move parakeet from spark2 to spark1.
    c.write(&c.desired("qwen36", "").replace(
        &format!("parakeet: {{ kind: stt, host: spark2, port: {}", c.stt_port),
        &format!("parakeet: {{ kind: stt, host: spark1, port: {}", c.stt_port),
    ));
    c.wait_status("moved", 60, |s| {
        s.desired
            .as_ref()
            .is_some_and(|d| d.services["parakeet"].host == "spark1")
            && s.plan.steps.is_empty()
            && !s.busy()
            && s.observed.services.get("parakeet").and_then(|f| f.get()) == Some(&true)
    })
    .await;
    assert!(c.container_running(HEAD, "parakeet"));
    assert!(!c.container_running(WORKER, "parakeet"));
    // It answers on spark1's address now.
    let url = format!("http://{HEAD}:{}/health", c.stt_port);
    let r = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .expect("parakeet on spark1");
    assert!(r.status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_killed_mid_swap_finishes_with_one_launch() {
    let mut c = Cluster::new(600);
    let sampler = Sampler::start(c.vllm_port);
    c.start_controller();
    c.wait_serving(QWEN36, 60).await;
    std::fs::write(c.sim_root(HEAD).join("knobs/startup-delay-ms"), "3000").expect("knob");
    c.write(&c.desired("gemma4", ""));
    c.wait_status("gemma4 launched", 60, |s| {
        s.operation
            .as_ref()
            .is_some_and(|o| o.phase.contains("wait until gemma4"))
    })
    .await;
    // 10. Kill the controller mid-swap; start a new one.
    if let Some(ctl) = c.controller.as_mut() {
        ctl.kill();
    }
    c.controller = None;
    c.start_controller();
    c.wait_serving(GEMMA4, 60).await;
    c.wait_status("idle", 30, |s| s.plan.steps.is_empty() && !s.busy())
        .await;
    let (max_alive, seen) = sampler.finish();
    assert_eq!(max_alive, 1, "{seen:?}");
    assert_eq!(
        launches(&seen, GEMMA4),
        1,
        "gemma4 must be launched once: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_arguments_arrive_literally() {
    let mut c = Cluster::new(400);
    let canary = c.dir.path().join("pwned");
    let hostile = [
        "x; rm -rf ~".to_string(),
        "$(id)".to_string(),
        "`id`".to_string(),
        format!("$(touch {})", canary.display()),
        "'\"".to_string(),
    ];
    let list = hostile
        .iter()
        .map(|h| format!("{h:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    c.write(&c.desired(
        "qwen36",
        &format!("overrides:\n  qwen36: {{ extra_args: [--served-model-name, {list}] }}\n"),
    ));
    c.start_controller();
    c.wait_status("launched", 60, |_| !c.launch_argv().is_empty())
        .await;
    let argv = c.launch_argv();
    for h in &hostile {
        assert!(
            argv.iter().any(|a| a == h),
            "{h:?} must arrive as one argument: {argv:?}"
        );
    }
    assert!(!canary.exists(), "a command substitution ran on the remote");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_and_restart_commands_go_through_the_loop() {
    let mut c = Cluster::new(500);
    c.start_controller();
    c.wait_status("services up", 60, |s| {
        s.observed.services.len() == 2
            && s.observed.services.values().all(|f| f.get() == Some(&true))
    })
    .await;
    let pid_file = c.sim_root(WORKER).join("containers/magpie/pid");
    let before = std::fs::read_to_string(&pid_file).expect("magpie pid");
    c.handle()
        .commands
        .send(Command::RestartService("magpie".into()))
        .await
        .expect("send");
    c.wait_status("restarted", 60, |_| {
        std::fs::read_to_string(&pid_file).is_ok_and(|p| p != before)
    })
    .await;
    assert!(c.container_running(WORKER, "magpie"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_launch_fails_fast_backs_off_and_retries_on_request() {
    let mut c = Cluster::new(300);
    let knob = c.sim_root(HEAD).join("knobs/fail-startup");
    std::fs::write(&knob, "CUDA out of memory (simulated)").expect("knob");
    let sampler = Sampler::start(c.vllm_port);
    c.start_controller();
    // The model dies while starting: the operation fails fast (not after the 60 s start
    // timeout) and says what the log said.
    let s = c
        .wait_status("a failure", 45, |s| s.backoff.is_some())
        .await;
    let b = s.backoff.clone().expect("backoff");
    assert_eq!(b.failures, 1);
    assert!(b.error.contains("exited"), "{}", b.error);
    let op = s.operation.clone().expect("operation");
    let took = op.finished_at.expect("finished") - op.started_at;
    assert!(took < chrono::Duration::seconds(40), "failing took {took}");
    // vLLM gone while starting: the world is not as the step requires (retried).
    assert_eq!(op.failure_kind, Some(ExecErrorKind::Check), "{op:?}");
    let next = b.next_attempt.expect("a next attempt is scheduled");
    assert!(
        next > chrono::Utc::now() + chrono::Duration::seconds(3),
        "backoff starts at 10 s: {next}"
    );
    // No retry storm while backing off.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(c.status().backoff.as_ref().map(|b| b.failures), Some(1));
    // The operator fixes the cause and asks for a retry: it serves.
    std::fs::remove_file(&knob).expect("remove knob");
    c.handle()
        .commands
        .send(Command::Retry)
        .await
        .expect("retry");
    c.wait_serving(QWEN36, 60).await;
    let (_, seen) = sampler.finish();
    assert_eq!(
        launches(&seen, QWEN36),
        2,
        "one failed launch, one retry: {seen:?}"
    );
    assert!(c.status().backoff.is_none());
}

/// A configuration error — here `hf` is installed on neither host, so the model cannot
/// be downloaded — fails the operation with `failure_kind: config` and schedules no
/// retry (the same settings fail the same way; compare the launch failure above, which
/// is retried after 10 s). Installing the tool and asking for a retry serves the model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_error_is_not_retried_on_its_own() {
    let mut c = Cluster::new(300);
    c.knob("hf-not-installed", Some(""));
    c.start_controller();
    let s = c
        .wait_status("a failure", 45, |s| s.backoff.is_some())
        .await;
    let b = s.backoff.clone().expect("backoff");
    assert_eq!(b.failures, 1);
    assert_eq!(b.next_attempt, None, "no retry is scheduled: {b:?}");
    assert!(b.error.contains("is not installed"), "{}", b.error);
    let op = s.operation.clone().expect("operation");
    assert_eq!(op.failure_kind, Some(ExecErrorKind::Config), "{op:?}");
    assert!(matches!(op.outcome, Outcome::Failed(_)), "{op:?}");
    // The wire says so too.
    let (_, state) = crate::downloads::api(&c, "GET", "/api/state", None).await;
    assert_eq!(
        state["operation"]["failure_kind"], "config",
        "{}",
        state["operation"]
    );
    c.knob("hf-not-installed", None);
    c.handle()
        .commands
        .send(Command::Retry)
        .await
        .expect("retry");
    c.wait_serving(QWEN36, 60).await;
    assert!(c.status().backoff.is_none());
}

/// On unified memory (GB10: `nvidia-smi` reports `[N/A]`), a swap launches the next model
/// only once the host's memory is free again. The simulated Sparks hold the old model's
/// memory for 2 s after its stop (visible in `free -m`, not in `nvidia-smi`); the next
/// model's process must not appear before that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unified_memory_is_free_again_before_the_next_launch() {
    let mut c = Cluster::new(800);
    c.knob("smi-memory-na", Some(""));
    c.knob("smi-settle-ms", Some("2000"));
    c.start_controller();
    c.wait_serving(QWEN36, 60).await;
    c.write(&c.desired("gemma4", ""));
    c.wait_serving(GEMMA4, 90).await;
    // Back to qwen36, already in the cache: stop → settle → launch, nothing in between.
    c.write(&c.desired("qwen36", ""));
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut gone_at, mut back_at) = (None, None);
    while back_at.is_none() && Instant::now() < deadline {
        let now = c.vllm_processes();
        if gone_at.is_none() && now.is_empty() {
            gone_at = Some(Instant::now());
        }
        if gone_at.is_some() && now.iter().any(|(_, m)| m == QWEN36) {
            back_at = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (gone, back) = (
        gone_at.expect("gemma4 never stopped"),
        back_at.expect("qwen36 never came back"),
    );
    assert!(
        back - gone >= Duration::from_millis(1800),
        "qwen36 launched {:?} after gemma4 stopped, while its memory was still held",
        back - gone
    );
    c.wait_serving(QWEN36, 60).await;
}
