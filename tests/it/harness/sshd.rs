//! A real OpenSSH `sshd` standing in for one Spark.
//!
//! `SshdHost::start("127.0.0.2", &[("CUSTOM", "value")])` runs
//! `/usr/sbin/sshd -D -e -f <tmp>/sshd_config` listening on that loopback address and a
//! free port, with a fresh ed25519 host key and a fresh ed25519 client key (both made
//! with `ssh-keygen` at run time; no key is ever committed). The client key is the only
//! one in `AuthorizedKeysFile`; use [`SshdHost::client_key`] / [`SshdHost::ssh_config`].
//! Logins are as the current user (root in CI): `PermitRootLogin yes`, `StrictModes no`,
//! `UsePAM no`, `PidFile none`, `AllowUsers <me>`, public key only. `MaxSessions` is left
//! at OpenSSH's default (10), like on a real host.
//!
//! # Per-host environment (what the simulator shims rely on)
//!
//! The `env` pairs become one `SetEnv` line in sshd_config. sshd applies `SetEnv` after
//! its own defaults, so it **overrides `PATH` and `HOME`** too, and every exec channel
//! sees it: the user's login shell (bash for root) gets it and passes it to the
//! `sh`/programs it starts. Checked by the `per_host_env_reaches_the_remote_shell` test.
//! - `HOME` defaults to a per-host directory `<tmp>/home` (see [`SshdHost::home`]),
//!   so `~/spark-vllm-docker` differs per host. Pass `("HOME", ...)` to choose another.
//!   bash run by sshd reads `$HOME/.bashrc`: with the per-host HOME it reads
//!   `<home>/.bashrc` (absent unless a test writes it), **not** `/root/.bashrc` (which
//!   on this machine prepends pyenv dirs to PATH). Put per-host shell setup there if
//!   needed.
//! - `PATH`: pass e.g. `("PATH", "/tmp/shims:/usr/bin:/bin")` to put fake `docker`,
//!   `nvidia-smi`, `hf` first. Without it PATH is sshd's default.
//! - Anything else (`HF_HOME`, `FAKE_VLLM_PORT`, ...) is passed the same way. Values may
//!   contain spaces but not `"` or newlines (sshd_config quoting).
//! - The session's starting directory is the passwd home (`/root`), not `$HOME`:
//!   use `~/`-paths (which expand `$HOME`) or absolute paths, never bare relative ones.
//!
//! [`SshdHost::stop`] kills sshd and every process below it (the per-connection sshd
//! children and the sessions' commands), like a host going away; processes a command
//! detached with `setsid` survive, as on a real host when only sshd dies.
//! [`SshdHost::start_again`] reuses the port and host key; [`SshdHost::regenerate_host_key`]
//! makes a new host key (and restarts sshd if it was running). Drop stops everything.
//! If sshd is missing, `start` panics telling to `apt-get install openssh-server`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spark_control::remote::keys::{self, HostKeyPolicy};
use spark_control::remote::ssh::{SshConfig, SshHost};

const SSHD: &str = "/usr/sbin/sshd";

pub struct SshdHost {
    ip: String,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl SshdHost {
    /// Start sshd on `ip` (a 127.x.y.z address) with per-host environment `env`.
    pub fn start(ip: &str, env: &[(&str, &str)]) -> SshdHost {
        assert!(
            ip.starts_with("127."),
            "tests use loopback addresses only, got {ip}"
        );
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} not found: install the OpenSSH server with `apt-get install openssh-server` (and openssh-client for ssh-keygen)"
        );
        std::fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd (sshd's privsep dir)");
        let dir = tempfile::Builder::new()
            .prefix("sshd-")
            .tempdir()
            .expect("tempdir");
        let home = dir.path().join("home");
        std::fs::create_dir(&home).expect("mkdir home");
        keygen(&dir.path().join("host_ed25519_key"));
        let client = dir.path().join("client_ed25519_key");
        keygen(&client);
        std::fs::copy(
            client.with_extension("pub"),
            dir.path().join("authorized_keys"),
        )
        .expect("write authorized_keys");
        let port = free_port(ip);

        let mut vars: Vec<(String, String)> = vec![("HOME".into(), home.display().to_string())];
        for (k, v) in env {
            assert!(
                !v.contains('"') && !v.contains('\n'),
                "SetEnv value for {k} cannot hold '\"' or newlines: {v:?}"
            );
            vars.retain(|(name, _)| name != k);
            vars.push((k.to_string(), v.to_string()));
        }
        let setenv: Vec<String> = vars.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let d = dir.path().display();
        let config = format!(
            "ListenAddress {ip}\nPort {port}\nHostKey {d}/host_ed25519_key\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\nPidFile none\n\
             PermitRootLogin yes\nAllowUsers {user}\nPubkeyAuthentication yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel VERBOSE\n\
             SetEnv {setenv}\n",
            user = whoami(),
            setenv = setenv.join(" "),
        );
        std::fs::write(dir.path().join("sshd_config"), config).expect("write sshd_config");
        let mut host = SshdHost {
            ip: ip.to_string(),
            port,
            dir,
            child: None,
        };
        host.start_again();
        host
    }

    /// (Re)start sshd on the same address, port and host key. No-op if running.
    pub fn start_again(&mut self) {
        if self.child.is_some() {
            return;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open sshd log");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(self.dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawn sshd");
        self.child = Some(child);
        // Wait (bounded) until it accepts TCP connections.
        let t0 = Instant::now();
        while TcpStream::connect((self.ip.as_str(), self.port)).is_err() {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                panic!("sshd exited with {st} at start; log:\n{}", self.log());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "sshd did not listen on {}:{} within 10 s; log:\n{}",
                self.ip,
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill sshd and every process below it (connections and their commands die too).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let tree = descendants(child.id());
        let _ = child.kill();
        kill9(&tree);
        let _ = child.wait();
    }

    /// Makes sshd record, on the remote side, when each command starts: a `ForceCommand`
    /// wrapper appends `<unix seconds.micros> <command, one line, first 1000 chars>` to
    /// the returned file, then `exec`s the command (same pid, so the controller's
    /// process-group handling is unchanged). bash's `$EPOCHREALTIME` stamps without a
    /// fork. For benchmarks (restarts sshd if it was running; call before connecting).
    #[allow(dead_code)]
    pub fn stamp_commands(&mut self) -> PathBuf {
        let log = self.dir.path().join("commands.log");
        let wrapper = self.dir.path().join("stamp.sh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/bash\nc=${{SSH_ORIGINAL_COMMAND//$'\\n'/ }}\nprintf '%s %s\\n' \"$EPOCHREALTIME\" \"${{c:0:1000}}\" >> {}\nexec /bin/bash -c \"$SSH_ORIGINAL_COMMAND\"\n",
                log.display()
            ),
        )
        .expect("write stamp.sh");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
            .expect("chmod stamp.sh");
        let cfg = self.dir.path().join("sshd_config");
        let mut text = std::fs::read_to_string(&cfg).expect("read sshd_config");
        if !text.contains("ForceCommand") {
            text.push_str(&format!("ForceCommand {}\n", wrapper.display()));
            std::fs::write(&cfg, text).expect("write sshd_config");
        }
        let running = self.child.is_some();
        self.stop();
        if running {
            self.start_again();
        }
        log
    }

    /// Make a new host key; restarts sshd if it was running.
    pub fn regenerate_host_key(&mut self) {
        let running = self.child.is_some();
        self.stop();
        let key = self.dir.path().join("host_ed25519_key");
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(key.with_extension("pub"));
        keygen(&key);
        if running {
            self.start_again();
        }
    }

    /// CPU time (user + system, seconds) of everything under this sshd: live processes'
    /// own time plus what their reaped children used (every finished command). For
    /// benchmarks: what the host's side of the controller's work costs.
    pub fn cpu_seconds(&self) -> f64 {
        let Some(child) = &self.child else {
            return 0.0;
        };
        descendants(child.id())
            .iter()
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .map(|stat| {
                let rest = stat
                    .rsplit_once(')')
                    .map(|(_, r)| r.to_string())
                    .unwrap_or_default();
                let f: Vec<f64> = rest
                    .split_whitespace()
                    .skip(11)
                    .take(4)
                    .filter_map(|v| v.parse().ok())
                    .collect();
                f.iter().sum::<f64>() / 100.0
            })
            .sum()
    }

    pub fn addr(&self) -> &str {
        &self.ip
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The per-host `$HOME` (unless the test passed its own HOME).
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The temp dir holding config, keys, log and home; removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Path of the client's private key (authorized on this host).
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.path().join("client_ed25519_key")
    }

    /// The client's private key, loaded the way the product loads identities.
    pub fn client_key(&self) -> Arc<russh::keys::PrivateKey> {
        Arc::new(keys::load_identity(&self.client_key_path()).expect("load client key"))
    }

    /// The host's public key line, `ssh-ed25519 AAAA...` (for a pinned policy).
    pub fn host_public_key(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("host_ed25519_key.pub"))
            .expect("read host key");
        let mut parts = text.split_whitespace();
        format!(
            "{} {}",
            parts.next().expect("key type"),
            parts.next().expect("key data")
        )
    }

    /// `SHA256:...` fingerprint of the current host key.
    pub fn host_fingerprint(&self) -> String {
        let k = russh::keys::PublicKey::from_openssh(&self.host_public_key()).expect("parse");
        keys::fingerprint(&k)
    }

    /// A client config for this host: the harness client key, accept-new host keys
    /// recorded in `known_hosts`, 5 s connect timeout, 2 s keepalive.
    pub fn ssh_config(&self, label: &str, known_hosts: &Path) -> SshConfig {
        let mut cfg = SshConfig::new(
            label,
            self.ip.clone(),
            whoami(),
            self.client_key(),
            HostKeyPolicy::AcceptNew {
                known_hosts: known_hosts.to_path_buf(),
            },
        );
        cfg.port = self.port;
        cfg.connect_timeout = Duration::from_secs(5);
        cfg.keepalive = Duration::from_secs(2);
        cfg
    }

    /// An `SshHost` for this host (see [`SshdHost::ssh_config`]).
    pub fn client(&self, label: &str, known_hosts: &Path) -> SshHost {
        SshHost::new(self.ssh_config(label, known_hosts))
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("sshd.log")
    }

    /// sshd's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for SshdHost {
    fn drop(&mut self) {
        self.stop();
    }
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "spark-control-test",
            "-f",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("ssh-keygen not found: `apt-get install openssh-client`");
    assert!(out.status.success(), "ssh-keygen failed: {out:?}");
}

pub fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A port that is free on `ip` right now.
pub fn free_port(ip: &str) -> u16 {
    let l = std::net::TcpListener::bind((ip, 0)).expect("bind a free port on loopback");
    l.local_addr().expect("local addr").port()
}

/// All processes below `root` (children, grandchildren, ...), read from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

fn kill9(pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("sh")
        .args(["-c", "kill -9 \"$@\"", "kill"])
        .args(pids.iter().map(|p| p.to_string()))
        .stderr(Stdio::null())
        .status();
}
