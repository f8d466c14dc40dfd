//! The SSH transport: one persistent russh connection per host, many channels on it.
//!
//! - The connection is opened lazily by the first command and reused by every later
//!   one; commands run concurrently as separate `exec` channels, at most
//!   [`SshConfig::max_sessions`] at a time (OpenSSH's `MaxSessions` defaults to 10; the
//!   rest wait their turn).
//! - Connecting retries with exponential backoff and jitter (0.5 s doubling to 30 s)
//!   until [`SshConfig::connect_timeout`] has passed, then fails `Unreachable`. Host-key
//!   and authentication failures are not retried. A dropped connection (keepalives
//!   unanswered, server gone) is noticed on the next command, which reconnects.
//! - Connecting is single-flight: concurrent commands wait for one attempt instead of
//!   each opening a connection. No lock is held across an await: a small state machine
//!   behind a std mutex hands out a `watch` receiver for the attempt in flight.
//! - Every command has a timeout; on timeout/cancel the remote process group gets TERM,
//!   then KILL after 2 s, then the channel is closed. OpenSSH refuses channel signals in
//!   some setups (root logins: "session signalling requires privilege separation"), so
//!   every command is prefixed with a preamble that prints the shell's pid (sshd makes it
//!   a session and group leader) as stderr's first line, stripped again here
//!   ([`pid`]); the kill is `kill -s SIG -- -PID` over a second channel. Processes the
//!   command detached with `setsid` are not touched. stdin gets EOF at once.
//! - Commands run under the user's login shell (`$SHELL -c`), which must be POSIX-like
//!   (sh, bash, dash, zsh).
//!
//! It must not know about models or parse command output.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder as _, ExponentialBuilder};
use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use russh::{ChannelMsg, Sig};
use tokio::sync::{watch, Semaphore};

use super::keys::HostKeyPolicy;
use super::output::{Collector, Stream};
use super::{cmd, ExecOpts, Output, RemoteError, Script};
use handler::{Client, ClientError};
use pid::{PidLine, PID_PREAMBLE};

mod handler;
mod pid;

/// Grace between TERM and KILL when stopping a remote command.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// How to reach one host.
#[derive(Debug, Clone)]
pub struct SshConfig {
    /// Name used in errors and logs (e.g. `spark1`).
    pub label: String,
    /// IP address or host name (also the known_hosts name).
    pub address: String,
    pub port: u16,
    pub user: String,
    pub key: Arc<PrivateKey>,
    pub host_key_policy: HostKeyPolicy,
    /// Send a keepalive after this much silence; 3 unanswered ones drop the connection.
    pub keepalive: Duration,
    /// Give up connecting (all retries included) after this long.
    pub connect_timeout: Duration,
    /// Concurrent channels on the connection (keep at or below the server's MaxSessions).
    pub max_sessions: usize,
}

impl SshConfig {
    /// A config with defaults: port 22, keepalive 15 s, connect timeout 10 s, 8 sessions.
    pub fn new(
        label: impl Into<String>,
        address: impl Into<String>,
        user: impl Into<String>,
        key: Arc<PrivateKey>,
        host_key_policy: HostKeyPolicy,
    ) -> Self {
        SshConfig {
            label: label.into(),
            address: address.into(),
            port: 22,
            user: user.into(),
            key,
            host_key_policy,
            keepalive: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(10),
            max_sessions: 8,
        }
    }
}

/// A host reached over SSH. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct SshHost {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SshHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshHost")
            .field("label", &self.inner.cfg.label)
            .field("address", &self.inner.cfg.address)
            .field("port", &self.inner.cfg.port)
            .finish()
    }
}

type Conn = Arc<Handle<Client>>;
/// Outcome of one connect attempt, shared with everyone waiting for it.
type Attempt = Option<Result<Conn, Arc<RemoteError>>>;

enum State {
    Idle,
    Connecting(watch::Receiver<Attempt>),
    Connected(Conn),
}

struct Inner {
    cfg: SshConfig,
    state: Mutex<State>,
    sessions: Semaphore,
    opened: AtomicU64,
}

impl SshHost {
    pub fn new(cfg: SshConfig) -> Self {
        let sessions = Semaphore::new(cfg.max_sessions.max(1));
        SshHost {
            inner: Arc::new(Inner {
                cfg,
                state: Mutex::new(State::Idle),
                sessions,
                opened: AtomicU64::new(0),
            }),
        }
    }

    pub fn label(&self) -> &str {
        &self.inner.cfg.label
    }

    /// Connections opened so far (1 for a healthy host, however many commands ran).
    pub fn connections_opened(&self) -> u64 {
        self.inner.opened.load(Ordering::Relaxed)
    }

    /// Close the connection (if any). The next command reconnects.
    pub async fn disconnect(&self) {
        let old = {
            let mut st = self.lock();
            std::mem::replace(&mut *st, State::Idle)
        };
        if let State::Connected(h) = old {
            let _ = h
                .disconnect(russh::Disconnect::ByApplication, "bye", "en")
                .await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked mid-update of a plain enum.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub async fn exec(&self, script: &Script, opts: ExecOpts) -> Result<Output, RemoteError> {
        let start = Instant::now();
        let deadline = tokio::time::Instant::from_std(start + opts.timeout);
        let text = cmd::render(script)?;
        let host = self.label().to_string();
        let cancel = opts.cancel.clone().unwrap_or_default();
        let timeout = || RemoteError::Timeout {
            host: host.clone(),
            after: opts.timeout,
        };
        let guarded = async {
            let permit = self.inner.sessions.acquire().await;
            let channel = self.open_channel().await?;
            Ok::<_, RemoteError>((permit, channel))
        };
        let (_permit, mut channel) = tokio::select! {
            r = guarded => r?,
            _ = tokio::time::sleep_until(deadline) => return Err(timeout()),
            _ = cancel.cancelled() => return Err(RemoteError::Cancelled),
        };
        let proto = |e: russh::Error| RemoteError::Protocol {
            host: host.clone(),
            detail: e.to_string(),
        };
        // The preamble reports the shell's pid on stderr's first line: sshd starts each
        // command as a session leader, so that pid is the process group to kill on
        // timeout (OpenSSH refuses channel signals in some setups, e.g. root logins).
        let full = format!("{PID_PREAMBLE}{text}");
        channel.exec(true, full.as_bytes()).await.map_err(proto)?;
        channel.eof().await.map_err(proto)?;
        let mut collector = Collector::new(opts.lines.clone());
        let mut pid = PidLine::default();
        let mut status = None;
        let stopped = loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break Some(timeout()),
                _ = cancel.cancelled() => break Some(RemoteError::Cancelled),
                msg = channel.wait() => match msg {
                    None => break None,
                    Some(ChannelMsg::Data { data }) => collector.feed(Stream::Out, &data).await,
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                        if let Some(rest) = pid.feed(&data) {
                            collector.feed(Stream::Err, &rest).await
                        }
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
                    Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                        tracing::debug!(host = %host, signal = ?signal_name, "remote command killed by signal");
                    }
                    Some(_) => {}
                }
            }
        };
        if let Some(e) = stopped {
            // Stopped before the preamble's pid line arrived (a cancel right after the
            // start): without the pid there is nothing to kill but the channel, and a
            // command that ignores its closed channel (a download blocked on the network,
            // holding its lock) would live on. The line comes first, within moments: wait
            // for it, bounded.
            if !pid.done() {
                let _ = tokio::time::timeout(KILL_GRACE, async {
                    while let Some(m) = channel.wait().await {
                        match m {
                            ChannelMsg::ExtendedData { data, ext: 1 } => {
                                let _ = pid.feed(&data);
                                if pid.done() {
                                    return;
                                }
                            }
                            ChannelMsg::ExitStatus { .. } | ChannelMsg::ExitSignal { .. } => return,
                            _ => {}
                        }
                    }
                })
                .await;
            }
            self.stop_remote(&mut channel, pid.pid).await;
            return Err(e);
        }
        if let Some(rest) = pid.finish() {
            collector.feed(Stream::Err, &rest).await;
        }
        Ok(collector.finish(status, start.elapsed()).await)
    }

    /// Stop a command: TERM to its process group, KILL after a grace period, close.
    async fn stop_remote(&self, channel: &mut russh::Channel<client::Msg>, pid: Option<u32>) {
        // Servers that allow channel signals deliver them with killpg.
        let _ = channel.signal(Sig::TERM).await;
        if let Some(pid) = pid {
            self.kill_group(pid, "TERM").await;
        }
        let ended = tokio::time::timeout(KILL_GRACE, async {
            while let Some(m) = channel.wait().await {
                if matches!(
                    m,
                    ChannelMsg::ExitStatus { .. } | ChannelMsg::ExitSignal { .. }
                ) {
                    return;
                }
            }
        })
        .await;
        if ended.is_err() {
            let _ = channel.signal(Sig::KILL).await;
        }
        if let Some(pid) = pid {
            // Also reaches children that outlived the shell.
            self.kill_group(pid, "KILL").await;
        }
        let _ = channel.close().await;
    }

    /// Run `kill -s SIG -- -PGID` on the host over a fresh channel (bounded, best effort).
    async fn kill_group(&self, pgid: u32, sig: &str) {
        let kill = cmd::Cmd::new("kill")
            .args(["-s", sig, "--", &format!("-{pgid}")])
            .into();
        let Ok(text) = cmd::render(&kill) else {
            return;
        };
        let run = async {
            let mut ch = self.open_channel().await.ok()?;
            ch.exec(true, format!("{text} 2>/dev/null").as_bytes())
                .await
                .ok()?;
            ch.eof().await.ok()?;
            while ch.wait().await.is_some() {}
            Some(())
        };
        if tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .is_err()
        {
            tracing::warn!(host = %self.label(), pgid, sig, "could not signal the remote command");
        }
    }

    /// Open a session channel. A refused open (the server's MaxSessions is reached while
    /// it frees finished sessions) is retried after a short pause; a dead connection is
    /// replaced. The caller bounds the whole thing with its deadline.
    async fn open_channel(&self) -> Result<russh::Channel<client::Msg>, RemoteError> {
        let mut pause = Duration::from_millis(20);
        let mut reconnected = false;
        loop {
            let conn = self.connection().await?;
            match conn.channel_open_session().await {
                Ok(ch) => return Ok(ch),
                Err(russh::Error::ChannelOpenFailure(why)) => {
                    tracing::debug!(host = %self.label(), ?why, "channel refused; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(e) if !reconnected => {
                    tracing::info!(host = %self.label(), error = %e, "connection lost; reconnecting");
                    self.forget(&conn);
                    reconnected = true;
                }
                Err(e) => {
                    return Err(RemoteError::Protocol {
                        host: self.label().to_string(),
                        detail: format!("cannot open a channel: {e}"),
                    })
                }
            }
        }
    }

    /// Drop `conn` from the cache if it is still the current one.
    fn forget(&self, conn: &Conn) {
        let mut st = self.lock();
        if matches!(&*st, State::Connected(c) if Arc::ptr_eq(c, conn)) {
            *st = State::Idle;
        }
    }

    /// The live connection, connecting (single-flight) if needed.
    async fn connection(&self) -> Result<Conn, RemoteError> {
        loop {
            let (mut rx, leader) = {
                let mut st = self.lock();
                match &*st {
                    State::Connected(c) if !c.is_closed() => return Ok(c.clone()),
                    State::Connecting(rx) => (rx.clone(), None),
                    _ => {
                        let (tx, rx) = watch::channel(None);
                        *st = State::Connecting(rx.clone());
                        (rx, Some(tx))
                    }
                }
            };
            if let Some(tx) = leader {
                // We lead this attempt. Run it in its own task so that a caller that
                // times out or is cancelled does not abandon the others.
                let this = self.clone();
                tokio::spawn(async move {
                    let r = this.connect_with_retries().await;
                    {
                        let mut st = this.lock();
                        *st = match &r {
                            Ok(c) => State::Connected(c.clone()),
                            Err(_) => State::Idle,
                        };
                    }
                    let _ = tx.send(Some(r.map_err(Arc::new)));
                });
            }
            let outcome = match rx.wait_for(Option::is_some).await {
                Ok(v) => v.clone(),
                Err(_) => None, // the attempt's task died; try again
            };
            match outcome {
                Some(Ok(c)) => return Ok(c),
                Some(Err(e)) => return Err(clone_err(&e, self.label())),
                None => continue,
            }
        }
    }

    async fn connect_with_retries(&self) -> Result<Conn, RemoteError> {
        let cfg = &self.inner.cfg;
        let give_up = tokio::time::Instant::now() + cfg.connect_timeout;
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(30))
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build();
        loop {
            let left = give_up.saturating_duration_since(tokio::time::Instant::now());
            let err = match tokio::time::timeout(left, self.connect_once()).await {
                Ok(Ok(conn)) => {
                    self.inner.opened.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(host = %cfg.label, "SSH connection opened");
                    return Ok(conn);
                }
                Ok(Err(e)) => e,
                Err(_) => RemoteError::Unreachable {
                    host: cfg.label.clone(),
                    detail: format!(
                        "no SSH session with {}:{} within {:?}",
                        cfg.address, cfg.port, cfg.connect_timeout
                    ),
                },
            };
            if !matches!(err, RemoteError::Unreachable { .. }) {
                return Err(err);
            }
            let delay = delays.next().unwrap_or(Duration::from_secs(30));
            if tokio::time::Instant::now() + delay >= give_up {
                return Err(err);
            }
            tracing::debug!(host = %cfg.label, error = %err, ?delay, "connect failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    async fn connect_once(&self) -> Result<Conn, RemoteError> {
        let cfg = &self.inner.cfg;
        let config = Arc::new(client::Config {
            keepalive_interval: Some(cfg.keepalive),
            keepalive_max: 3,
            inactivity_timeout: None,
            nodelay: true,
            ..Default::default()
        });
        let client = Client {
            host: cfg.label.clone(),
            address: cfg.address.clone(),
            port: cfg.port,
            policy: cfg.host_key_policy.clone(),
        };
        let unreachable = |detail: String| RemoteError::Unreachable {
            host: cfg.label.clone(),
            detail,
        };
        let mut handle = client::connect(config, (cfg.address.as_str(), cfg.port), client)
            .await
            .map_err(|e| match e {
                ClientError::HostKey(e) => e,
                ClientError::Ssh(e) => unreachable(format!("{}:{}: {e}", cfg.address, cfg.port)),
            })?;
        let auth = handle
            .authenticate_publickey(
                cfg.user.clone(),
                PrivateKeyWithHashAlg::new(cfg.key.clone(), None),
            )
            .await
            .map_err(|e| RemoteError::Auth {
                host: cfg.label.clone(),
                detail: e.to_string(),
            })?;
        if !auth.success() {
            return Err(RemoteError::Auth {
                host: cfg.label.clone(),
                detail: format!("public key refused for user {:?}", cfg.user),
            });
        }
        Ok(Arc::new(handle))
    }
}

/// Errors cannot be cloned (they wrap foreign types); waiters get a copy of the text.
fn clone_err(e: &RemoteError, label: &str) -> RemoteError {
    match e {
        RemoteError::Unreachable { host, detail } => RemoteError::Unreachable {
            host: host.clone(),
            detail: detail.clone(),
        },
        RemoteError::HostKeyChanged {
            host,
            expected_fp,
            got_fp,
            fix,
        } => RemoteError::HostKeyChanged {
            host: host.clone(),
            expected_fp: expected_fp.clone(),
            got_fp: got_fp.clone(),
            fix: fix.clone(),
        },
        RemoteError::Auth { host, detail } => RemoteError::Auth {
            host: host.clone(),
            detail: detail.clone(),
        },
        other => RemoteError::Protocol {
            host: label.to_string(),
            detail: other.to_string(),
        },
    }
}
