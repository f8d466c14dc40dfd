//! The desired-state schema where editors look for it: served at
//! `/schema/desired-state.json` (no token needed), and beside every desired file that
//! `serve`, `configure` and the demo create, which names it in its modeline. The copy
//! beside the file validates the file it sits beside.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use spark_control::model::schema;

use super::client;
use crate::harness::sshd::free_port;

/// The file's modeline names a schema that exists beside it, is the current schema, and
/// accepts the file.
fn check_beside(desired: &Path) {
    let text = std::fs::read_to_string(desired).expect("desired file");
    let first = text.lines().next().unwrap_or_default();
    let named = first
        .strip_prefix("# yaml-language-server: $schema=")
        .unwrap_or_else(|| panic!("no modeline in {desired:?}: {first}"));
    let beside = desired.parent().expect("dir").join(named);
    let schema_text = std::fs::read_to_string(&beside)
        .unwrap_or_else(|e| panic!("{named} named by {desired:?} is not there: {e}"));
    assert_eq!(
        schema_text,
        schema::schema_text(),
        "{beside:?} is the current schema"
    );
    let schema: serde_json::Value = serde_json::from_str(&schema_text).expect("JSON");
    let instance: serde_json::Value = serde_yaml::from_str(&text).expect("YAML");
    let validator = jsonschema::validator_for(&schema).expect("compiles");
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{desired:?}: {errors:?}");
}

#[test]
fn configure_creates_the_file_with_the_schema_beside_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    // As under /var/lib/spark-control or /data: far from the repository's schema/.
    let desired = dir.path().join("var/lib/spark-control/desired.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_spark-control"))
        .args(["configure", "--desired"])
        .arg(&desired)
        .args(["--host", "spark1=10.0.0.1", "--head", "spark1"])
        .output()
        .expect("configure");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_beside(&desired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_serves_the_schema_without_a_token_and_writes_it_beside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let desired = dir.path().join("data/desired.yaml");
    let port = free_port("127.0.0.1");
    let mut child = Command::new(env!("CARGO_BIN_EXE_spark-control"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--desired",
        ])
        .arg(&desired)
        .arg("--data-dir")
        .arg(dir.path().join("state"))
        .env(
            "SPARK_CONTROL_ADMIN_TOKEN",
            "a-long-enough-admin-token-0123",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let url = format!("http://127.0.0.1:{port}{}", schema::SERVED_PATH);
    let deadline = Instant::now() + Duration::from_secs(30);
    let response = loop {
        if let Ok(r) = client().get(&url).send().await {
            break r;
        }
        assert!(Instant::now() < deadline, "serve did not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(response.status(), 200, "no token needed");
    assert_eq!(
        response.headers()["content-type"],
        "application/schema+json"
    );
    let body = response.text().await.expect("body");
    assert_eq!(body, schema::schema_text());
    let served: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(served["$id"], schema::ID);
    // The state needs the token: the schema is the exception, not the rule.
    let state = client()
        .get(format!("http://127.0.0.1:{port}/api/state"))
        .send()
        .await
        .expect("state");
    assert_eq!(state.status(), 401);
    check_beside(&desired);
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}
