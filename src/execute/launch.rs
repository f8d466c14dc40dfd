//! The model's lifecycle on the head through the launcher driver (`crate::launcher`): the
//! stop (own launcher first, then `launch-cluster.sh -n <nodes> stop`, verified host by
//! host), the launch (an owned, detached launcher process whose output streams into the
//! operation log and fails the step at its first `Error:` line or non-zero exit), and the
//! wait for ready (vLLM's HTTP: `/health` and `/v1/models`; log lines only feed the log).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::{ExecError, Executor};
use crate::launcher::{self, Generation, LauncherState};
use crate::logs::Stream;
use crate::model::catalog::LaunchSpec;
use crate::model::desired::Cluster;
use crate::model::observed::LaunchRecord;
use crate::remote::{Cmd, ExecOpts, Line, Script};

const WRITE_RECORD: &str = "mkdir -p \"$HOME/.spark-control\" && printf '%s\\n' \"$1\" > \"$HOME/.spark-control/launch.json.tmp\" && mv \"$HOME/.spark-control/launch.json.tmp\" \"$HOME/.spark-control/launch.json\"";
const READ_RECORD: &str = "cat \"$HOME/.spark-control/launch.json\" 2>/dev/null || echo null";
const REMOVE_RECORD: &str = "rm -f \"$HOME/.spark-control/launch.json\"";

/// Lines kept of the followed output, for failure headlines.
const RECENT: usize = 40;

/// A task streaming a remote log into the operation log.
pub(crate) struct Follower {
    token: CancellationToken,
    /// The first `Error:` line seen.
    error: Arc<Mutex<Option<String>>>,
    /// The last lines seen.
    recent: Arc<Mutex<VecDeque<String>>>,
}

impl Follower {
    fn stop(&self) {
        self.token.cancel();
    }
    fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }
    fn recent(&self) -> Vec<String> {
        self.recent
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

fn follow(x: &Executor, host: &str, script: Script, watch_errors: bool) -> Option<Follower> {
    let t = x.hosts.get(host)?;
    let token = x.cancel.child_token();
    let error = Arc::new(Mutex::new(None));
    let recent = Arc::new(Mutex::new(VecDeque::new()));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Line>(256);
    let logs = x.logs.clone();
    let op = x.op;
    let h = host.to_string();
    let (e2, r2) = (error.clone(), recent.clone());
    tokio::spawn(async move {
        while let Some(l) = rx.recv().await {
            let (s, text) = match l {
                Line::Out(s) => (Stream::Stdout, s),
                Line::Err(s) => (Stream::Stderr, s),
            };
            if watch_errors && launcher::is_error_line(&text) {
                if let Ok(mut e) = e2.lock() {
                    e.get_or_insert_with(|| text.trim().to_string());
                }
            }
            if let Ok(mut r) = r2.lock() {
                if r.len() >= RECENT {
                    r.pop_front();
                }
                r.push_back(text.clone());
            }
            logs.push(Some(op), Some(&h), s, text);
        }
    });
    let tk = token.clone();
    tokio::spawn(async move {
        let _ = t
            .exec(
                &script,
                ExecOpts::new(Duration::from_secs(48 * 3600))
                    .lines(tx)
                    .cancel(tk),
            )
            .await;
    });
    Some(Follower {
        token,
        error,
        recent,
    })
}

fn verify(step: &str, message: impl Into<String>) -> ExecError {
    ExecError::Verify {
        step: step.into(),
        message: message.into(),
    }
}

/// The state of the launcher spark-control started on `head`, now.
async fn launcher_state(x: &Executor, line: &str, head: &str) -> Result<LauncherState, ExecError> {
    let out = x.quiet(line, head, &Script::Raw(launcher::STATE)).await?;
    launcher::parse_state(out.stdout.lines().next().unwrap_or("")).map_err(|e| verify(line, e))
}

/// Whether a `vllm serve` process runs inside the container on `head`, now.
async fn vllm_process(
    x: &Executor,
    line: &str,
    head: &str,
    c: &Cluster,
) -> Result<bool, ExecError> {
    let out = x
        .quiet(
            line,
            head,
            &Script::Pipe(vec![
                Cmd::new("docker").arg("top").arg(c.container.clone()),
                Cmd::new("grep").arg("-c").arg("vllm serve"),
            ]),
        )
        .await?;
    Ok(out.stdout.trim().parse::<u32>().unwrap_or(0) > 0)
}

/// Stops the launcher spark-control started on `head`, if alive, and waits for its cleanup.
async fn stop_own_launcher(x: &Executor, line: &str, head: &str) -> Result<(), ExecError> {
    x.run(
        line,
        head,
        &Script::Raw(launcher::STOP_OWN),
        Duration::from_secs(90),
        false,
        false,
    )
    .await
    .map(|_| ())
}

/// Whether the vLLM container runs on `head`, now.
async fn container_up(
    x: &Executor,
    line: &str,
    head: &str,
    c: &Cluster,
) -> Result<bool, ExecError> {
    Ok(x.containers(line, head)
        .await?
        .get(&c.container)
        .is_some_and(|v| v.running))
}

/// The launcher's last lines on `head`, and the line that explains a failure.
async fn launcher_tail(x: &Executor, line: &str, head: &str) -> (Vec<String>, String) {
    let lines: Vec<String> = match x.quiet(line, head, &Script::Raw(launcher::LOG_TAIL)).await {
        Ok(o) => o.stdout.lines().map(String::from).collect(),
        Err(_) => Vec::new(),
    };
    let h = launcher::headline(lines.iter().map(String::as_str))
        .unwrap_or_else(|| "(the launcher printed nothing)".into());
    (lines, h)
}

async fn read_record(x: &Executor, line: &str, head: &str) -> Option<LaunchRecord> {
    let out = x.quiet(line, head, &Script::Raw(READ_RECORD)).await.ok()?;
    serde_json::from_str::<Option<LaunchRecord>>(out.stdout.trim())
        .ok()
        .flatten()
}

async fn write_record(
    x: &Executor,
    line: &str,
    head: &str,
    r: &LaunchRecord,
) -> Result<(), ExecError> {
    let json = serde_json::to_string(r).unwrap_or_default();
    let write = Cmd::new("sh")
        .arg("-c")
        .arg(WRITE_RECORD)
        .arg("sh")
        .arg(json);
    x.run(
        line,
        head,
        &Script::One(write),
        Duration::from_secs(30),
        false,
        false,
    )
    .await
    .map(|_| ())
}

/// Every node a stop must name: the desired head and workers, and whatever the launch
/// record says the running model was given.
fn stop_nodes(x: &Executor, c: &Cluster, record: Option<&LaunchRecord>) -> Vec<String> {
    let mut nodes: Vec<String> = Vec::new();
    let mut add = |a: &str| {
        if !nodes.iter().any(|n| n == a) {
            nodes.push(a.to_string());
        }
    };
    for h in std::iter::once(&c.head).chain(c.workers.iter()) {
        if let Some(host) = x.desired.hosts.get(h) {
            add(host.launcher_address());
        }
    }
    for n in record.map(|r| r.nodes.as_slice()).unwrap_or_default() {
        add(n);
    }
    nodes
}

pub(super) async fn stop_model(x: &Executor, line: &str, head: &str) -> Result<(), ExecError> {
    let c = super::steps::cluster(x)?;
    // 1. The record loses `ready_at` first: what follows is a stop, not a crash.
    let record = read_record(x, line, head).await;
    if let Some(r) = record.as_ref().filter(|r| r.ready_at.is_some()) {
        let mut r = r.clone();
        r.ready_at = None;
        write_record(x, line, head, &r).await?;
    }
    // 2. Our own launcher: generation A's model lives as long as it does, and a launcher
    //    still starting would later `docker exec` into whatever container has the name.
    stop_own_launcher(x, line, head).await?;
    // 3. The launcher's stop, naming every node (without -n it stops the head only).
    let nodes = stop_nodes(x, c, record.as_ref());
    let argv = launcher::stop_argv(&nodes, c).map_err(|e| verify(line, e))?;
    x.say(Some(head), format!("stopping vLLM on {}", nodes.join(", ")));
    let cmd = Cmd::new(argv[0].clone())
        .args(argv[1..].iter().cloned())
        .cwd(c.launcher.clone());
    let out = x
        .run(
            line,
            head,
            &Script::One(cmd),
            Duration::from_secs(300),
            false,
            true,
        )
        .await?;
    if !out.success() {
        let text = format!("{}\n{}", out.stdout, out.stderr);
        let h = launcher::headline(text.lines()).unwrap_or_default();
        x.say(
            Some(head),
            format!("the stop command failed ({h}); checking each host"),
        );
    }
    x.run(
        line,
        head,
        &Script::Raw(REMOVE_RECORD),
        Duration::from_secs(30),
        false,
        false,
    )
    .await?;
    // 4. Verify host by host: the container is down (and with it every vLLM process in it).
    let mut hosts = vec![head.to_string()];
    hosts.extend(c.workers.iter().cloned());
    let deadline = Instant::now() + Duration::from_secs(60);
    for h in hosts {
        loop {
            let running = x
                .containers(line, &h)
                .await
                .map(|m| m.get(&c.container).is_some_and(|v| v.running));
            match running {
                Ok(false) => break,
                Ok(true) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(500)).await
                }
                Ok(true) => {
                    return Err(verify(
                        line,
                        format!(
                            "{} still runs on {h} a minute after `{}`",
                            c.container,
                            argv.join(" ")
                        ),
                    ))
                }
                // A worker that cannot be reached cannot be verified; the head must be.
                Err(e) if h != head => {
                    x.say(Some(&h), format!("cannot verify the stop on {h}: {e}"));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    // 5. Nothing answers on vLLM's port any more.
    if let Some(addr) = x.desired.hosts.get(head).map(|h| h.address.clone()) {
        let url = format!("http://{addr}:{}/health", c.port);
        let http = crate::observe::probe_client();
        let deadline = Instant::now() + Duration::from_secs(30);
        while http.get(&url).send().await.is_ok() {
            if Instant::now() >= deadline {
                return Err(verify(
                    line,
                    format!("vLLM still answers on {head}:{} after the stop", c.port),
                ));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    Ok(())
}

pub(super) async fn launch(
    x: &Executor,
    line: &str,
    head: &str,
    spec: &LaunchSpec,
    generation: Generation,
    argv: &[String],
) -> Result<(), ExecError> {
    let c = super::steps::cluster(x)?;
    // The record first: a controller restarted mid-launch then knows what it launched.
    let record = LaunchRecord {
        model: spec.model.clone(),
        repo: spec.repo.clone(),
        fingerprint: spec.fingerprint.clone(),
        settings: spec.settings.clone(),
        launched_at: Some(Utc::now()),
        nodes: spec.nodes.clone(),
        generation: Some(generation),
        ready_at: None,
    };
    write_record(x, line, head, &record).await?;
    // Never two launchers of ours: an earlier one is stopped (and its cleanup awaited).
    stop_own_launcher(x, line, head).await?;
    x.say(
        Some(head),
        format!(
            "launcher generation {}; nodes {}; running {}",
            generation,
            spec.nodes.join(","),
            argv.join(" ")
        ),
    );
    let start = Cmd::new("sh")
        .arg("-c")
        .arg(launcher::START)
        .arg("spark-control-start")
        .args(argv.iter().cloned())
        .cwd(c.launcher.clone());
    // Output is followed from the log file below; the start itself prints only its pid.
    let out = x.quiet(line, head, &Script::One(start)).await?;
    if !out.success() {
        let text = format!("{}\n{}", out.stdout, out.stderr);
        return Err(verify(
            line,
            launcher::headline(text.lines()).unwrap_or_else(|| "the launcher did not start".into()),
        ));
    }
    x.say(
        Some(head),
        format!(
            "launcher started ({}); its output: ~/.spark-control/launcher.log",
            out.stdout.trim()
        ),
    );
    let follower = follow(x, head, Script::Raw(launcher::FOLLOW_LOG), true);
    let result = watch_launch(x, line, head, c, follower.as_ref()).await;
    match &result {
        Ok(()) => {
            // Generation A: vLLM's output is the launcher's; keep following it for the wait.
            // Generation B: it is in `docker logs`, which the wait follows.
            if generation == Generation::A {
                if let Ok(mut f) = x.follower.lock() {
                    *f = follower;
                }
            }
        }
        Err(e) => {
            if let Some(f) = &follower {
                f.stop();
            }
            // Leave the hosts in a known state: no launcher, no containers.
            x.say(
                Some(head),
                format!("launch failed ({e}); stopping what it started"),
            );
            if let Err(stop) = stop_model(x, line, head).await {
                x.say(Some(head), format!("the clean-up stop failed too: {stop}"));
            }
        }
    }
    result
}

/// Until the launch has produced a `vllm serve` process in the container: fails at the launcher's first
/// `Error:` line, its non-zero exit, or after `launch_timeout_secs`; cancellable at once.
async fn watch_launch(
    x: &Executor,
    line: &str,
    head: &str,
    c: &Cluster,
    follower: Option<&Follower>,
) -> Result<(), ExecError> {
    let started = Instant::now();
    let limit = Duration::from_secs(c.launch_timeout_secs.max(1));
    loop {
        if x.cancel.is_cancelled() {
            return Err(ExecError::Cancelled(format!("{line} cancelled")));
        }
        if let Some(e) = follower.and_then(|f| f.error()) {
            return Err(verify(line, e));
        }
        let state = launcher_state(x, line, head).await?;
        let running = container_up(x, line, head, c).await?;
        // Done when vLLM runs in the container: generation A's launcher execs it after its
        // start-up (and stays), B's returns after `docker exec -d`.
        let serving_process = running && vllm_process(x, line, head, c).await?;
        match state {
            LauncherState::Exited { status: 0 } | LauncherState::Running { .. }
                if serving_process =>
            {
                return Ok(())
            }
            LauncherState::Exited { status } => {
                let (_, h) = launcher_tail(x, line, head).await;
                let what = if status == 0 {
                    format!("the launcher exited without starting {}", c.container)
                } else {
                    format!("the launcher exited with status {status}")
                };
                return Err(verify(line, format!("{what}: {h}")));
            }
            LauncherState::Killed | LauncherState::None => {
                let (_, h) = launcher_tail(x, line, head).await;
                return Err(verify(line, format!("the launcher was killed: {h}")));
            }
            LauncherState::Running { .. } => {}
        }
        if started.elapsed() >= limit {
            let (tail, _) = launcher_tail(x, line, head).await;
            let last: Vec<&str> = tail.iter().rev().take(3).map(String::as_str).collect();
            let last: Vec<&str> = last.into_iter().rev().collect();
            return Err(verify(
                line,
                format!(
                    "no vLLM running in {} after {}s (cluster.launch_timeout_secs); the launcher's last lines: {}",
                    c.container,
                    limit.as_secs(),
                    last.join(" / ")
                ),
            ));
        }
        x.pause(Duration::from_millis(400), line).await?;
    }
}

pub(super) async fn wait_ready(
    x: &Executor,
    line: &str,
    head: &str,
    served: &[String],
    timeout: u64,
) -> Result<(), ExecError> {
    let c = super::steps::cluster(x)?;
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let had_launcher = matches!(
        launcher_state(x, line, head).await?,
        LauncherState::Running { .. }
    );
    // The live log: generation A's vLLM prints into the launcher's output, B's into
    // `docker logs`. A follower left by the launch in this operation goes on.
    let mut own = None;
    let existing = x.follower.lock().map(|f| f.is_some()).unwrap_or(false);
    if !existing {
        own = if had_launcher {
            follow(
                x,
                head,
                Script::Raw("exec tail -n 50 -F \"$HOME/.spark-control/launcher.log\" 2>/dev/null"),
                false,
            )
        } else {
            follow(
                x,
                head,
                Script::One(
                    Cmd::new("docker")
                        .args(["logs", "-f", "--tail", "50"])
                        .arg(c.container.clone()),
                ),
                false,
            )
        };
    }
    let recent = |x: &Executor| -> String {
        let lines = match x.follower.lock() {
            Ok(f) if f.is_some() => f.as_ref().map(|f| f.recent()).unwrap_or_default(),
            _ => own
                .as_ref()
                .map(|f: &Follower| f.recent())
                .unwrap_or_default(),
        };
        let last: Vec<String> = lines.into_iter().rev().take(5).collect();
        last.into_iter().rev().collect::<Vec<_>>().join(" / ")
    };
    let http = crate::observe::probe_client();
    let addr = x
        .desired
        .hosts
        .get(head)
        .map(|h| h.address.clone())
        .unwrap_or_default();
    let mut last_check = Instant::now();
    loop {
        // A loading vLLM holds its port and answers nothing: the probes wait for their
        // timeout, so a cancel must not wait for them.
        let health = http.get(format!("http://{addr}:{}/health", c.port)).send();
        let healthy = matches!(
            x.unless_cancelled(health, line).await?,
            Ok(r) if r.status().is_success()
        );
        if healthy {
            let listed = x
                .unless_cancelled(x.observer.probe_vllm(&x.desired), line)
                .await?
                .get()
                .is_some_and(|v| served.iter().any(|n| v.models.contains(n)));
            if listed {
                if let Some(mut r) = read_record(x, line, head).await {
                    r.ready_at = Some(Utc::now());
                    write_record(x, line, head, &r).await?;
                }
                return Ok(());
            }
        }
        if last_check.elapsed() >= Duration::from_secs(1) {
            last_check = Instant::now();
            let running = container_up(x, line, head, c).await?;
            if !running {
                return Err(verify(
                    line,
                    format!(
                        "{} exited on {head} while vLLM was starting; last lines: {}",
                        c.container,
                        recent(x)
                    ),
                ));
            }
            let state = launcher_state(x, line, head).await?;
            let launcher_running = matches!(state, LauncherState::Running { .. });
            if had_launcher && !launcher_running {
                let (_, h) = launcher_tail(x, line, head).await;
                return Err(verify(
                    line,
                    format!("the launcher exited while vLLM was starting: {h}"),
                ));
            }
            if !launcher_running && !vllm_process(x, line, head, c).await? {
                return Err(verify(
                    line,
                    format!(
                        "vLLM exited on {head} while starting ({} still runs); last lines: {}",
                        c.container,
                        recent(x)
                    ),
                ));
            }
        }
        if Instant::now() >= deadline {
            return Err(verify(
                line,
                format!(
                    "{} was not ready after {timeout}s (raise start_timeout_secs for big models)",
                    served.join(", ")
                ),
            ));
        }
        x.pause(Duration::from_millis(400), line).await?;
    }
}
