//! systemd's notify protocol, with a real datagram socket standing in for systemd:
//! `serve` started with `NOTIFY_SOCKET` and `WATCHDOG_USEC` sends `READY=1` once it
//! answers HTTP, then `WATCHDOG=1` again and again, and `STOPPING=1` on SIGTERM.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::sshd::free_port;

/// The next datagram, within `secs`.
fn recv(sock: &UnixDatagram, secs: u64) -> Option<String> {
    sock.set_read_timeout(Some(Duration::from_secs(secs)))
        .ok()?;
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn serve_notifies_ready_after_it_answers_then_the_watchdog_then_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&socket).expect("bind the notify socket");
    let port = free_port("127.0.0.1");
    let mut child = Command::new(env!("CARGO_BIN_EXE_spark-control"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--desired",
        ])
        .arg(dir.path().join("desired.yaml"))
        .arg("--data-dir")
        .arg(dir.path().join("state"))
        .env(
            "SPARK_CONTROL_ADMIN_TOKEN",
            "a-long-enough-admin-token-0123",
        )
        .env("NOTIFY_SOCKET", &socket)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let ready = recv(&sock, 30).expect("READY=1 within 30 s");
    assert!(
        ready.starts_with("READY=1\nSTATUS=serving on 127.0.0.1:"),
        "{ready:?}"
    );
    // Ready means ready: the HTTP server answers already.
    let health = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(health.is_ok(), "READY=1 came before the listener accepted");
    // Pings at half of WATCHDOG_USEC: several within a couple of seconds.
    let t = Instant::now();
    let mut pings = 0;
    while pings < 4 {
        let m = recv(&sock, 5).expect("a watchdog ping within 5 s");
        assert_eq!(m, "WATCHDOG=1");
        pings += 1;
    }
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "{:?} for 4 pings",
        t.elapsed()
    );
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let mut stopping = false;
    while let Some(m) = recv(&sock, 10) {
        if m == "STOPPING=1" {
            stopping = true;
            break;
        }
        assert_eq!(m, "WATCHDOG=1");
    }
    let status = child.wait().expect("wait");
    assert!(stopping, "no STOPPING=1 after SIGTERM");
    assert!(status.success(), "{status}");
}
