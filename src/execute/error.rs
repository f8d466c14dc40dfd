//! Why a step failed, as a type: policy code (retry or not, back off or not) and the UI
//! tell a wrong setting from a failed check, a remote failure, a cancellation and a
//! deadline by the variant ([`ExecError::kind`]), never by parsing the message.
//!
//! Every variant names the step (its plan line) and says what was wrong; `Display` puts
//! the step first, then the headline a person needs.

use std::time::Duration;

use serde::Serialize;

use crate::remote::RemoteError;

/// Why a step failed. The message says which step, where, and what was seen.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The step cannot be carried out as configured: no cluster, a host that is not
    /// configured, a template or setting the launcher refuses, a tool that is not
    /// installed on the host. Running the same step again does the same.
    #[error("{step}: {message}")]
    Config {
        /// The step (its plan line).
        step: String,
        /// What is wrong and what to change.
        message: String,
    },
    /// The commands ran, but the world is not as the step requires (a container still
    /// up after its stop, the launcher's `Error:` line, vLLM gone while starting).
    #[error("{step}: {message}")]
    Check {
        /// The step.
        step: String,
        /// What was seen.
        message: String,
    },
    /// A remote command could not run (unreachable, authentication, SSH) or exited
    /// non-zero.
    #[error("{step}: {source}")]
    Remote {
        /// The step.
        step: String,
        /// The transport's error.
        #[source]
        source: RemoteError,
    },
    /// The operation was cancelled (newer desired state, a person, shutdown).
    #[error("cancelled: {step}: {message}")]
    Cancelled {
        /// The step that was interrupted.
        step: String,
        /// Where it was interrupted.
        message: String,
    },
    /// A deadline passed while waiting (launch timeout, ready timeout, a container's
    /// state after `docker start|stop`, the stop's verification).
    #[error("{step}: {message}")]
    Timeout {
        /// The step.
        step: String,
        /// What was waited for ("vLLM ready", "the container down on spark2").
        waited_for: String,
        /// How long.
        after: Duration,
        /// What was still not so when the deadline passed.
        message: String,
    },
}

/// The kind of an [`ExecError`], for policy code and the wire (`"config"`, `"check"`,
/// `"remote"`, `"cancelled"`, `"timeout"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecErrorKind {
    /// A setting, a template or the host's setup is wrong; a retry does the same.
    Config,
    /// The world is not as the step requires after its commands ran.
    Check,
    /// Transport failure or a non-zero exit.
    Remote,
    /// The operation was cancelled.
    Cancelled,
    /// A deadline passed.
    Timeout,
}

impl ExecErrorKind {
    /// The name on the wire (the serialised form).
    pub fn as_str(self) -> &'static str {
        match self {
            ExecErrorKind::Config => "config",
            ExecErrorKind::Check => "check",
            ExecErrorKind::Remote => "remote",
            ExecErrorKind::Cancelled => "cancelled",
            ExecErrorKind::Timeout => "timeout",
        }
    }
}

impl std::fmt::Display for ExecErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ExecError {
    /// Which kind of failure this is.
    pub fn kind(&self) -> ExecErrorKind {
        match self {
            ExecError::Config { .. } => ExecErrorKind::Config,
            ExecError::Check { .. } => ExecErrorKind::Check,
            ExecError::Remote { .. } => ExecErrorKind::Remote,
            ExecError::Cancelled { .. } => ExecErrorKind::Cancelled,
            ExecError::Timeout { .. } => ExecErrorKind::Timeout,
        }
    }

    /// The step (plan line) that failed.
    pub fn step(&self) -> &str {
        match self {
            ExecError::Config { step, .. }
            | ExecError::Check { step, .. }
            | ExecError::Remote { step, .. }
            | ExecError::Cancelled { step, .. }
            | ExecError::Timeout { step, .. } => step,
        }
    }

    /// What was wrong, without the step.
    pub fn message(&self) -> String {
        match self {
            ExecError::Config { message, .. }
            | ExecError::Check { message, .. }
            | ExecError::Cancelled { message, .. }
            | ExecError::Timeout { message, .. } => message.clone(),
            ExecError::Remote { source, .. } => source.to_string(),
        }
    }

    /// A [`ExecError::Config`] for `step`.
    pub(crate) fn config(step: &str, message: impl Into<String>) -> Self {
        ExecError::Config {
            step: step.into(),
            message: message.into(),
        }
    }

    /// A [`ExecError::Check`] for `step`.
    pub(crate) fn check(step: &str, message: impl Into<String>) -> Self {
        ExecError::Check {
            step: step.into(),
            message: message.into(),
        }
    }

    /// A [`ExecError::Remote`] for `step`; a transport that was cancelled is
    /// [`ExecError::Cancelled`].
    pub(crate) fn remote(step: &str, source: RemoteError) -> Self {
        match source {
            RemoteError::Cancelled => ExecError::cancelled(step, "interrupted"),
            source => ExecError::Remote {
                step: step.into(),
                source,
            },
        }
    }

    /// A [`ExecError::Cancelled`] for `step`.
    pub(crate) fn cancelled(step: &str, message: impl Into<String>) -> Self {
        ExecError::Cancelled {
            step: step.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(e: ExecError, kind: &str, display: &str) {
        assert_eq!(e.kind().as_str(), kind);
        assert_eq!(
            serde_json::to_value(e.kind()).expect("a unit variant serialises"),
            serde_json::Value::String(kind.into())
        );
        assert_eq!(e.to_string(), display);
    }

    #[test]
    fn kinds_and_headlines() {
        check(
            ExecError::config("stop qwen36 on spark1", "no cluster is configured"),
            "config",
            "stop qwen36 on spark1: no cluster is configured",
        );
        check(
            ExecError::check("launch qwen36 on spark1", "Error: Local IP …"),
            "check",
            "launch qwen36 on spark1: Error: Local IP …",
        );
        check(
            ExecError::remote(
                "start magpie on spark2",
                RemoteError::Failed {
                    host: "spark2".into(),
                    status: "exit status 1".into(),
                    stderr_tail: "no such container".into(),
                },
            ),
            "remote",
            "start magpie on spark2: host spark2: command failed with exit status 1: no such container",
        );
        check(
            ExecError::remote("wait for qwen36", RemoteError::Cancelled),
            "cancelled",
            "cancelled: wait for qwen36: interrupted",
        );
        check(
            ExecError::Timeout {
                step: "wait for qwen36".into(),
                waited_for: "qwen36 ready".into(),
                after: Duration::from_secs(60),
                message: "qwen36 was not ready after 60s".into(),
            },
            "timeout",
            "wait for qwen36: qwen36 was not ready after 60s",
        );
    }
}
