//! Shared test harness: real processes standing in for the Sparks.
//!
//! - [`sshd::SshdHost`]: a real OpenSSH `sshd` on a loopback address (127.0.0.2, ...)
//!   with its own host key, client key, home directory and per-host environment.
//! - [`webdriver::Driver`]: chromedriver + headless Chromium for the UI tests.

#![allow(dead_code)] // each test module uses a different part of the harness

pub mod cluster;
pub mod sshd;
pub mod webdriver;

/// Log `tracing` output into the test's captured output (filter with `RUST_LOG`).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Each deployment of a desired file and its active model, in file order (the file must be
/// valid).
pub fn active_models(text: &str) -> Vec<(String, Option<String>)> {
    spark_control::model::validate_text("desired.yaml", text)
        .desired
        .expect("a valid desired file")
        .deployments()
        .into_iter()
        .map(|x| (x.name, x.active_model))
        .collect()
}

/// Runs `script` with python3 and the official `openai` SDK, its base URL (`…/v1`) as the
/// first argument; it must exit 0 and print `SDK OK`. Its stdout.
pub async fn openai_sdk(script: &'static str, url: String) -> String {
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(["-c", script, &url])
            .output()
    })
    .await
    .expect("join")
    .expect("run python3 (pip install openai)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains("SDK OK"),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
