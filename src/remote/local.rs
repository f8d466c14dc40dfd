//! The local transport: run a rendered script with `sh -c` on this machine.
//!
//! Used for the demo's simulated Sparks and when spark-control runs on a Spark itself.
//! Same contract as SSH: stdin is `/dev/null`, output is streamed line by line, and on
//! timeout or cancel the whole process group gets TERM, then KILL after a grace period.
//! Extra environment given at construction is added to every command (like a host's
//! login environment). It must not know about models.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;
use tokio::process::Command;

use super::output::{Collector, Stream};
use super::{cmd, ExecOpts, Output, RemoteError, Script};

/// Grace between TERM and KILL when stopping a command.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// A "host" that is this machine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LocalHost {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    label: String,
    env: Vec<(String, String)>,
}

impl LocalHost {
    pub fn new(label: impl Into<String>, env: Vec<(String, String)>) -> Self {
        LocalHost {
            inner: Arc::new(Inner {
                label: label.into(),
                env,
            }),
        }
    }

    pub fn label(&self) -> &str {
        &self.inner.label
    }

    pub async fn exec(&self, script: &Script, opts: ExecOpts) -> Result<Output, RemoteError> {
        let start = Instant::now();
        let deadline = tokio::time::Instant::from_std(start + opts.timeout);
        let text = cmd::render(script)?;
        let host = self.label().to_string();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&text)
            .envs(self.inner.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| RemoteError::Spawn {
                host: host.clone(),
                detail: format!("sh: {e}"),
            })?;
        let pgid = child.id();
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let mut collector = Collector::new(opts.lines.clone());
        let cancel = opts.cancel.clone().unwrap_or_default();
        let (mut obuf, mut ebuf) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
        let mut status = None;
        let stopped: Option<RemoteError> = loop {
            if out.is_none() && err.is_none() && status.is_some() {
                break None;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    break Some(RemoteError::Timeout { host: host.clone(), after: opts.timeout });
                }
                _ = cancel.cancelled() => break Some(RemoteError::Cancelled),
                n = read_some(&mut out, &mut obuf) => match n {
                    Some(n) => collector.feed(Stream::Out, &obuf[..n]).await,
                    None => out = None,
                },
                n = read_some(&mut err, &mut ebuf) => match n {
                    Some(n) => collector.feed(Stream::Err, &ebuf[..n]).await,
                    None => err = None,
                },
                s = child.wait(), if status.is_none() => {
                    status = Some(s.map_err(|e| RemoteError::Spawn { host: host.clone(), detail: e.to_string() })?);
                }
            }
        };
        if let Some(e) = stopped {
            if let Some(pgid) = pgid {
                kill_group(pgid, "TERM").await;
                if tokio::time::timeout(KILL_GRACE, child.wait())
                    .await
                    .is_err()
                {
                    kill_group(pgid, "KILL").await;
                }
                // Stragglers of the group that outlived sh.
                kill_group(pgid, "KILL").await;
            }
            let _ = child.kill().await;
            return Err(e);
        }
        let code = status
            .and_then(|s| s.code())
            .and_then(|c| u32::try_from(c).ok());
        Ok(collector.finish(code, start.elapsed()).await)
    }
}

/// Read a chunk; `None` at EOF or on error. Pending forever if the pipe is gone.
async fn read_some<R: tokio::io::AsyncRead + Unpin>(
    r: &mut Option<R>,
    buf: &mut [u8],
) -> Option<usize> {
    match r {
        Some(r) => match r.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        None => std::future::pending().await,
    }
}

/// Signal a whole process group with `sh -c kill` (no unsafe libc here).
async fn kill_group(pgid: u32, sig: &str) {
    // The shell's builtin kill: no dependency on a `kill` binary (procps).
    let r = Command::new("sh")
        .args(["-c", "kill -s \"$0\" -- \"-$1\"", sig, &pgid.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
    if let Err(e) = r {
        tracing::warn!(pgid, sig, error = %e, "could not signal process group");
    }
}
