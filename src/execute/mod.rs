//! The executor: turns plan steps into remote commands, runs them, verifies the result.
//!
//! Each step is an "ensure": it runs its command, then re-observes what it changed and
//! checks the post-state (container up or down, model listed by the API). It streams every
//! output line into the log hub under the operation's id. It never decides *what* to do;
//! that is the planner's job. Long waits (ready, settle, download) stop promptly when the
//! operation is cancelled; stop and launch commands always run to completion (safe points).

mod launch;
mod steps;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::hosts::Hosts;
use crate::logs::{LogHub, Stream};
use crate::model::desired::Desired;
use crate::model::observed::ContainerObserved;
use crate::observe::{parse, Observer};
use crate::plan::Step;
use crate::remote::{ExecOpts, Line, Output, RemoteError, Script, Transport};

/// Why a step failed. The message says which step, where, and what was seen.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A remote command failed or could not run.
    #[error("{step}: {source}")]
    Remote {
        /// The step (its plan line).
        step: String,
        /// The transport error.
        #[source]
        source: RemoteError,
    },
    /// The command ran but the world is not as the step requires.
    #[error("{step}: {message}")]
    Verify {
        /// The step.
        step: String,
        /// What was wrong.
        message: String,
    },
    /// The operation was cancelled (newer desired state, shutdown).
    #[error("cancelled: {0}")]
    Cancelled(String),
}

/// Runs the steps of one operation.
pub struct Executor {
    /// The transports.
    pub hosts: Hosts,
    /// The desired state the plan was made from.
    pub desired: Arc<Desired>,
    /// Where output goes.
    pub logs: Arc<LogHub>,
    /// For re-observing after a step.
    pub observer: Observer,
    /// Operation id (log tag).
    pub op: u64,
    /// Cancelled when the operation is superseded.
    pub cancel: CancellationToken,
    /// Downloads with progress (None: a plain `hf download`, without progress).
    pub downloads: Option<crate::downloads::DownloadManager>,
    /// The launcher-output follower a launch leaves for the wait for ready.
    pub(crate) follower: std::sync::Mutex<Option<launch::Follower>>,
}

impl Executor {
    /// Logs a control line.
    pub fn say(&self, host: Option<&str>, text: impl Into<String>) {
        self.logs.push(Some(self.op), host, Stream::Control, text);
    }

    fn transport(&self, step: &str, host: &str) -> Result<Transport, ExecError> {
        self.hosts.get(host).ok_or_else(|| ExecError::Verify {
            step: step.into(),
            message: format!("host {host} is not configured"),
        })
    }

    /// Runs `script` on `host`, streaming its output into the log. Fails on a non-zero exit
    /// unless `allow_fail`. `cancellable` commands stop when the operation is cancelled.
    pub async fn run(
        &self,
        step: &str,
        host: &str,
        script: &Script,
        timeout: Duration,
        cancellable: bool,
        allow_fail: bool,
    ) -> Result<Output, ExecError> {
        let t = self.transport(step, host)?;
        let (tx, mut rx) = mpsc::channel::<Line>(256);
        let logs = self.logs.clone();
        let op = self.op;
        let h = host.to_string();
        let forward = tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                match line {
                    Line::Out(s) => logs.push(Some(op), Some(&h), Stream::Stdout, s),
                    Line::Err(s) => logs.push(Some(op), Some(&h), Stream::Stderr, s),
                }
            }
        });
        let mut opts = ExecOpts::new(timeout).lines(tx);
        if cancellable {
            opts = opts.cancel(self.cancel.clone());
        }
        let res = t.exec(script, opts).await;
        let _ = forward.await;
        let out = match res {
            Ok(o) => o,
            Err(RemoteError::Cancelled) => {
                return Err(ExecError::Cancelled(format!("{step} interrupted")))
            }
            Err(e) => {
                return Err(ExecError::Remote {
                    step: step.into(),
                    source: e,
                })
            }
        };
        if !allow_fail && !out.success() {
            let ended = out.exit_text();
            return Err(match out.check(host) {
                Err(e) => ExecError::Remote {
                    step: step.into(),
                    source: e,
                },
                Ok(_) => ExecError::Verify {
                    step: step.into(),
                    message: format!("the command {ended}"),
                },
            });
        }
        Ok(out)
    }

    /// Runs `script` on `host` without logging its output (probes while waiting).
    pub async fn quiet(
        &self,
        step: &str,
        host: &str,
        script: &Script,
    ) -> Result<Output, ExecError> {
        let t = self.transport(step, host)?;
        t.exec(script, ExecOpts::new(Duration::from_secs(30)))
            .await
            .map_err(|e| ExecError::Remote {
                step: step.into(),
                source: e,
            })
    }

    /// The containers on `host`, now.
    pub async fn containers(
        &self,
        step: &str,
        host: &str,
    ) -> Result<std::collections::BTreeMap<String, ContainerObserved>, ExecError> {
        let t = self.transport(step, host)?;
        let out = t
            .exec(
                &Script::Raw(crate::observe::DOCKER_PS),
                ExecOpts::new(Duration::from_secs(20)),
            )
            .await
            .map_err(|e| ExecError::Remote {
                step: step.into(),
                source: e,
            })?;
        let lines: Vec<String> = out.stdout.lines().map(String::from).collect();
        if !out.success() {
            return Err(ExecError::Verify {
                step: step.into(),
                message: format!("docker ps failed on {host}: {}", out.stderr.trim()),
            });
        }
        parse::docker_ps(&lines).map_err(|m| ExecError::Verify {
            step: step.into(),
            message: m,
        })
    }

    /// Sleeps, or returns Cancelled when the operation is cancelled.
    pub async fn pause(&self, d: Duration, what: &str) -> Result<(), ExecError> {
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = self.cancel.cancelled() => Err(ExecError::Cancelled(format!("{what} interrupted"))),
        }
    }

    /// Runs `fut` unless the operation is cancelled first (then `Cancelled`). For reads
    /// only — an HTTP probe that hangs while vLLM loads — never for a command that changes
    /// a host, which runs to completion.
    pub async fn unless_cancelled<T>(
        &self,
        fut: impl std::future::Future<Output = T>,
        what: &str,
    ) -> Result<T, ExecError> {
        tokio::select! {
            v = fut => Ok(v),
            _ = self.cancel.cancelled() => Err(ExecError::Cancelled(format!("{what} interrupted"))),
        }
    }

    /// Runs one step and verifies it.
    pub async fn run_step(&self, step: &Step) -> Result<(), ExecError> {
        steps::run(self, step).await
    }
}
