//! One function per action: the commands it runs and the post-state it checks.
//!
//! All user text (repos, model names, args, paths, commits) reaches the remote shell only
//! through `remote::cmd` (argv, quoted once). The shell snippets here are fixed text.

use std::time::{Duration, Instant};

use super::wait::{Probe, Wait};
use super::{ExecError, Executor, RunOpts};
use crate::observe::parse;
use crate::plan::render::step_line;
use crate::plan::{Action, Step};
use crate::remote::{Cmd, Script};

/// Shell function `build`: `./build-and-copy.sh -c "$W"` (`$W`: the workers' addresses,
/// comma-separated), or a build without copying when there are no workers (`-c` alone
/// would autodiscover: scan the subnet and copy to whatever answers, or to nobody).
macro_rules! build_fn {
    () => {
        "build() { if [ -n \"$W\" ]; then ./build-and-copy.sh -c \"$W\"; else ./build-and-copy.sh; fi </dev/null; }; "
    };
}
/// `git pull` then build (`$1`: workers). A failed build puts the checkout back, so the
/// scripts keep matching the image that runs.
const UPDATE: &str = concat!(
    "W=$1; ",
    build_fn!(),
    "old=$(git rev-parse HEAD) || exit 1; git pull --ff-only </dev/null || exit 1; ",
    "if ! build; then git reset --hard \"$old\" >/dev/null; echo \"build-and-copy.sh failed: the launcher checkout is back at $old and keeps working\" >&2; exit 1; fi"
);
/// Check out the pinned commit `$1` and build (`$2`: workers). Leaving a branch records
/// it in the checkout's git config (`spark-control.pinned-from`) so a policy that
/// follows the branch again can return to it. A failed build puts the checkout back.
const CHECKOUT: &str = concat!(
    "c=$1; W=$2; ",
    build_fn!(),
    "git fetch --quiet </dev/null 2>/dev/null; old=$(git rev-parse HEAD) || exit 1; ",
    "b=$(git symbolic-ref -q --short HEAD) && git config spark-control.pinned-from \"$b\"; ",
    "if ! git -c advice.detachedHead=false checkout --quiet \"$c\"; then [ -z \"$b\" ] || git config --unset spark-control.pinned-from; exit 1; fi; ",
    "if ! build; then back=${b:-$old}; git -c advice.detachedHead=false checkout --quiet \"$back\"; [ -z \"$b\" ] || git config --unset spark-control.pinned-from; ",
    "echo \"build-and-copy.sh failed: the launcher checkout is back at $back and keeps working\" >&2; exit 1; fi"
);
/// Leave a pin: check the branch `$1` out again and, when that moved HEAD, build (`$2`:
/// workers). A failed build goes back to the pinned commit.
const RETURN: &str = concat!(
    "b=$1; W=$2; ",
    build_fn!(),
    "old=$(git rev-parse HEAD) || exit 1; git checkout --quiet \"$b\" -- || exit 1; ",
    "git config --unset spark-control.pinned-from; ",
    "[ \"$(git rev-parse HEAD)\" != \"$old\" ] || exit 0; ",
    "if ! build; then git -c advice.detachedHead=false checkout --quiet \"$old\"; git config spark-control.pinned-from \"$b\"; ",
    "echo \"build-and-copy.sh failed: the launcher checkout is back at $old (the pinned commit) and keeps working\" >&2; exit 1; fi"
);

/// Before a model is stopped: its requests in flight through the proxy may finish, up to
/// `proxy.drain_grace_secs` (new ones are no longer routed to it: the file names another
/// model, or none). Streams still running then are ended with one SSE `error` event.
async fn drain(exec: &Executor, host: &str, deployment: &str) {
    let Some(demand) = &exec.demand else {
        return;
    };
    let name = if deployment.is_empty() {
        exec.desired
            .first_deployment()
            .map(|d| d.name)
            .unwrap_or_default()
    } else {
        deployment.to_string()
    };
    let grace = Duration::from_secs(exec.desired.proxy.drain_grace_secs);
    let cancel = exec.cancel.clone();
    tokio::select! {
        _ = demand.drain(&name, grace, |l| exec.say(Some(host), l)) => {}
        _ = cancel.cancelled() => {}
    }
}

pub(super) async fn run(exec: &Executor, step: &Step) -> Result<(), ExecError> {
    let line = step_line(step).trim().to_string();
    exec.say(None, format!("▶ {line}"));
    let started = Instant::now();
    if let Ok(mut current) = exec.deployment.lock() {
        let next = step_deployment(&step.action).unwrap_or_default();
        if *current != next {
            // A launch's follower serves the wait of its own deployment only.
            if let Ok(mut f) = exec.follower.lock() {
                *f = None;
            }
            *current = next.to_string();
        }
    }
    let r = match &step.action {
        Action::StopModel {
            host, deployment, ..
        } => {
            drain(exec, host, deployment).await;
            super::launch::stop_model(exec, &line, host).await
        }
        Action::SettleGpu {
            hosts,
            below_mib,
            free_share,
            timeout_secs,
        } => settle(exec, &line, hosts, *below_mib, *free_share, *timeout_secs).await,
        Action::Download { host, repo, .. } => download(exec, &line, host, repo).await,
        Action::LaunchModel {
            spec,
            host,
            generation,
            argv,
            ..
        } => super::launch::launch(exec, &line, host, spec, *generation, argv).await,
        Action::WaitReady {
            repo,
            served,
            host,
            timeout_secs,
            ..
        } => {
            let names = if served.is_empty() {
                std::slice::from_ref(repo)
            } else {
                served.as_slice()
            };
            super::launch::wait_ready(exec, &line, host, names, *timeout_secs).await
        }
        Action::StopService {
            host, container, ..
        } => service(exec, &line, host, container, Docker::Stop).await,
        Action::StartService {
            host, container, ..
        } => service(exec, &line, host, container, Docker::Start).await,
        Action::RestartService {
            host, container, ..
        } => {
            let cmd = Script::One(Cmd::new("docker").arg("restart").arg(container.clone()));
            match exec
                .run(&line, host, &cmd, RunOpts::new(Duration::from_secs(180)))
                .await
            {
                Ok(_) => service(exec, &line, host, container, Docker::Start).await,
                Err(e) => Err(e),
            }
        }
        Action::FetchLauncher { host } => fetch_launcher(exec, &line, host).await,
        Action::UpdateLauncher { host, .. } => update_launcher(exec, &line, host).await,
        Action::CheckoutLauncher { host, commit, .. } => {
            checkout_launcher(exec, &line, host, commit).await
        }
        Action::ReturnLauncher { host, branch, .. } => {
            return_launcher(exec, &line, host, branch).await
        }
    };
    match &r {
        Ok(()) => exec.say(
            None,
            format!("✓ {line} ({:.1}s)", started.elapsed().as_secs_f64()),
        ),
        Err(e) => exec.say(None, format!("✗ {e}")),
    }
    r
}

/// The deployment a model step acts for (`None`: not a model step, or a plan of an
/// older build: the first deployment).
fn step_deployment(action: &Action) -> Option<&str> {
    match action {
        Action::StopModel { deployment, .. }
        | Action::LaunchModel { deployment, .. }
        | Action::WaitReady { deployment, .. } => {
            Some(deployment.as_str()).filter(|d| !d.is_empty())
        }
        _ => None,
    }
}

/// The cluster settings (hosts, port, launcher, container) of the deployment the running
/// step acts for; the first deployment's for steps that name none.
pub(super) fn cluster(exec: &Executor) -> Result<&crate::model::desired::Cluster, ExecError> {
    let name = exec
        .deployment
        .lock()
        .map(|d| d.clone())
        .unwrap_or_default();
    if name.is_empty() {
        return exec
            .desired
            .primary_cluster()
            .ok_or_else(|| ExecError::config("model", "no cluster is configured"));
    }
    exec.desired.deployment_cluster(&name).ok_or_else(|| {
        ExecError::config(
            "model",
            format!("deployment `{name}` is not in the desired state"),
        )
    })
}

/// The name of the deployment the running step acts for (empty: the first one).
pub(super) fn deployment_name(exec: &Executor) -> String {
    let name = exec
        .deployment
        .lock()
        .map(|d| d.clone())
        .unwrap_or_default();
    if name.is_empty() {
        exec.desired
            .first_deployment()
            .map(|x| x.name)
            .unwrap_or_default()
    } else {
        name
    }
}

/// Waits until every host's GPU memory is below `below` MiB — or, on unified memory
/// (GB10, where `nvidia-smi` reports `[N/A]`), until `free_share` of the host's memory is
/// available (`free -m`) — or `timeout` seconds passed (then says so and goes on).
async fn settle(
    exec: &Executor,
    line: &str,
    hosts: &[String],
    below: u64,
    free_share: f64,
    timeout: u64,
) -> Result<(), ExecError> {
    let wait = Wait::new(
        "memory to settle",
        Duration::from_secs(timeout),
        // Like every swap wait: a look 50 ms after the last one ended, every host at once
        // (nvidia-smi itself takes a moment on a Spark, so real looks are further apart).
        // Was 250 ms, then 100 ms with hosts one after another: the swap bench showed that
        // time lost after the memory was already free.
        Duration::from_millis(50),
    );
    let settled = exec
        .poll_until(line, &wait, || async move {
            let looks = futures::future::join_all(
                hosts
                    .iter()
                    .map(|host| memory_in_use(exec, line, host, below, free_share)),
            )
            .await;
            let mut waiting = Vec::new();
            for look in looks {
                if let Some(why) = look? {
                    waiting.push(why);
                }
            }
            Ok(if waiting.is_empty() {
                Probe::Done(())
            } else {
                Probe::NotYet(waiting.join("; "))
            })
        })
        .await;
    match settled {
        // A settle that times out says so and goes on (the launch's own checks remain).
        Err(ExecError::Timeout { message, .. }) => {
            exec.say(None, format!("still after {timeout}s: {message}; going on"));
            Ok(())
        }
        other => other,
    }
}

/// What `host` still holds that the next model needs (`None`: nothing to wait for): GPU
/// memory at or above `below` MiB, or, on unified memory (`nvidia-smi` says `[N/A]`), less
/// than `free_share` of the host's memory available. Unreadable output is nothing to
/// wait on.
async fn memory_in_use(
    exec: &Executor,
    line: &str,
    host: &str,
    below: u64,
    free_share: f64,
) -> Result<Option<String>, ExecError> {
    let probe = RunOpts::new(Duration::from_secs(20))
        .cancellable()
        .caller_checks_exit();
    let out = exec
        .run(line, host, &Script::Raw(crate::observe::NVIDIA_SMI), probe)
        .await?;
    let lines: Vec<String> = out.stdout.lines().map(String::from).collect();
    match parse::gpu_memory_used(&lines) {
        Ok(Some(used)) if used >= below => Ok(Some(format!(
            "{host}: GPU memory at {used} MiB (waiting for < {below})"
        ))),
        Ok(Some(_)) | Err(_) => Ok(None),
        Ok(None) => {
            let out = exec
                .run(line, host, &Script::Raw(crate::observe::FREE), probe)
                .await?;
            let lines: Vec<String> = out.stdout.lines().map(String::from).collect();
            match parse::free_memory(&lines) {
                Ok(m) if (m.available_mib as f64) < free_share * m.total_mib as f64 => {
                    Ok(Some(format!(
                        "{host}: {} of {} MiB available (unified memory; waiting for {:.0}%)",
                        m.available_mib,
                        m.total_mib,
                        free_share * 100.0
                    )))
                }
                Ok(_) => Ok(None),
                Err(e) => {
                    exec.say(Some(host), format!("cannot read memory ({e}); not waiting"));
                    Ok(None)
                }
            }
        }
    }
}

async fn download(exec: &Executor, line: &str, host: &str, repo: &str) -> Result<(), ExecError> {
    use crate::downloads::DownloadError;
    // Through the download manager: a job with progress (also in `/api/downloads`),
    // stall detection, retries, resumed after a controller restart.
    if let Some(m) = &exec.downloads {
        return match m.ensure(host, repo, exec.op, &exec.cancel).await {
            Ok(()) => Ok(()),
            Err(DownloadError::Cancelled(why)) => Err(ExecError::cancelled(line, why)),
            Err(e @ (DownloadError::NoTarget(_) | DownloadError::Failed { fatal: true, .. })) => {
                Err(ExecError::config(line, e.to_string()))
            }
            Err(e) => Err(ExecError::check(line, e.to_string())),
        };
    }
    let opts = RunOpts::new(Duration::from_secs(24 * 3600))
        .cancellable()
        .caller_checks_exit();
    let hf = Script::One(Cmd::new("hf").arg("download").arg(repo));
    let out = exec.run(line, host, &hf, opts).await?;
    let out = if out.status == Some(127) {
        exec.say(
            Some(host),
            "`hf` not found; trying `huggingface-cli download`",
        );
        let legacy = Script::One(Cmd::new("huggingface-cli").arg("download").arg(repo));
        exec.run(line, host, &legacy, opts).await?
    } else {
        out
    };
    if out.status == Some(127) {
        return Err(ExecError::config(
            line,
            crate::downloads::not_installed(host),
        ));
    }
    if !out.success() {
        let tail: Vec<&str> = out.stderr.lines().rev().take(3).collect();
        let tail = tail.into_iter().rev().collect::<Vec<_>>().join(" / ");
        let hint = if tail.contains("Not Found") || tail.contains("401") || tail.contains("gated") {
            " (does the repo exist? a gated or private repo needs `hf auth login` on the host)"
        } else {
            ""
        };
        return Err(ExecError::remote(
            line,
            crate::remote::RemoteError::Failed {
                host: host.into(),
                status: out.exit_text(),
                stderr_tail: format!("download of {repo} failed{hint}: {tail}"),
            },
        ));
    }
    Ok(())
}

/// What [`service`] does to a side service's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Docker {
    /// `docker start`: the container runs afterwards.
    Start,
    /// `docker stop`: the container does not run afterwards.
    Stop,
}

/// `docker start|stop <container>` on `host`, then waits (30 s at most) until the
/// container runs, or does not.
async fn service(
    exec: &Executor,
    line: &str,
    host: &str,
    container: &str,
    action: Docker,
) -> Result<(), ExecError> {
    let start = action == Docker::Start;
    let verb = if start { "start" } else { "stop" };
    let cmd = Script::One(Cmd::new("docker").arg(verb).arg(container));
    exec.run(line, host, &cmd, RunOpts::new(Duration::from_secs(120)))
        .await?;
    let state = if start { "running" } else { "stopped" };
    let wait = Wait::new(
        format!("{container} {state} on {host}"),
        Duration::from_secs(30),
        Duration::from_millis(100),
    );
    exec.poll_until(line, &wait, || async move {
        let containers = exec.containers(line, host).await?;
        let running = containers.get(container).is_some_and(|v| v.running);
        Ok(if running == start {
            Probe::Done(())
        } else {
            Probe::NotYet(format!(
                "docker {verb} {container} returned but the container is {} on {host}",
                if running {
                    "still running"
                } else {
                    "not running"
                }
            ))
        })
    })
    .await
}

async fn update_launcher(exec: &Executor, line: &str, head: &str) -> Result<(), ExecError> {
    let c = cluster(exec)?;
    let cmd = Cmd::new("sh")
        .arg("-c")
        .arg(UPDATE)
        .arg("sh")
        .arg(workers(exec))
        .cwd(c.launcher.clone());
    exec.run(
        line,
        head,
        &Script::One(cmd),
        RunOpts::new(Duration::from_secs(4 * 3600)),
    )
    .await?;
    Ok(())
}

async fn fetch_launcher(exec: &Executor, line: &str, head: &str) -> Result<(), ExecError> {
    let c = cluster(exec)?;
    let cmd = Cmd::new("git")
        .args(["fetch", "--quiet"])
        .cwd(c.launcher.clone());
    exec.run(
        line,
        head,
        &Script::One(cmd),
        RunOpts::new(Duration::from_secs(300)).cancellable(),
    )
    .await?;
    Ok(())
}

async fn checkout_launcher(
    exec: &Executor,
    line: &str,
    head: &str,
    commit: &str,
) -> Result<(), ExecError> {
    let c = cluster(exec)?;
    let cmd = Cmd::new("sh")
        .arg("-c")
        .arg(CHECKOUT)
        .arg("sh")
        .arg(commit)
        .arg(workers(exec))
        .cwd(c.launcher.clone());
    exec.run(
        line,
        head,
        &Script::One(cmd),
        RunOpts::new(Duration::from_secs(4 * 3600)),
    )
    .await?;
    Ok(())
}

async fn return_launcher(
    exec: &Executor,
    line: &str,
    head: &str,
    branch: &str,
) -> Result<(), ExecError> {
    let c = cluster(exec)?;
    let cmd = Cmd::new("sh")
        .arg("-c")
        .arg(RETURN)
        .arg("sh")
        .arg(branch)
        .arg(workers(exec))
        .cwd(c.launcher.clone());
    exec.run(
        line,
        head,
        &Script::One(cmd),
        RunOpts::new(Duration::from_secs(4 * 3600)),
    )
    .await?;
    Ok(())
}

/// The workers' addresses as `build-and-copy.sh -c` takes them (comma-separated; empty
/// without workers).
fn workers(exec: &Executor) -> String {
    crate::model::nodes::worker_addresses(&exec.desired).join(",")
}
