//! The executor: turns plan steps into remote commands, runs them, verifies the result.
//!
//! Each step is an "ensure": it runs its command, then re-observes what it changed and
//! checks the post-state (container up or down, model listed by the API). It streams every
//! output line into the log hub under the operation's id. It never decides *what* to do;
//! that is the planner's job. Long waits (ready, settle, download) stop promptly when the
//! operation is cancelled; stop and launch commands always run to completion (safe points).
//!
//! Failures are typed (`error.rs`: [`ExecError`], [`ExecErrorKind`]); every wait goes
//! through the one poll-until-deadline loop (`wait.rs`); how a command runs is said by
//! [`RunOpts`], never by positional booleans.

mod error;
mod launch;
mod steps;
mod wait;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use self::error::{ExecError, ExecErrorKind};
use crate::hosts::Hosts;
use crate::logs::{LogHub, Stream};
use crate::model::desired::Desired;
use crate::model::observed::ContainerObserved;
use crate::observe::{parse, Observer};
use crate::plan::Step;
use crate::remote::{ExecOpts, Line, Output, Script, Transport};

/// How [`Executor::run`] runs a command: its timeout, whether cancelling the operation
/// stops it, and whether a non-zero exit fails the step.
#[derive(Debug, Clone, Copy)]
pub struct RunOpts {
    /// The command is stopped after this long (a [`ExecError::Remote`] timeout).
    pub timeout: Duration,
    /// The operation's cancellation stops the command (a wait, a download), or the command
    /// runs to completion (a stop, a launch: safe points).
    pub cancellable: bool,
    /// A non-zero exit is the caller's to judge ([`Output::status`]) instead of a
    /// [`ExecError::Remote`].
    pub exit_checked_by_caller: bool,
}

impl RunOpts {
    /// Runs to completion within `timeout`; a non-zero exit fails the step.
    pub fn new(timeout: Duration) -> Self {
        RunOpts {
            timeout,
            cancellable: false,
            exit_checked_by_caller: false,
        }
    }

    /// Stopped when the operation is cancelled.
    pub fn cancellable(mut self) -> Self {
        self.cancellable = true;
        self
    }

    /// A non-zero exit is returned in the [`Output`], not as an error.
    pub fn caller_checks_exit(mut self) -> Self {
        self.exit_checked_by_caller = true;
        self
    }
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
    /// The deployment the running step acts for (its hosts, port and launcher; set by
    /// each step before it runs; empty: the first deployment).
    pub(crate) deployment: std::sync::Mutex<String>,
    /// The proxy's requests in flight: a model's are drained before it is stopped.
    pub demand: Option<Arc<crate::proxy::Demand>>,
}

impl Executor {
    /// Logs a control line.
    pub fn say(&self, host: Option<&str>, text: impl Into<String>) {
        self.logs.push(Some(self.op), host, Stream::Control, text);
    }

    fn transport(&self, step: &str, host: &str) -> Result<Transport, ExecError> {
        self.hosts
            .get(host)
            .ok_or_else(|| ExecError::config(step, format!("host {host} is not configured")))
    }

    /// Runs `script` on `host`, streaming its output into the log, as `opts` say.
    pub async fn run(
        &self,
        step: &str,
        host: &str,
        script: &Script,
        opts: RunOpts,
    ) -> Result<Output, ExecError> {
        let transport = self.transport(step, host)?;
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
        let mut exec_opts = ExecOpts::new(opts.timeout).lines(tx);
        if opts.cancellable {
            exec_opts = exec_opts.cancel(self.cancel.clone());
        }
        let res = transport.exec(script, exec_opts).await;
        let _ = forward.await;
        let out = res.map_err(|e| ExecError::remote(step, e))?;
        if opts.exit_checked_by_caller {
            return Ok(out);
        }
        out.check(host).map_err(|e| ExecError::remote(step, e))
    }

    /// Runs `script` on `host` without logging its output (probes while waiting).
    pub async fn quiet(
        &self,
        step: &str,
        host: &str,
        script: &Script,
    ) -> Result<Output, ExecError> {
        let transport = self.transport(step, host)?;
        transport
            .exec(script, ExecOpts::new(Duration::from_secs(30)))
            .await
            .map_err(|e| ExecError::remote(step, e))
    }

    /// The containers on `host`, now.
    pub async fn containers(
        &self,
        step: &str,
        host: &str,
    ) -> Result<std::collections::BTreeMap<String, ContainerObserved>, ExecError> {
        let transport = self.transport(step, host)?;
        let out = transport
            .exec(
                &Script::Raw(crate::observe::DOCKER_PS),
                ExecOpts::new(Duration::from_secs(20)),
            )
            .await
            .map_err(|e| ExecError::remote(step, e))?
            .check(host)
            .map_err(|e| ExecError::remote(step, e))?;
        let lines: Vec<String> = out.stdout.lines().map(String::from).collect();
        parse::docker_ps(&lines).map_err(|m| ExecError::check(step, m))
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
            _ = self.cancel.cancelled() => Err(ExecError::cancelled(what, "interrupted while a probe was waiting for an answer")),
        }
    }

    /// Runs one step and verifies it.
    pub async fn run_step(&self, step: &Step) -> Result<(), ExecError> {
        steps::run(self, step).await
    }
}
