//! One host's part of a download job: runs `hf download <repo>` (or `huggingface-cli
//! download` where `hf` is missing) over the transport, measures the repo's cache folder
//! at an interval, detects stalls, retries with backoff (the CLI resumes partial files),
//! and records everything in the job. Shutdown leaves the job as it is on disk so the next
//! controller resumes it; a cancel marks it cancelled.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::job::{JobState, Meter};
use super::DownloadManager;
use crate::logs::Stream;
use crate::remote::{Cmd, ExecOpts, Line, RemoteError, Script, Transport};

/// Sums the sizes of the regular files of one repo's cache folder (`$1`), refs excluded
/// (they are not part of the repo's files). Prints 0 when the folder does not exist.
const MEASURE: &str = "d=\"${HF_HUB_CACHE:-${HF_HOME:-$HOME/.cache/huggingface}/hub}/$1\"; if [ -d \"$d\" ]; then find \"$d\" -path \"$d/refs\" -prune -o -type f -printf '%s\\n' | awk '{s+=$1} END {printf \"%.0f\\n\", s}'; else echo 0; fi";

/// The cache folder name of a repo (`models--org--name`).
pub fn cache_dir_name(repo: &str) -> String {
    format!("models--{}", repo.replace('/', "--"))
}

/// Pure: a failure the CLI reported that retrying cannot fix, as a message for people.
pub fn fatal_failure(stderr: &str) -> Option<String> {
    let s = stderr.to_ascii_lowercase();
    let tail = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(3)
        .collect::<Vec<_>>()
        .join(" / ");
    if s.contains("repository not found") || s.contains("404 client error") {
        Some(format!(
            "the repo does not exist, or is private and the host has no token with access ({tail})"
        ))
    } else if s.contains("gated")
        || s.contains("401 client error")
        || s.contains("403 client error")
        || s.contains("access to model")
    {
        Some(format!("the repo needs a token with access: accept its licence on the Hub, then run `hf auth login` on the host ({tail})"))
    } else if s.contains("repo id must be") {
        Some(format!("not a valid repo id ({tail})"))
    } else if s.contains("no space left on device") {
        Some(format!("the host's disk is full ({tail})"))
    } else {
        None
    }
}

/// Pure: the message for a host where neither `hf` nor the legacy `huggingface-cli` is
/// installed (both exited 127, the shell's "command not found"). No retry can fix it.
pub fn not_installed(host: &str) -> String {
    format!(
        "`hf` is not installed on {host} (nor `huggingface-cli`): install it with \
         `pip install -U \"huggingface_hub[cli]\"` (or `pipx install huggingface_hub[cli]`)"
    )
}

/// Backoff before attempt `n + 1` (n ≥ 1): base · 2^(n-1), at most `max`.
pub fn backoff(base: Duration, max: Duration, n: u32) -> Duration {
    base.saturating_mul(1u32 << n.saturating_sub(1).min(16))
        .min(max)
}

async fn measure(t: &Transport, repo: &str) -> Option<u64> {
    let cmd = Cmd::new("sh")
        .arg("-c")
        .arg(MEASURE)
        .arg("sh")
        .arg(cache_dir_name(repo));
    let out = t
        .exec(&Script::One(cmd), ExecOpts::new(Duration::from_secs(30)))
        .await
        .ok()?;
    if !out.success() {
        return None;
    }
    out.stdout.lines().last()?.trim().parse().ok()
}

/// Waits for the host's transport; None when cancelled or shutting down.
async fn transport(
    m: &DownloadManager,
    host: &str,
    cancel: &CancellationToken,
) -> Option<Transport> {
    let mut rx = m.inner.hosts.clone();
    loop {
        if let Some(t) = rx.borrow().get(host) {
            return Some(t);
        }
        tokio::select! {
            _ = rx.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = cancel.cancelled() => return None,
            _ = m.inner.shutdown.cancelled() => return None,
        }
    }
}

enum Attempt {
    Done,
    Retry(String),
    Legacy,
    Fatal(String),
    Cancelled,
    Shutdown,
}

/// Runs one host's download to its end (done, failed, cancelled) or to shutdown.
pub(super) async fn run_host(
    m: DownloadManager,
    id: String,
    host: String,
    repo: String,
    op: Option<u64>,
    cancel: CancellationToken,
) {
    let s = m.inner.settings.clone();
    let say = |text: String| {
        m.inner.logs.push(
            op,
            Some(&host),
            Stream::Control,
            format!("download {repo}: {text}"),
        );
    };
    if m.get(&id)
        .and_then(|j| j.hosts.into_iter().find(|h| h.host == host))
        .is_some_and(|h| h.state.finished())
    {
        return;
    }
    let started = Instant::now();
    let mut meter = Meter::default();
    let mut legacy = false;
    let mut attempt = m
        .get(&id)
        .and_then(|j| j.hosts.into_iter().find(|h| h.host == host))
        .map_or(0, |h| h.attempts);
    let first_attempt = attempt;
    loop {
        if cancel.is_cancelled() {
            break finish(&m, &id, &host, JobState::Cancelled, None, &say);
        }
        let Some(t) = transport(&m, &host, &cancel).await else {
            if cancel.is_cancelled() {
                break finish(&m, &id, &host, JobState::Cancelled, None, &say);
            }
            return;
        };
        attempt += 1;
        m.update_host(&id, &host, |h| {
            h.attempts = attempt;
            h.fatal = false;
            if h.state != JobState::Stalled {
                h.state = JobState::Running;
            }
        });
        if attempt == 1 || attempt == first_attempt + 1 {
            say(format!("starting on {host} (attempt {attempt})"));
        }
        let r = one_attempt(
            &m, &id, &host, &repo, op, &t, legacy, &cancel, &mut meter, started,
        )
        .await;
        let err = match r {
            Attempt::Done => {
                let bytes = measure(&t, &repo).await;
                m.update_host(&id, &host, |h| {
                    if let Some(b) = bytes {
                        h.bytes = b;
                    }
                    h.percent = h
                        .total
                        .map(|t| 100.0 * h.bytes.min(t) as f64 / t.max(1) as f64);
                    h.eta_secs = Some(0);
                    h.warning = None;
                });
                break finish(&m, &id, &host, JobState::Done, None, &say);
            }
            Attempt::Legacy => {
                legacy = true;
                attempt -= 1;
                say("`hf` not found on the host; using `huggingface-cli download`".into());
                continue;
            }
            Attempt::Fatal(e) => {
                m.update_host(&id, &host, |h| h.fatal = true);
                break finish(&m, &id, &host, JobState::Failed, Some(e), &say);
            }
            Attempt::Cancelled => break finish(&m, &id, &host, JobState::Cancelled, None, &say),
            Attempt::Shutdown => return,
            Attempt::Retry(e) => e,
        };
        if attempt >= s.max_attempts {
            let e = format!("gave up after {attempt} attempts; last: {err}");
            break finish(&m, &id, &host, JobState::Failed, Some(e), &say);
        }
        let wait = backoff(s.retry_base, s.retry_max, attempt);
        let warn = format!(
            "{err}; retrying in {:.1}s (attempt {} of {})",
            wait.as_secs_f64(),
            attempt + 1,
            s.max_attempts
        );
        say(warn.clone());
        m.update_host(&id, &host, |h| {
            h.warning = Some(warn);
            h.rate_bps = None;
            h.eta_secs = None;
        });
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = cancel.cancelled() => {}
            _ = m.inner.shutdown.cancelled() => return,
        }
    }
}

fn finish(
    m: &DownloadManager,
    id: &str,
    host: &str,
    state: JobState,
    error: Option<String>,
    say: &impl Fn(String),
) {
    say(match (&state, &error) {
        (JobState::Done, _) => format!("done on {host}"),
        (JobState::Cancelled, _) => {
            format!("cancelled on {host}; partial files stay for a later download")
        }
        (_, Some(e)) => format!("failed on {host}: {e}"),
        _ => format!("{state} on {host}"),
    });
    m.update_host(id, host, |h| {
        h.state = state;
        h.error = error;
        if state != JobState::Done {
            h.rate_bps = None;
            h.eta_secs = None;
        }
    });
}

#[allow(clippy::too_many_arguments)]
async fn one_attempt(
    m: &DownloadManager,
    id: &str,
    host: &str,
    repo: &str,
    op: Option<u64>,
    t: &Transport,
    legacy: bool,
    cancel: &CancellationToken,
    meter: &mut Meter,
    started: Instant,
) -> Attempt {
    let s = &m.inner.settings;
    let prog = if legacy { "huggingface-cli" } else { "hf" };
    let script = Script::One(Cmd::new(prog).arg("download").arg(repo));
    let stop = cancel.child_token();
    let (tx, mut rx) = mpsc::channel::<Line>(256);
    let logs = m.inner.logs.clone();
    let h = host.to_string();
    let fwd = tokio::spawn(async move {
        while let Some(l) = rx.recv().await {
            let (stream, text) = match l {
                Line::Out(s) => (Stream::Stdout, s),
                Line::Err(s) => (Stream::Stderr, s),
            };
            // Progress bars are measured, not logged: they would flood the log.
            if !text.contains('%') {
                logs.push(op, Some(&h), stream, text);
            }
        }
    });
    let exec = t.exec(
        &script,
        ExecOpts::new(Duration::from_secs(7 * 24 * 3600))
            .lines(tx)
            .cancel(stop.clone()),
    );
    tokio::pin!(exec);
    let mut tick = tokio::time::interval(s.poll_interval);
    let mut last_bytes = m
        .get(id)
        .and_then(|j| j.hosts.into_iter().find(|x| x.host == host))
        .map_or(0, |x| x.bytes);
    let mut last_progress = Instant::now();
    let mut stalled = false;
    let result = loop {
        tokio::select! {
            r = &mut exec => break r,
            _ = m.inner.shutdown.cancelled() => {
                stop.cancel();
                let _ = (&mut exec).await;
                let _ = fwd.await;
                return Attempt::Shutdown;
            }
            _ = tick.tick() => {
                if let Some(b) = measure(t, repo).await {
                    meter.add(started.elapsed().as_secs_f64(), b);
                    let progressed = b > last_bytes;
                    if progressed {
                        last_progress = Instant::now();
                        stalled = false;
                    }
                    last_bytes = b;
                    let rate = meter.rate();
                    m.update_host(id, host, |h| {
                        h.bytes = b;
                        h.percent = h.total.map(|t| 100.0 * b.min(t) as f64 / t.max(1) as f64);
                        h.rate_bps = rate;
                        h.eta_secs = meter.eta(h.total);
                        if progressed && h.state == JobState::Stalled {
                            h.state = JobState::Running;
                            h.warning = None;
                        }
                    });
                }
                if !stalled && last_progress.elapsed() >= s.stall_after {
                    stalled = true;
                    let warn = format!(
                        "stalled: no new bytes on {host} for {}s; stopping this attempt",
                        s.stall_after.as_secs_f64().round()
                    );
                    m.inner.logs.push(op, Some(host), Stream::Control, format!("download {repo}: {warn}"));
                    m.update_host(id, host, |h| {
                        h.state = JobState::Stalled;
                        h.warning = Some(warn);
                        h.rate_bps = Some(0.0);
                        h.eta_secs = None;
                    });
                    stop.cancel();
                }
            }
        }
    };
    let _ = fwd.await;
    match result {
        Ok(out) if out.success() => Attempt::Done,
        Ok(out) if out.status == Some(127) && !legacy => Attempt::Legacy,
        Ok(out) if out.status == Some(127) => Attempt::Fatal(not_installed(host)),
        Ok(out) => match fatal_failure(&out.stderr) {
            Some(e) => Attempt::Fatal(e),
            None => {
                let tail: Vec<&str> = out.stderr.lines().rev().take(2).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                Attempt::Retry(format!(
                    "`{prog} download` {}: {}",
                    out.exit_text(),
                    tail.join(" / ")
                ))
            }
        },
        Err(RemoteError::Cancelled) if cancel.is_cancelled() => Attempt::Cancelled,
        Err(RemoteError::Cancelled) => Attempt::Retry("stalled".into()),
        Err(e) => Attempt::Retry(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_cases() {
        for (stderr, fatal) in [
            ("Repository Not Found for url: https://huggingface.co/api/models/x/y/revision/main.", true),
            ("huggingface_hub.errors.GatedRepoError: 401 Client Error.\nAccess to model meta-llama/x is restricted.", true),
            ("Repo id must be in the form 'repo_name' or 'namespace/repo_name': 'x'.", true),
            ("OSError: [Errno 28] No space left on device", true),
            ("ConnectionError: HTTPSConnectionPool(host='huggingface.co'): Read timed out.", false),
            ("", false),
        ] {
            assert_eq!(fatal_failure(stderr).is_some(), fatal, "{stderr}");
        }
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        let b = |n| backoff(Duration::from_secs(5), Duration::from_secs(60), n).as_secs();
        assert_eq!(
            [b(1), b(2), b(3), b(4), b(5), b(40)],
            [5, 10, 20, 40, 60, 60]
        );
    }

    #[test]
    fn cache_dir_names() {
        assert_eq!(cache_dir_name("org/Name-1"), "models--org--Name-1");
    }
}
