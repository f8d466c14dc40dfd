//! The log stream as journald, `docker logs` and collectors get it: no ANSI escapes unless
//! stderr is a terminal (and never with `NO_COLOR`), and `--log-format json` writes one
//! JSON object per line with stable field names.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ESC: &str = "\u{1b}[";

/// `serve` on a free port with its files in `dir`, as an argv.
fn serve_args(dir: &Path) -> Vec<String> {
    vec![
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--desired".into(),
        dir.join("desired.yaml").display().to_string(),
        "--data-dir".into(),
        dir.join("state").display().to_string(),
    ]
}

fn term(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

fn wait_exit(child: &mut Child, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < deadline, "did not exit within {secs} s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `serve` with stderr into a file until it says where it listens, stops it with
/// SIGTERM, and returns the file's text.
fn serve_log_to_file(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_spark-control"))
        .args(extra)
        .args(serve_args(dir.path()))
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains("open http://")) {
        assert!(Instant::now() < deadline, "no start-up line in {log:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    term(child.id());
    wait_exit(&mut child, 30);
    std::fs::read_to_string(&log).expect("log")
}

#[test]
fn logs_to_a_file_have_no_escape_codes() {
    let text = serve_log_to_file(&[]);
    assert!(!text.contains(ESC), "escape codes in a file:\n{text:?}");
    assert!(
        text.lines()
            .any(|l| l.contains(" INFO ") && l.contains("open http://")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains(" WARN ") && l.contains("NO ADMIN TOKEN")),
        "{text}"
    );
}

#[test]
fn json_logs_are_one_object_per_line_with_stable_fields() {
    let text = serve_log_to_file(&["--log-format", "json"]);
    let mut messages = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\nin\n{text}"));
        let ts = v["timestamp"]
            .as_str()
            .unwrap_or_else(|| panic!("timestamp: {line}"));
        chrono::DateTime::parse_from_rfc3339(ts).unwrap_or_else(|e| panic!("{ts}: {e}"));
        assert!(
            ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
                .contains(&v["level"].as_str().unwrap_or("")),
            "{line}"
        );
        assert!(
            v["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("spark_control")),
            "{line}"
        );
        messages.push(
            v["message"]
                .as_str()
                .unwrap_or_else(|| panic!("message: {line}"))
                .to_string(),
        );
    }
    assert!(
        messages.iter().any(|m| m.contains("open http://")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("shutting down")),
        "{messages:?}"
    );
    // Structured fields stay fields: the identity's path.
    assert!(
        text.lines()
            .any(|l| l.contains("\"message\":\"created SSH identity\"") && l.contains("\"path\":")),
        "{text}"
    );
}

/// Runs `serve` on a pseudo-terminal (util-linux `script`) with `no_color`, until it says
/// where it listens; returns what the terminal showed.
fn serve_on_a_terminal(no_color: Option<&str>) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("pid");
    let argv: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_spark-control").to_string())
        .chain(serve_args(dir.path()))
        .map(|a| format!("'{a}'"))
        .collect();
    let inner = format!("echo $$ > '{}'; exec {}", pidfile.display(), argv.join(" "));
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &format!("sh -c \"{inner}\""), "/dev/null"])
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    let mut child = cmd.spawn().expect("script (util-linux)");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut seen = String::new();
    let mut line = String::new();
    while out.read_line(&mut line).expect("read") > 0 {
        seen.push_str(&line);
        if line.contains("open http://") {
            break;
        }
        line.clear();
    }
    assert!(seen.contains("open http://"), "{seen:?}");
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .expect("pid")
        .trim()
        .parse()
        .expect("pid");
    term(pid);
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    wait_exit(&mut child, 30);
    seen + &rest
}

#[test]
fn colour_on_a_terminal_unless_no_color() {
    let coloured = serve_on_a_terminal(None);
    assert!(
        coloured.contains(ESC),
        "a terminal gets colour: {coloured:?}"
    );
    let plain = serve_on_a_terminal(Some("1"));
    assert!(!plain.contains(ESC), "NO_COLOR=1: {plain:?}");
    let empty = serve_on_a_terminal(Some(""));
    assert!(
        empty.contains(ESC),
        "an empty NO_COLOR does not count: {empty:?}"
    );
}
