//! What operators of the running binary see: `/metrics` as Prometheus scrapes it (checked
//! by `promtool`), the log format on stderr, the command line's completions, man page,
//! exit codes and its start-up order, and the desired-state schema editors find. Everything runs the real `spark-control` binary.

mod cli;
mod logs;
mod metrics;
mod schema;
mod sdnotify;

use std::process::{Command, Stdio};

use crate::demo::Demo;
use crate::harness::sshd::free_port;

/// A started `spark-control demo` on free loopback ports.
pub(crate) struct RunningDemo {
    pub demo: Demo,
    pub base: String,
    /// The scratch dir, removed when the demo is dropped.
    pub _dir: tempfile::TempDir,
}

/// Starts the demo with `extra` arguments and the given stderr; the model loads in 1.5 s.
pub(crate) fn start_demo(extra: &[&str], stderr: Stdio) -> RunningDemo {
    let dir = tempfile::Builder::new()
        .prefix("obs-demo-")
        .tempdir()
        .expect("tempdir");
    let port = free_port("127.0.0.1");
    let vllm_port = free_port("127.0.0.2");
    let stt = free_port("127.0.0.3");
    let mut tts = free_port("127.0.0.3");
    while tts == stt {
        tts = free_port("127.0.0.3");
    }
    let child = Command::new(env!("CARGO_BIN_EXE_spark-control"))
        .args(extra)
        .args(["demo", "--dir"])
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--vllm-port", &vllm_port.to_string()])
        .args([
            "--stt-port",
            &stt.to_string(),
            "--tts-port",
            &tts.to_string(),
        ])
        .args(["--startup-delay-ms", "1500"])
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start the demo");
    RunningDemo {
        demo: Demo(child),
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

impl RunningDemo {
    /// SIGTERM, then wait for the demo to stop its simulated processes and exit.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.demo.0.id().to_string())
            .status();
        self.demo.exited(30, "SIGTERM").await
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .no_proxy()
        .build()
        .expect("client")
}
