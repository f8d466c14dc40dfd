//! One function per action: the commands it runs and the post-state it checks.
//!
//! All user text (repos, model names, args, paths, commits) reaches the remote shell only
//! through `remote::cmd` (argv, quoted once). The shell snippets here are fixed text.

use std::time::{Duration, Instant};

use super::{ExecError, Executor};
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

pub(super) async fn run(x: &Executor, step: &Step) -> Result<(), ExecError> {
    let line = step_line(step).trim().to_string();
    x.say(None, format!("▶ {line}"));
    let started = Instant::now();
    let r = match &step.action {
        Action::StopModel { host, .. } => super::launch::stop_model(x, &line, host).await,
        Action::SettleGpu {
            hosts,
            below_mib,
            free_share,
            timeout_secs,
        } => settle(x, &line, hosts, *below_mib, *free_share, *timeout_secs).await,
        Action::Download { host, repo, .. } => download(x, &line, host, repo).await,
        Action::LaunchModel {
            spec,
            host,
            generation,
            argv,
        } => super::launch::launch(x, &line, host, spec, *generation, argv).await,
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
            super::launch::wait_ready(x, &line, host, names, *timeout_secs).await
        }
        Action::StopService {
            host, container, ..
        } => service(x, &line, host, container, false).await,
        Action::StartService {
            host, container, ..
        } => service(x, &line, host, container, true).await,
        Action::RestartService {
            host, container, ..
        } => {
            let cmd = Script::One(Cmd::new("docker").arg("restart").arg(container.clone()));
            match x
                .run(&line, host, &cmd, Duration::from_secs(180), false, false)
                .await
            {
                Ok(_) => service(x, &line, host, container, true).await,
                Err(e) => Err(e),
            }
        }
        Action::FetchLauncher { host } => fetch_launcher(x, &line, host).await,
        Action::UpdateLauncher { host, .. } => update_launcher(x, &line, host).await,
        Action::CheckoutLauncher { host, commit, .. } => {
            checkout_launcher(x, &line, host, commit).await
        }
        Action::ReturnLauncher { host, branch, .. } => {
            return_launcher(x, &line, host, branch).await
        }
    };
    match &r {
        Ok(()) => x.say(
            None,
            format!("✓ {line} ({:.1}s)", started.elapsed().as_secs_f64()),
        ),
        Err(e) => x.say(None, format!("✗ {e}")),
    }
    r
}

pub(super) fn cluster(x: &Executor) -> Result<&crate::model::desired::Cluster, ExecError> {
    x.desired.cluster.as_ref().ok_or_else(|| ExecError::Verify {
        step: "model".into(),
        message: "no cluster is configured".into(),
    })
}

/// Waits until every host's GPU memory is below `below` MiB — or, on unified memory
/// (GB10, where `nvidia-smi` reports `[N/A]`), until `free_share` of the host's memory is
/// available (`free -m`) — or `timeout` seconds passed (then says so and goes on).
async fn settle(
    x: &Executor,
    line: &str,
    hosts: &[String],
    below: u64,
    free_share: f64,
    timeout: u64,
) -> Result<(), ExecError> {
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        let mut waiting = Vec::new();
        for h in hosts {
            let out = x
                .run(
                    line,
                    h,
                    &Script::Raw(crate::observe::NVIDIA_SMI),
                    Duration::from_secs(20),
                    true,
                    true,
                )
                .await?;
            let lines: Vec<String> = out.stdout.lines().map(String::from).collect();
            match parse::gpu_memory_used(&lines) {
                Ok(Some(used)) if used >= below => waiting.push(format!(
                    "{h}: GPU memory at {used} MiB (waiting for < {below})"
                )),
                Ok(Some(_)) => {}
                Ok(None) => {
                    let out = x
                        .run(
                            line,
                            h,
                            &Script::Raw(crate::observe::FREE),
                            Duration::from_secs(20),
                            true,
                            true,
                        )
                        .await?;
                    let lines: Vec<String> = out.stdout.lines().map(String::from).collect();
                    match parse::free_memory(&lines) {
                        Ok(m) if (m.available_mib as f64) < free_share * m.total_mib as f64 => {
                            waiting.push(format!(
                                "{h}: {} of {} MiB available (unified memory; waiting for {:.0}%)",
                                m.available_mib,
                                m.total_mib,
                                free_share * 100.0
                            ))
                        }
                        Ok(_) => {}
                        Err(e) => x.say(Some(h), format!("cannot read memory ({e}); not waiting")),
                    }
                }
                // Unreadable output: nothing to wait on (the launch's own checks remain).
                Err(_) => {}
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            x.say(
                None,
                format!("still after {timeout}s: {}; going on", waiting.join("; ")),
            );
            return Ok(());
        }
        x.pause(Duration::from_secs(1), line).await?;
    }
}

async fn download(x: &Executor, line: &str, host: &str, repo: &str) -> Result<(), ExecError> {
    // Through the download manager: a job with progress (also in `/api/downloads`),
    // stall detection, retries, resumed after a controller restart.
    if let Some(m) = &x.downloads {
        return match m.ensure(host, repo, x.op, &x.cancel).await {
            Ok(()) => Ok(()),
            Err(crate::downloads::DownloadError::Cancelled(why)) => Err(ExecError::Cancelled(why)),
            Err(e) => Err(ExecError::Verify {
                step: line.into(),
                message: e.to_string(),
            }),
        };
    }
    let timeout = Duration::from_secs(24 * 3600);
    let hf = Script::One(Cmd::new("hf").arg("download").arg(repo));
    let out = x.run(line, host, &hf, timeout, true, true).await?;
    let out = if out.status == Some(127) {
        x.say(
            Some(host),
            "`hf` not found; trying `huggingface-cli download`",
        );
        let legacy = Script::One(Cmd::new("huggingface-cli").arg("download").arg(repo));
        x.run(line, host, &legacy, timeout, true, true).await?
    } else {
        out
    };
    if out.status == Some(127) {
        return Err(ExecError::Verify {
            step: line.into(),
            message: crate::downloads::not_installed(host),
        });
    }
    if !out.success() {
        let tail: Vec<&str> = out.stderr.lines().rev().take(3).collect();
        let tail = tail.into_iter().rev().collect::<Vec<_>>().join(" / ");
        let hint = if tail.contains("Not Found") || tail.contains("401") || tail.contains("gated") {
            " (does the repo exist? a gated or private repo needs `hf auth login` on the host)"
        } else {
            ""
        };
        return Err(ExecError::Verify {
            step: line.into(),
            message: format!("download of {repo} to {host} failed{hint}: {tail}"),
        });
    }
    Ok(())
}

async fn service(
    x: &Executor,
    line: &str,
    host: &str,
    container: &str,
    start: bool,
) -> Result<(), ExecError> {
    let verb = if start { "start" } else { "stop" };
    let cmd = Script::One(Cmd::new("docker").arg(verb).arg(container));
    x.run(line, host, &cmd, Duration::from_secs(120), false, false)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = x.containers(line, host).await?;
        let running = m.get(container).is_some_and(|v| v.running);
        if running == start {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ExecError::Verify {
                step: line.into(),
                message: format!(
                    "docker {verb} {container} returned but the container is {} on {host}",
                    if running {
                        "still running"
                    } else {
                        "not running"
                    }
                ),
            });
        }
        x.pause(Duration::from_millis(300), line).await?;
    }
}

async fn update_launcher(x: &Executor, line: &str, head: &str) -> Result<(), ExecError> {
    let c = cluster(x)?;
    let cmd = Cmd::new("sh")
        .arg("-c")
        .arg(UPDATE)
        .arg("sh")
        .arg(workers(x))
        .cwd(c.launcher.clone());
    x.run(
        line,
        head,
        &Script::One(cmd),
        Duration::from_secs(4 * 3600),
        false,
        false,
    )
    .await?;
    Ok(())
}

async fn fetch_launcher(x: &Executor, line: &str, head: &str) -> Result<(), ExecError> {
    let c = cluster(x)?;
    let cmd = Cmd::new("git")
        .args(["fetch", "--quiet"])
        .cwd(c.launcher.clone());
    x.run(
        line,
        head,
        &Script::One(cmd),
        Duration::from_secs(300),
        true,
        false,
    )
    .await?;
    Ok(())
}

async fn checkout_launcher(
    x: &Executor,
    line: &str,
    head: &str,
    commit: &str,
) -> Result<(), ExecError> {
    let c = cluster(x)?;
    let cmd = Cmd::new("sh")
        .arg("-c")
        .arg(CHECKOUT)
        .arg("sh")
        .arg(commit)
        .arg(workers(x))
        .cwd(c.launcher.clone());
    x.run(
        line,
        head,
        &Script::One(cmd),
        Duration::from_secs(4 * 3600),
        false,
        false,
    )
    .await?;
    Ok(())
}

async fn return_launcher(
    x: &Executor,
    line: &str,
    head: &str,
    branch: &str,
) -> Result<(), ExecError> {
    let c = cluster(x)?;
    let cmd = Cmd::new("sh")
        .arg("-c")
        .arg(RETURN)
        .arg("sh")
        .arg(branch)
        .arg(workers(x))
        .cwd(c.launcher.clone());
    x.run(
        line,
        head,
        &Script::One(cmd),
        Duration::from_secs(4 * 3600),
        false,
        false,
    )
    .await?;
    Ok(())
}

/// The workers' addresses as `build-and-copy.sh -c` takes them (comma-separated; empty
/// without workers).
fn workers(x: &Executor) -> String {
    crate::model::nodes::worker_addresses(&x.desired).join(",")
}
