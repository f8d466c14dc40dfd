//! The transport against two real sshd on 127.0.0.2 / 127.0.0.3, and the local transport.

use std::time::{Duration, Instant};

use spark_control::remote::keys::{self, HostKeyPolicy};
use spark_control::remote::local::LocalHost;
use spark_control::remote::ssh::SshHost;
use spark_control::remote::{Cmd, ExecOpts, Line, Output, RemoteError, Script, Transport};
use tokio_util::sync::CancellationToken;

use crate::harness::sshd::SshdHost;

const HOSTILE: &[&str] = &[
    "x; rm -rf ~",
    "$(id)",
    "`id`",
    "'\"",
    "a\nb",
    "ünï ✓",
    "*",
    "-n",
];

fn ssh(h: &SshdHost, label: &str) -> (Transport, tempfile::TempDir) {
    let data = tempfile::tempdir().expect("tempdir");
    let t = Transport::Ssh(h.client(label, &data.path().join("known_hosts")));
    (t, data)
}

async fn run(t: &Transport, script: impl Into<Script>) -> Output {
    t.exec(&script.into(), ExecOpts::new(Duration::from_secs(20)))
        .await
        .unwrap_or_else(|e| panic!("exec on {}: {e}", t.label()))
}

fn sh(code: &str) -> Cmd {
    Cmd::new("sh").arg("-c").arg(code)
}

/// Runs a print-sleep-print command; checks status, output and that the first line
/// arrived while the command was still running.
async fn check_streaming(t: &Transport) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let t0 = Instant::now();
    let recv = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(l) = rx.recv().await {
            got.push((l, t0.elapsed()));
        }
        got
    });
    let script: Script = sh("echo one; echo warn >&2; sleep 1; echo two; exit 3").into();
    let out = t
        .exec(&script, ExecOpts::new(Duration::from_secs(20)).lines(tx))
        .await
        .expect("exec");
    let lines = recv.await.expect("receiver");
    assert_eq!(out.status, Some(3), "{}", t.label());
    assert_eq!(out.stdout, "one\ntwo\n");
    assert_eq!(out.stderr, "warn\n");
    assert!(out.elapsed >= Duration::from_secs(1));
    // stdout and stderr are separate streams: their relative order is not guaranteed.
    let outs: Vec<&Line> = lines
        .iter()
        .map(|(l, _)| l)
        .filter(|l| matches!(l, Line::Out(_)))
        .collect();
    assert_eq!(outs, [&Line::Out("one".into()), &Line::Out("two".into())]);
    assert!(
        lines.iter().any(|(l, _)| *l == Line::Err("warn".into())),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].1 + Duration::from_millis(500) < out.elapsed,
        "first line came at {:?}, command took {:?}: not streamed",
        lines[0].1,
        out.elapsed
    );
}

#[tokio::test]
async fn runs_commands_with_status_and_streamed_lines() {
    let h = SshdHost::start("127.0.0.2", &[]);
    let (t, _d) = ssh(&h, "spark1");
    check_streaming(&t).await;
    assert!(run(&t, Cmd::new("true")).await.success());
    let rtt = t.round_trip().await.expect("round trip");
    assert!(rtt < Duration::from_secs(2), "{rtt:?}");
    assert_eq!(t.connections_opened(), 1);
}

#[tokio::test]
async fn hostile_arguments_arrive_as_one_literal_argv_element() {
    let h = SshdHost::start("127.0.0.2", &[]);
    let (t, _d) = ssh(&h, "spark1");
    let out = run(
        &t,
        Cmd::new("printf")
            .arg("%s\\0")
            .args(HOSTILE.iter().copied()),
    )
    .await;
    let got: Vec<&str> = out.stdout.split('\0').collect();
    let mut expected = HOSTILE.to_vec();
    expected.push("");
    assert_eq!(got, expected);
    // The state of the world: files named by each argument exist, nothing else happened.
    let dir = h.home().join("files");
    std::fs::create_dir(&dir).expect("mkdir");
    let names: Vec<&str> = HOSTILE.iter().copied().filter(|n| *n != "-n").collect();
    let out = run(
        &t,
        Cmd::new("touch")
            .arg("--")
            .args(names.iter().copied())
            .cwd("~/files"),
    )
    .await;
    assert!(out.success(), "{out:?}");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(on_disk, want);
    assert!(h.home().exists(), "home survived `x; rm -rf ~`");
}

#[tokio::test]
async fn timeout_kills_the_remote_command_and_stdin_is_closed() {
    crate::harness::init_tracing();
    let h = SshdHost::start("127.0.0.2", &[]);
    let (t, _d) = ssh(&h, "spark1");
    // stdin gets EOF at once, even for fixed text without a /dev/null redirect.
    let t0 = Instant::now();
    let out = run(&t, Script::Raw("read x; echo \"rc=$?\"")).await;
    assert_eq!(out.stdout, "rc=1\n");
    assert!(t0.elapsed() < Duration::from_secs(3));

    let pidfile = h.home().join("sleep.pid");
    let script: Script = sh("sleep 60 & echo $! > ~/sleep.pid; wait").into();
    let t0 = Instant::now();
    let err = t
        .exec(&script, ExecOpts::new(Duration::from_secs(1)))
        .await
        .expect_err("must time out");
    assert!(
        matches!(err, RemoteError::Timeout { ref host, after } if host == "spark1" && after == Duration::from_secs(1)),
        "{err}"
    );
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    let pid = std::fs::read_to_string(&pidfile).expect("pid written");
    let pid = pid.trim().to_string();
    assert!(
        wait_until(Duration::from_secs(5), || !alive(&pid)).await,
        "remote sleep {pid} still alive; log:\n{}",
        h.log()
    );

    // Cancellation stops a command the same way.
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c2.cancel();
    });
    let err = t
        .exec(
            &sh("sleep 60").into(),
            ExecOpts::new(Duration::from_secs(30)).cancel(cancel),
        )
        .await
        .expect_err("cancelled");
    assert!(matches!(err, RemoteError::Cancelled), "{err}");
    // The connection is still good afterwards.
    assert!(run(&t, Cmd::new("true")).await.success());
    assert_eq!(t.connections_opened(), 1);
}

/// A cancel that lands right after the start, before the preamble's pid line has come
/// back, still ends the remote command: with only the channel closed, a command that
/// writes nothing (a download blocked on the network, holding the HF cache lock) would
/// live on. Cancels at 0–19 ms after the start, so some land in that window.
#[tokio::test]
async fn a_cancel_right_after_the_start_still_ends_the_command() {
    crate::harness::init_tracing();
    let h = SshdHost::start("127.0.0.2", &[]);
    let (t, _d) = ssh(&h, "spark1");
    assert!(run(&t, Cmd::new("true")).await.success());
    let mut started = Vec::new();
    for i in 0..20u64 {
        let pidfile = h.home().join(format!("early-{i}.pid"));
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        let script: Script = sh(&format!("echo $$ > ~/early-{i}.pid; exec sleep 60")).into();
        let at = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i)).await;
            c2.cancel();
        });
        let r = t
            .exec(
                &script,
                ExecOpts::new(Duration::from_secs(30)).cancel(cancel),
            )
            .await;
        let _ = at.await;
        assert!(matches!(r, Err(RemoteError::Cancelled)), "{i} ms: {r:?}");
        // A command that got to run wrote its pid at once.
        if wait_until(Duration::from_millis(500), || pidfile.exists()).await {
            let pid = std::fs::read_to_string(&pidfile).expect("pid file");
            started.push((i, pid.trim().to_string()));
        }
    }
    for (i, pid) in &started {
        assert!(
            wait_until(Duration::from_secs(5), || !alive(pid)).await,
            "cancelled {i} ms after its start, the remote command (pid {pid}) still runs"
        );
    }
    assert!(
        !started.is_empty(),
        "no command got to run before its cancel"
    );
    assert!(run(&t, Cmd::new("true")).await.success());
}

#[tokio::test]
async fn fifty_concurrent_commands_share_one_connection() {
    crate::harness::init_tracing();
    let h = SshdHost::start("127.0.0.2", &[]);
    let (t, _d) = ssh(&h, "spark1");
    let jobs = (0..50).map(|i| {
        let t = t.clone();
        async move { run(&t, Cmd::new("echo").arg(i.to_string())).await }
    });
    let outs = futures::future::join_all(jobs).await;
    for (i, o) in outs.iter().enumerate() {
        assert_eq!(o.stdout, format!("{i}\n"));
    }
    assert_eq!(t.connections_opened(), 1);
    let accepted = h.log().matches("Accepted publickey").count();
    assert_eq!(accepted, 1, "sshd saw {accepted} logins");
}

#[tokio::test]
async fn idle_connection_is_kept_alive_and_reused() {
    let h = SshdHost::start("127.0.0.3", &[]);
    let (t, _d) = ssh(&h, "spark2");
    assert!(run(&t, Cmd::new("true")).await.success());
    // Keepalive is 2 s with 3 allowed misses: idle well past that.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(run(&t, Cmd::new("true")).await.success());
    assert_eq!(t.connections_opened(), 1);
}

#[tokio::test]
async fn unreachable_while_down_then_reconnects() {
    let mut h = SshdHost::start("127.0.0.3", &[]);
    let (t, _d) = ssh(&h, "spark2");
    assert!(run(&t, Cmd::new("true")).await.success());
    h.stop();
    let t0 = Instant::now();
    let err = t
        .exec(
            &Cmd::new("true").into(),
            ExecOpts::new(Duration::from_secs(30)),
        )
        .await
        .expect_err("host is down");
    assert!(
        matches!(err, RemoteError::Unreachable { ref host, .. } if host == "spark2"),
        "{err}"
    );
    assert!(err.to_string().contains("spark2"), "{err}");
    // connect_timeout is 5 s (harness default).
    assert!(t0.elapsed() < Duration::from_secs(6), "{:?}", t0.elapsed());
    h.start_again();
    assert!(run(&t, Cmd::new("true")).await.success());
    assert_eq!(t.connections_opened(), 2);
}

/// A tracing writer that keeps what was logged (the test's current-thread runtime runs
/// every task on the test thread, where the subscriber is the default).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn host_keys_learned_pinned_and_changes_refused() {
    let log = Captured::default();
    let writer = log.clone();
    let _log = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    );
    let mut h = SshdHost::start("127.0.0.2", &[]);
    let data = tempfile::tempdir().expect("tempdir");
    let kh = data.path().join("known_hosts");
    let old_fp = h.host_fingerprint();
    let old_key = h.host_public_key();
    let t = Transport::Ssh(h.client("spark1", &kh));
    assert!(run(&t, Cmd::new("true")).await.success());
    let text = std::fs::read_to_string(&kh).expect("known_hosts written on first contact");
    assert_eq!(text, format!("[127.0.0.2]:{} {old_key}\n", h.port()));

    h.regenerate_host_key();
    let new_fp = h.host_fingerprint();
    assert_ne!(old_fp, new_fp);
    let fresh = Transport::Ssh(h.client("spark1", &kh));
    let err = fresh
        .exec(
            &Cmd::new("true").into(),
            ExecOpts::new(Duration::from_secs(20)),
        )
        .await
        .expect_err("changed key refused");
    match &err {
        RemoteError::HostKeyChanged {
            host,
            expected_fp,
            got_fp,
            fix,
        } => {
            assert_eq!(
                (host.as_str(), expected_fp, got_fp),
                ("spark1", &old_fp, &new_fp)
            );
            assert!(fix.contains(&kh.display().to_string()), "{fix}");
        }
        other => panic!("expected HostKeyChanged, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&old_fp) && msg.contains(&new_fp), "{msg}");
    // The server log says it too: host, address, both fingerprints.
    let mismatches = |text: &str| {
        text.lines()
            .filter(|l| l.contains("SSH host key mismatch"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let logged = mismatches(&log.text());
    assert_eq!(logged.len(), 1, "{}", log.text());
    for needle in [
        "ERROR",
        "spark1",
        &format!("127.0.0.2:{}", h.port()),
        &old_fp,
        &new_fp,
    ] {
        assert!(
            logged[0].contains(needle),
            "`{needle}` not in: {}",
            logged[0]
        );
    }
    assert_eq!(
        std::fs::read_to_string(&kh).expect("read"),
        text,
        "known_hosts untouched"
    );

    // Pinned: the new key (as a line, or its fingerprint) works; the old one is refused.
    for pin in [h.host_public_key(), new_fp.clone()] {
        let mut cfg = h.ssh_config("spark1", &kh);
        cfg.host_key_policy = HostKeyPolicy::Pinned(pin);
        assert!(run(&Transport::Ssh(SshHost::new(cfg)), Cmd::new("true"))
            .await
            .success());
    }
    let mut cfg = h.ssh_config("spark1", &kh);
    cfg.host_key_policy = HostKeyPolicy::Pinned(old_key);
    let err = Transport::Ssh(SshHost::new(cfg))
        .exec(
            &Cmd::new("true").into(),
            ExecOpts::new(Duration::from_secs(20)),
        )
        .await
        .expect_err("old pin refused");
    assert!(matches!(err, RemoteError::HostKeyChanged { .. }), "{err}");
    // A second mismatch of the same host within the minute is not logged again.
    assert_eq!(mismatches(&log.text()).len(), 1, "{}", log.text());
}

#[tokio::test]
async fn generated_identity_logs_in_and_rsa_is_refused() {
    let h = SshdHost::start("127.0.0.2", &[]);
    let data = tempfile::tempdir().expect("tempdir");
    let key = keys::load_or_create_identity(data.path()).expect("identity");
    std::fs::write(
        h.dir().join("authorized_keys"),
        keys::public_line(&key) + "\n",
    )
    .expect("authorize");
    let mut cfg = h.ssh_config("spark1", &data.path().join("known_hosts"));
    cfg.key = std::sync::Arc::new(key);
    assert!(run(&Transport::Ssh(SshHost::new(cfg)), Cmd::new("true"))
        .await
        .success());
    // The harness's own client key is no longer authorized: a clear Auth error.
    let (t, _d) = ssh(&h, "spark1");
    let err = t
        .exec(
            &Cmd::new("true").into(),
            ExecOpts::new(Duration::from_secs(20)),
        )
        .await
        .expect_err("auth refused");
    assert!(matches!(err, RemoteError::Auth { .. }), "{err}");
    assert!(err.to_string().contains("spark-control pubkey"), "{err}");

    let rsa_dir = tempfile::tempdir().expect("tempdir");
    let p = rsa_dir.path().join("id_ed25519");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"])
        .arg(&p)
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    let err = keys::load_or_create_identity(rsa_dir.path()).expect_err("rsa refused");
    let msg = err.to_string();
    assert!(
        msg.contains("RUSTSEC-2023-0071") && msg.contains("ssh-keygen -t ed25519"),
        "{msg}"
    );
}

#[tokio::test]
async fn per_host_env_reaches_the_remote_shell() {
    let shims = tempfile::tempdir().expect("tempdir");
    let docker = shims.path().join("docker");
    std::fs::write(&docker, "#!/bin/sh\necho \"fake docker $* on $CUSTOM\"\n").expect("shim");
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&docker)
        .status()
        .expect("chmod");
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", shims.path().display());
    let hf = shims.path().join("hf cache");
    let hf = hf.to_string_lossy();
    let a = SshdHost::start(
        "127.0.0.2",
        &[("PATH", &path), ("HF_HOME", &hf), ("CUSTOM", "spark one")],
    );
    let b = SshdHost::start("127.0.0.3", &[("PATH", &path), ("CUSTOM", "spark two")]);
    let (ta, _da) = ssh(&a, "spark1");
    let (tb, _db) = ssh(&b, "spark2");
    let show = sh("printf '%s|' \"$PATH\" \"$HOME\" \"$HF_HOME\" \"$CUSTOM\"; pwd");
    let out = run(&ta, show.clone().cwd("~")).await;
    let home_a = a.home().display().to_string();
    assert_eq!(
        out.stdout,
        format!("{path}|{home_a}|{hf}|spark one|{home_a}\n")
    );
    let out = run(&tb, show.cwd("~")).await;
    let home_b = b.home().display().to_string();
    assert_eq!(out.stdout, format!("{path}|{home_b}||spark two|{home_b}\n"));
    let out = run(&tb, Cmd::new("docker").arg("ps")).await;
    assert_eq!(out.stdout, "fake docker ps on spark two\n");
}

#[tokio::test]
async fn local_host_runs_the_same_scripts_the_same_way() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().display().to_string();
    let t = Transport::Local(LocalHost::new(
        "local",
        vec![
            ("HOME".into(), home.clone()),
            ("CUSTOM".into(), "v w".into()),
        ],
    ));
    check_streaming(&t).await;
    let out = run(
        &t,
        Cmd::new("printf")
            .arg("%s\\0")
            .args(HOSTILE.iter().copied()),
    )
    .await;
    assert_eq!(out.stdout, HOSTILE.join("\0") + "\0");
    let out = run(&t, sh("printf '%s' \"$CUSTOM\"; pwd").cwd("~")).await;
    assert_eq!(out.stdout, format!("v w{home}\n"));
    let out = run(&t, Script::Raw("read x; echo \"rc=$?\"")).await;
    assert_eq!(out.stdout, "rc=1\n");
    let t0 = Instant::now();
    let err = t
        .exec(
            &sh("sleep 60 & echo $! > ~/sleep.pid; wait").into(),
            ExecOpts::new(Duration::from_secs(1)),
        )
        .await
        .expect_err("timeout");
    assert!(matches!(err, RemoteError::Timeout { .. }), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(4));
    let pid = std::fs::read_to_string(dir.path().join("sleep.pid")).expect("pid");
    let pid = pid.trim().to_string();
    assert!(
        wait_until(Duration::from_secs(5), || !alive(&pid)).await,
        "local sleep {pid} still alive"
    );
    assert_eq!(t.connections_opened(), 0);
}

/// Whether a process runs (a zombie, dead but not reaped, does not count).
fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Polls `f` every 50 ms until true or `limit` passes.
async fn wait_until(limit: Duration, f: impl Fn() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}
