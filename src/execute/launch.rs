//! The model's lifecycle on the head through the launcher driver (`crate::launcher`): the
//! stop (own launcher first, then `launch-cluster.sh -n <nodes> stop`, verified host by
//! host), the launch (an owned, detached launcher process whose output streams into the
//! operation log and fails the step at its first `Error:` line or non-zero exit), and the
//! wait for ready (vLLM's HTTP: `/health` and `/v1/models`; log lines only feed the log).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a swap's waits look again (container down, port closed, vLLM running,
/// ready), after the last look ended. A look is one round trip: its commands run at once
/// on the host's one SSH connection (several channels), or one loopback HTTP request. The
/// waits that run SSH commands are short (seconds: a stop, the launcher's start until
/// `vllm serve` runs); the long one, vLLM loading, is HTTP. Each look saved is latency the
/// user sees (the swap benchmark's overhead): was 100 ms, and the looks ran their
/// commands one after another (three round trips for the launch watch).
const POLL_MS: u64 = 50;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::wait::{Probe, Wait};
use super::{ExecError, Executor, RunOpts};
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

fn follow(exec: &Executor, host: &str, script: Script, watch_errors: bool) -> Option<Follower> {
    let t = exec.hosts.get(host)?;
    let token = exec.cancel.child_token();
    let error = Arc::new(Mutex::new(None));
    let recent = Arc::new(Mutex::new(VecDeque::new()));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Line>(256);
    let logs = exec.logs.clone();
    let op = exec.op;
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

/// The state of the launcher spark-control started on `head`, now.
async fn launcher_state(
    exec: &Executor,
    line: &str,
    head: &str,
) -> Result<LauncherState, ExecError> {
    let out = exec
        .quiet(line, head, &Script::Raw(launcher::STATE))
        .await?;
    launcher::parse_state(out.stdout.lines().next().unwrap_or(""))
        .map_err(|e| ExecError::check(line, e))
}

/// Whether a `vllm serve` process runs inside the container on `head`, now.
async fn vllm_process(
    exec: &Executor,
    line: &str,
    head: &str,
    c: &Cluster,
) -> Result<bool, ExecError> {
    let out = exec
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
async fn stop_own_launcher(exec: &Executor, line: &str, head: &str) -> Result<(), ExecError> {
    exec.run(
        line,
        head,
        &Script::Raw(launcher::STOP_OWN),
        RunOpts::new(Duration::from_secs(90)),
    )
    .await
    .map(|_| ())
}

/// Whether the vLLM container runs on `head`, now.
async fn container_up(
    exec: &Executor,
    line: &str,
    head: &str,
    c: &Cluster,
) -> Result<bool, ExecError> {
    Ok(exec
        .containers(line, head)
        .await?
        .get(&c.container)
        .is_some_and(|v| v.running))
}

/// The launcher's last lines on `head`, and the line that explains a failure.
async fn launcher_tail(exec: &Executor, line: &str, head: &str) -> (Vec<String>, String) {
    let lines: Vec<String> = match exec
        .quiet(line, head, &Script::Raw(launcher::LOG_TAIL))
        .await
    {
        Ok(o) => o.stdout.lines().map(String::from).collect(),
        Err(_) => Vec::new(),
    };
    let h = launcher::headline(lines.iter().map(String::as_str))
        .unwrap_or_else(|| "(the launcher printed nothing)".into());
    (lines, h)
}

async fn read_record(exec: &Executor, line: &str, head: &str) -> Option<LaunchRecord> {
    let out = exec
        .quiet(line, head, &Script::Raw(READ_RECORD))
        .await
        .ok()?;
    serde_json::from_str::<Option<LaunchRecord>>(out.stdout.trim())
        .ok()
        .flatten()
}

async fn write_record(
    exec: &Executor,
    line: &str,
    head: &str,
    r: &LaunchRecord,
) -> Result<(), ExecError> {
    // Never an empty record: a launch without one could not be identified after a restart.
    let json = serde_json::to_string(r).map_err(|e| {
        ExecError::config(
            line,
            format!("cannot serialise the launch record ({e}); not writing it"),
        )
    })?;
    let write = Cmd::new("sh")
        .arg("-c")
        .arg(WRITE_RECORD)
        .arg("sh")
        .arg(json);
    exec.run(
        line,
        head,
        &Script::One(write),
        RunOpts::new(Duration::from_secs(30)),
    )
    .await
    .map(|_| ())
}

/// Every node a stop must name: the desired head and workers, and whatever the launch
/// record says the running model was given.
fn stop_nodes(exec: &Executor, c: &Cluster, record: Option<&LaunchRecord>) -> Vec<String> {
    let mut nodes: Vec<String> = Vec::new();
    let mut add = |a: &str| {
        if !nodes.iter().any(|n| n == a) {
            nodes.push(a.to_string());
        }
    };
    for h in std::iter::once(&c.head).chain(c.workers.iter()) {
        if let Some(host) = exec.desired.hosts.get(h) {
            add(host.launcher_address());
        }
    }
    for n in record.map(|r| r.nodes.as_slice()).unwrap_or_default() {
        add(n);
    }
    nodes
}

pub(super) async fn stop_model(exec: &Executor, line: &str, head: &str) -> Result<(), ExecError> {
    let c = super::steps::cluster(exec)?;
    // 1. The record loses `ready_at` first: what follows is a stop, not a crash.
    let record = read_record(exec, line, head).await;
    if let Some(r) = record.as_ref().filter(|r| r.ready_at.is_some()) {
        let mut r = r.clone();
        r.ready_at = None;
        write_record(exec, line, head, &r).await?;
    }
    // 2. Our own launcher: generation A's model lives as long as it does, and a launcher
    //    still starting would later `docker exec` into whatever container has the name.
    stop_own_launcher(exec, line, head).await?;
    // 3. The launcher's stop, naming every node (without -n it stops the head only).
    let nodes = stop_nodes(exec, c, record.as_ref());
    let argv = launcher::stop_argv(&nodes, c).map_err(|e| ExecError::config(line, e))?;
    exec.say(Some(head), format!("stopping vLLM on {}", nodes.join(", ")));
    let cmd = Cmd::new(argv[0].clone())
        .args(argv[1..].iter().cloned())
        .cwd(c.launcher.clone());
    let out = exec
        .run(
            line,
            head,
            &Script::One(cmd),
            RunOpts::new(Duration::from_secs(300)).caller_checks_exit(),
        )
        .await?;
    if !out.success() {
        let text = format!("{}\n{}", out.stdout, out.stderr);
        let h = launcher::headline(text.lines()).unwrap_or_default();
        exec.say(
            Some(head),
            format!("the stop command failed ({h}); checking each host"),
        );
    }
    // 4. The record goes, while the stop is verified (at once: they are independent):
    //    the container is down on every host (and with it every vLLM process in it), and
    //    nothing answers on vLLM's port any more.
    let mut hosts = vec![head.to_string()];
    hosts.extend(c.workers.iter().cloned());
    let remove = exec.run(
        line,
        head,
        &Script::Raw(REMOVE_RECORD),
        RunOpts::new(Duration::from_secs(30)),
    );
    tokio::try_join!(
        async { remove.await.map(|_| ()) },
        containers_down(exec, line, head, hosts, c, &argv),
        port_closed(exec, line, head, c),
    )
    .map(|_| ())
}

/// Waits (a minute at most, to the end even when cancelled: it is the stop's check) until
/// the vLLM container runs on none of `hosts`. A worker that cannot be reached cannot be
/// verified and is passed over with a note; the head must be verified.
async fn containers_down(
    exec: &Executor,
    line: &str,
    head: &str,
    hosts: Vec<String>,
    c: &Cluster,
    argv: &[String],
) -> Result<(), ExecError> {
    // The hosts not yet seen without the container.
    let pending = &Mutex::new(hosts);
    let wait = Wait::new(
        format!("{} down on every node", c.container),
        Duration::from_secs(60),
        Duration::from_millis(POLL_MS),
    )
    .finishing();
    exec.poll_until(line, &wait, || async move {
        let hosts = pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        // Every pending host at once: one round trip per look, not one per host.
        let looks = futures::future::join_all(hosts.iter().map(|h| exec.containers(line, h))).await;
        let mut still = Vec::new();
        for (h, look) in hosts.into_iter().zip(looks) {
            match look {
                Ok(m) if m.get(&c.container).is_some_and(|v| v.running) => still.push(h),
                Ok(_) => {}
                Err(e) if h != head => {
                    exec.say(Some(&h), format!("cannot verify the stop on {h}: {e}"))
                }
                Err(e) => return Err(e),
            }
        }
        let verdict = match still.first() {
            None => Probe::Done(()),
            Some(h) => Probe::NotYet(format!(
                "{} still runs on {h} a minute after `{}`",
                c.container,
                argv.join(" ")
            )),
        };
        if let Ok(mut p) = pending.lock() {
            *p = still;
        }
        Ok(verdict)
    })
    .await
}

/// Waits (30 s at most, to the end even when cancelled) until nothing answers on vLLM's
/// port on `head`.
async fn port_closed(
    exec: &Executor,
    line: &str,
    head: &str,
    c: &Cluster,
) -> Result<(), ExecError> {
    let Some(addr) = exec.desired.hosts.get(head).map(|h| h.address.clone()) else {
        return Ok(());
    };
    let url = &format!("http://{addr}:{}/health", c.port);
    let http = &crate::observe::probe_client();
    let wait = Wait::new(
        format!("nothing on {head}:{}", c.port),
        Duration::from_secs(30),
        Duration::from_millis(POLL_MS),
    )
    .finishing();
    exec.poll_until(line, &wait, || async move {
        Ok(if http.get(url).send().await.is_ok() {
            Probe::NotYet(format!(
                "vLLM still answers on {head}:{} after the stop",
                c.port
            ))
        } else {
            Probe::Done(())
        })
    })
    .await
}

pub(super) async fn launch(
    exec: &Executor,
    line: &str,
    head: &str,
    spec: &LaunchSpec,
    generation: Generation,
    argv: &[String],
) -> Result<(), ExecError> {
    let c = super::steps::cluster(exec)?;
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
        deployment: Some(super::steps::deployment_name(exec)),
    };
    // Never two launchers of ours: an earlier one is stopped (and its cleanup awaited).
    // Both before the start, independent of each other: at once, one round trip.
    tokio::try_join!(
        write_record(exec, line, head, &record),
        stop_own_launcher(exec, line, head),
    )?;
    exec.say(
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
    let out = exec.quiet(line, head, &Script::One(start)).await?;
    if !out.success() {
        let text = format!("{}\n{}", out.stdout, out.stderr);
        return Err(ExecError::check(
            line,
            launcher::headline(text.lines()).unwrap_or_else(|| "the launcher did not start".into()),
        ));
    }
    exec.say(
        Some(head),
        format!(
            "launcher started ({}); its output: ~/.spark-control/launcher.log",
            out.stdout.trim()
        ),
    );
    let follower = follow(exec, head, Script::Raw(launcher::FOLLOW_LOG), true);
    let result = watch_launch(exec, line, head, c, follower.as_ref()).await;
    match &result {
        Ok(()) => {
            // Generation A: vLLM's output is the launcher's; keep following it for the wait.
            // Generation B: it is in `docker logs`, which the wait follows.
            if generation == Generation::A {
                if let Ok(mut f) = exec.follower.lock() {
                    *f = follower;
                }
            }
        }
        Err(e) => {
            if let Some(f) = &follower {
                f.stop();
            }
            // Leave the hosts in a known state: no launcher, no containers.
            exec.say(
                Some(head),
                format!("launch failed ({e}); stopping what it started"),
            );
            if let Err(stop) = stop_model(exec, line, head).await {
                exec.say(Some(head), format!("the clean-up stop failed too: {stop}"));
            }
        }
    }
    result
}

/// Until the launch has produced a `vllm serve` process in the container: fails at the
/// launcher's first `Error:` line, its exit, or after `launch_timeout_secs` (with the
/// launcher's last lines); cancellable at once.
async fn watch_launch(
    exec: &Executor,
    line: &str,
    head: &str,
    c: &Cluster,
    follower: Option<&Follower>,
) -> Result<(), ExecError> {
    let limit = Duration::from_secs(c.launch_timeout_secs.max(1));
    let wait = Wait::new(
        format!("vLLM running in {}", c.container),
        limit,
        Duration::from_millis(POLL_MS),
    );
    let launched = exec
        .poll_until(line, &wait, || async move {
            launch_progress(exec, line, head, c, follower).await
        })
        .await;
    match launched {
        Err(ExecError::Timeout {
            step,
            waited_for,
            after,
            ..
        }) => {
            let (tail, _) = launcher_tail(exec, line, head).await;
            let last: Vec<&str> = tail.iter().rev().take(3).map(String::as_str).collect();
            let last: Vec<&str> = last.into_iter().rev().collect();
            Err(ExecError::Timeout {
                step,
                waited_for,
                after,
                message: format!(
                    "no vLLM running in {} after {}s (cluster.launch_timeout_secs); the launcher's last lines: {}",
                    c.container,
                    limit.as_secs(),
                    last.join(" / ")
                ),
            })
        }
        other => other,
    }
}

/// One look at a launch in progress: done when vLLM runs in the container (generation A's
/// launcher execs it after its start-up and stays, B's returns after `docker exec -d`);
/// failed at the launcher's `Error:` line or when it exited or was killed without it.
async fn launch_progress(
    exec: &Executor,
    line: &str,
    head: &str,
    c: &Cluster,
    follower: Option<&Follower>,
) -> Result<Probe<()>, ExecError> {
    if let Some(e) = follower.and_then(|f| f.error()) {
        return Err(ExecError::check(line, e));
    }
    // The three looks at once (channels on the head's one connection): one round trip.
    // `docker top` on a container that is not running finds no process, which is `false`.
    let (state, running, process) = tokio::join!(
        launcher_state(exec, line, head),
        container_up(exec, line, head, c),
        vllm_process(exec, line, head, c),
    );
    let state = state?;
    let serving_process = running? && process?;
    match state {
        LauncherState::Exited { status: 0 } | LauncherState::Running { .. } if serving_process => {
            Ok(Probe::Done(()))
        }
        LauncherState::Exited { status } => {
            // The looks ran at once: the process look may have begun before the
            // launcher's last `docker exec -d` (and the state look after its exit). Look
            // again, now that the exit is known, before calling the launch failed.
            if status == 0 {
                let (running, process) = tokio::join!(
                    container_up(exec, line, head, c),
                    vllm_process(exec, line, head, c),
                );
                if running? && process? {
                    return Ok(Probe::Done(()));
                }
            }
            let (_, h) = launcher_tail(exec, line, head).await;
            let what = if status == 0 {
                format!("the launcher exited without starting {}", c.container)
            } else {
                format!("the launcher exited with status {status}")
            };
            Err(ExecError::check(line, format!("{what}: {h}")))
        }
        LauncherState::Killed | LauncherState::None => {
            let (_, h) = launcher_tail(exec, line, head).await;
            Err(ExecError::check(
                line,
                format!("the launcher was killed: {h}"),
            ))
        }
        LauncherState::Running { .. } => Ok(Probe::NotYet(format!(
            "no vLLM running in {} yet",
            c.container
        ))),
    }
}

/// Until vLLM on `head` is ready (`/health` is 200 and `/v1/models` lists one of
/// `served`), then stamps the launch record `ready_at`. Fails when the container, the
/// launcher or vLLM ends while starting, and after `timeout` seconds; cancellable.
pub(super) async fn wait_ready(
    exec: &Executor,
    line: &str,
    head: &str,
    served: &[String],
    timeout: u64,
) -> Result<(), ExecError> {
    let c = super::steps::cluster(exec)?;
    let addr = exec
        .desired
        .hosts
        .get(head)
        .map(|h| h.address.clone())
        .ok_or_else(|| ExecError::config(line, format!("host {head} is not configured")))?;
    let had_launcher = matches!(
        launcher_state(exec, line, head).await?,
        LauncherState::Running { .. }
    );
    let own = follow_vllm(exec, head, c, had_launcher);
    let own = own.as_ref();
    let health = &format!("http://{addr}:{}/health", c.port);
    let http = &crate::observe::probe_client();
    let wait = Wait::new(
        format!("{} ready", served.join(", ")),
        Duration::from_secs(timeout),
        Duration::from_millis(POLL_MS),
    );
    // When the container and the launcher were last checked (once a second).
    let last_check = &Mutex::new(Instant::now());
    exec.poll_until(line, &wait, || async move {
        // A loading vLLM holds its port and answers nothing: the probes wait for their
        // timeout, so a cancel must not wait for them.
        if exec
            .unless_cancelled(serves(exec, c, http, health, served), line)
            .await?
        {
            return Ok(Probe::Done(()));
        }
        let due = last_check.lock().map(|mut at| {
            let due = at.elapsed() >= Duration::from_secs(1);
            if due {
                *at = Instant::now();
            }
            due
        });
        if due.unwrap_or(true) {
            still_starting(exec, line, head, c, had_launcher, own).await?;
        }
        Ok(Probe::NotYet(format!(
            "{} was not ready after {timeout}s (raise start_timeout_secs for big models)",
            served.join(", ")
        )))
    })
    .await?;
    if let Some(mut r) = read_record(exec, line, head).await {
        r.ready_at = Some(Utc::now());
        write_record(exec, line, head, &r).await?;
    }
    Ok(())
}

/// The live log of a starting vLLM, unless the launch in this operation left a follower
/// (which goes on): generation A's vLLM prints into the launcher's output (`had_launcher`),
/// B's into `docker logs`.
fn follow_vllm(exec: &Executor, head: &str, c: &Cluster, had_launcher: bool) -> Option<Follower> {
    let existing = exec.follower.lock().map(|f| f.is_some()).unwrap_or(false);
    if existing {
        return None;
    }
    let script = if had_launcher {
        Script::Raw("exec tail -n 50 -F \"$HOME/.spark-control/launcher.log\" 2>/dev/null")
    } else {
        Script::One(
            Cmd::new("docker")
                .args(["logs", "-f", "--tail", "50"])
                .arg(c.container.clone()),
        )
    };
    follow(exec, head, script, false)
}

/// The last five lines of vLLM's output seen by the launch's follower, or else by `own`.
fn recent_lines(exec: &Executor, own: Option<&Follower>) -> String {
    let lines = match exec.follower.lock() {
        Ok(f) if f.is_some() => f.as_ref().map(|f| f.recent()).unwrap_or_default(),
        _ => own.map(|f| f.recent()).unwrap_or_default(),
    };
    let last: Vec<String> = lines.into_iter().rev().take(5).collect();
    last.into_iter().rev().collect::<Vec<_>>().join(" / ")
}

/// Whether vLLM is ready: `health` answers 200 and `/v1/models` lists one of `served`.
async fn serves(
    exec: &Executor,
    c: &Cluster,
    http: &reqwest::Client,
    health: &str,
    served: &[String],
) -> bool {
    let healthy = matches!(
        http.get(health).send().await,
        Ok(r) if r.status().is_success()
    );
    healthy
        && exec
            .observer
            .probe_at(&exec.desired, &super::steps::deployment_name(exec), c)
            .await
            .get()
            .is_some_and(|v| served.iter().any(|n| v.models.contains(n)))
}

/// Fails when what a starting vLLM needs has ended: its container, the launcher that was
/// running when the wait began, or (without a launcher) the `vllm serve` process.
async fn still_starting(
    exec: &Executor,
    line: &str,
    head: &str,
    c: &Cluster,
    had_launcher: bool,
    own: Option<&Follower>,
) -> Result<(), ExecError> {
    let recent = || recent_lines(exec, own);
    if !container_up(exec, line, head, c).await? {
        return Err(ExecError::check(
            line,
            format!(
                "{} exited on {head} while vLLM was starting; last lines: {}",
                c.container,
                recent()
            ),
        ));
    }
    let state = launcher_state(exec, line, head).await?;
    let launcher_running = matches!(state, LauncherState::Running { .. });
    if had_launcher && !launcher_running {
        let (_, h) = launcher_tail(exec, line, head).await;
        return Err(ExecError::check(
            line,
            format!("the launcher exited while vLLM was starting: {h}"),
        ));
    }
    if !launcher_running && !vllm_process(exec, line, head, c).await? {
        return Err(ExecError::check(
            line,
            format!(
                "vLLM exited on {head} while starting ({} still runs); last lines: {}",
                c.container,
                recent()
            ),
        ));
    }
    Ok(())
}
