//! systemd's notify protocol (`sd_notify(3)`) without libsystemd: each message is one
//! datagram to `$NOTIFY_SOCKET` (a file path, or `@name` in the abstract namespace).
//! Under a unit with `Type=notify`, `READY=1` tells systemd the service is up (the
//! listen socket is bound and the control loop runs); with `WatchdogSec=`, systemd sets
//! `$WATCHDOG_USEC` and restarts the service when `WATCHDOG=1` stops arriving — here it
//! is sent at half that interval by a task on the runtime, so a wedged runtime (every
//! worker blocked) stops it. Without the variables (not under systemd) nothing is sent.
//!
//! Owns: the socket address rules and the messages. Must not: block (a datagram send to
//! a local socket does not), or fail the program (a lost notification is logged).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Sends `msg` to `$NOTIFY_SOCKET`; `Ok(false)` when the variable is not set.
pub fn notify(msg: &str) -> std::io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let sock = std::os::unix::net::UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sock.send_to_addr(msg.as_bytes(), &addr)?;
    } else {
        sock.send_to(msg.as_bytes(), &path)?;
    }
    Ok(true)
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when it is set and meant
/// for this process (`$WATCHDOG_PID` unset or ours).
pub fn watchdog_every() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

fn send(msg: &str) {
    if let Err(e) = notify(msg) {
        tracing::warn!(error = %e, "cannot notify systemd ({msg})");
    }
}

/// The service is up: `READY=1` (with a status line), and the watchdog pings from now
/// until `shutdown`, when `STOPPING=1` is sent.
pub fn ready(status: &str, shutdown: CancellationToken) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    send(&format!("READY=1\nSTATUS={status}"));
    let every = watchdog_every();
    tokio::spawn(async move {
        match every {
            Some(every) => loop {
                send("WATCHDOG=1");
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.cancelled() => break,
                }
            },
            None => shutdown.cancelled().await,
        }
        send("STOPPING=1");
    });
}
