//! The simulator of a DGX Spark's software: a fake vLLM, fake speech services, and the
//! POSIX shims (`docker`, `launch-cluster.sh`, `build-and-copy.sh`, `hf`, `nvidia-smi`)
//! that stand in for what runs on a real Spark.
//!
//! It exists for integration tests (two real sshd on 127.0.0.2/.3 play the Sparks) and
//! for `spark-control demo` (two local-transport hosts). The product never imports this
//! module outside those two uses.
//!
//! Owns: everything under a simulation base directory `<base>` (see [`hosts`] for the
//! file contract). Must not: touch anything outside `<base>`, listen on anything but
//! the loopback addresses it is given, or leave processes behind ([`Sim`] kills them).

pub mod hosts;
pub mod hub;
mod openai;
pub mod speech;
pub mod vllm;

use std::path::PathBuf;

pub use hosts::{host_env, install, Sim, SimHost, SimService};
pub use speech::{SpeechArgs, SpeechKind};
pub use vllm::VllmArgs;

/// Errors of the simulator layer. Each says what failed and where.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A file or directory operation under the simulation base failed.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The fake server could not bind its address.
    #[error("cannot bind {addr}: {source} (is another fake server already on that port?)")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The fake vLLM was told (knob/flag) to fail during startup.
    #[error("engine startup failed: {0}")]
    StartupFailed(String),
    /// A helper command (git, kill) failed while installing or shutting down.
    #[error("command `{cmd}` failed: {detail}")]
    Command { cmd: String, detail: String },
    /// A host definition is unusable (bad name, non-loopback address, ...).
    #[error("invalid simulated host {host}: {reason}")]
    InvalidHost { host: String, reason: String },
}

impl SimError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SimError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

/// The hidden `spark-control sim ...` subcommands (also accepted by `fake-vllm`).
#[derive(Debug, clap::Subcommand)]
pub enum SimCommand {
    /// Run a fake vLLM OpenAI-compatible server.
    Vllm(VllmArgs),
    /// Run a fake speech service (STT or TTS).
    Speech(SpeechArgs),
}

/// Runs one simulator subcommand until it exits (crash knob, SIGTERM, startup failure).
pub async fn run(cmd: SimCommand) -> Result<(), SimError> {
    match cmd {
        SimCommand::Vllm(args) => vllm::serve(args).await,
        SimCommand::Speech(args) => speech::serve(args).await,
    }
}
