//! The transport: run a [`Script`] on a host and get its output, streamed line by line.
//!
//! Two transports share one interface, [`Transport`]: [`ssh::SshHost`] (one persistent
//! russh connection per host, many channels on it) and [`local::LocalHost`] (`sh -c` on
//! this machine: the demo's simulated Sparks, or spark-control running on a Spark).
//! Commands are argv ([`cmd`]); host keys and our identity live in [`keys`].
//!
//! This layer knows nothing about models, launchers or services: it must not parse
//! command output or decide what to run. A non-zero exit status is not an error here;
//! callers look at [`Output::status`] (or use [`Output::check`]).

pub mod cmd;
pub mod keys;
pub mod local;
mod output;
pub mod ssh;

use std::time::Duration;

pub use cmd::{Cmd, CmdError, Script};
pub use output::{Line, Output, TAIL_BYTES};
use tokio_util::sync::CancellationToken;

/// How to run one command.
#[derive(Debug, Clone)]
pub struct ExecOpts {
    /// Overall limit for the command (including waiting for a connection). On expiry
    /// the remote process group is signalled (TERM, then KILL) and the channel closed.
    pub timeout: Duration,
    /// If set, every output line is sent here as it arrives (before the command ends).
    pub lines: Option<tokio::sync::mpsc::Sender<Line>>,
    /// If set and cancelled, the command is stopped like on timeout.
    pub cancel: Option<CancellationToken>,
}

impl ExecOpts {
    pub fn new(timeout: Duration) -> Self {
        ExecOpts {
            timeout,
            lines: None,
            cancel: None,
        }
    }

    pub fn lines(mut self, tx: tokio::sync::mpsc::Sender<Line>) -> Self {
        self.lines = Some(tx);
        self
    }

    pub fn cancel(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }
}

/// Errors of the transport. Messages say what failed, on which host, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("host {host} is unreachable: {detail}. Check that it is powered on, on the network, and that sshd runs")]
    Unreachable { host: String, detail: String },
    #[error("host {host}: its SSH host key changed (expected {expected_fp}, got {got_fp}); refusing to connect. This can be an attack. If the change is expected (host reinstalled, key regenerated): {fix}")]
    HostKeyChanged {
        host: String,
        expected_fp: String,
        got_fp: String,
        /// What to do if the change is expected.
        fix: String,
    },
    #[error("host {host}: SSH authentication failed: {detail}. Add the key from `spark-control pubkey` to ~/.ssh/authorized_keys of the configured user there")]
    Auth { host: String, detail: String },
    #[error("host {host}: command timed out after {after:?} and was stopped")]
    Timeout { host: String, after: Duration },
    #[error("command cancelled")]
    Cancelled,
    #[error("host {host}: SSH error: {detail}")]
    Protocol { host: String, detail: String },
    #[error("host {host}: could not start the command: {detail}")]
    Spawn { host: String, detail: String },
    #[error("host {host}: command failed with {status}: {stderr_tail}")]
    Failed {
        host: String,
        status: String,
        stderr_tail: String,
    },
    #[error("invalid command: {0}")]
    Cmd(#[from] CmdError),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
}

/// A host commands run on. Cheap to clone; clones share the connection and counters.
#[derive(Debug, Clone)]
pub enum Transport {
    Ssh(ssh::SshHost),
    Local(local::LocalHost),
}

impl Transport {
    /// Run `script`; stream lines to `opts.lines`; return the (bounded) output.
    pub async fn exec(&self, script: &Script, opts: ExecOpts) -> Result<Output, RemoteError> {
        match self {
            Transport::Ssh(h) => h.exec(script, opts).await,
            Transport::Local(h) => h.exec(script, opts).await,
        }
    }

    /// The host's label (e.g. `spark1`), used in errors and logs.
    pub fn label(&self) -> &str {
        match self {
            Transport::Ssh(h) => h.label(),
            Transport::Local(h) => h.label(),
        }
    }

    /// Time to run `true` on the host (opens the connection if needed), for telemetry.
    pub async fn round_trip(&self) -> Result<Duration, RemoteError> {
        let out = self
            .exec(&Script::Raw("true"), ExecOpts::new(Duration::from_secs(15)))
            .await?;
        Ok(out.elapsed)
    }

    /// How many SSH connections this host has opened so far (0 for local).
    pub fn connections_opened(&self) -> u64 {
        match self {
            Transport::Ssh(h) => h.connections_opened(),
            Transport::Local(_) => 0,
        }
    }
}
