//! Simulated hosts: installing the shims and per-host state under `<base>`, the
//! environment each simulated host runs with, and [`Sim`], which kills every process
//! the simulation started.
//!
//! File contract (`<base>` is any directory the caller owns):
//! - `<base>/bin/{docker,hf,huggingface-cli,nvidia-smi}` — the shims (mode 755).
//! - `<base>/<ip>/` — the host's state (`SPARK_SIM_ROOT`): `containers/<name>/{cmd,pid,
//!   log,image,stopped_at,argv,workers}`, `knobs/*`, `run/*.pid` (shim processes),
//!   `hf/` (`HF_HOME`), `disconnects.log`, `built-rev`.
//! - `<base>/<ip>/spark-vllm-docker/` on head hosts — a git repository holding the fake
//!   `launch-cluster.sh` and `build-and-copy.sh`, tracking `origin/main` of
//! - `<base>/<ip>/upstream.git` — a bare repository playing the public upstream
//!   ([`add_upstream_commits`] puts it ahead).
//! - `<base>/<ip>/containers/<service>/` — pre-created speech service containers.
//!
//! Must not: write outside `<base>`, accept a non-loopback address, or kill a process
//! whose environment does not point into `<base>`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::speech::SpeechKind;
use super::SimError;

const DOCKER: &str = include_str!("shims/docker");
const HF: &str = include_str!("shims/hf");
const NVIDIA_SMI: &str = include_str!("shims/nvidia-smi");
const SIM_MEMORY: &str = include_str!("shims/sim-memory");
const FREE: &str = include_str!("shims/free");
const LAUNCH_CLUSTER: &str = include_str!("shims/launch-cluster.sh");
const BUILD_AND_COPY: &str = include_str!("shims/build-and-copy.sh");

/// Name of the launcher checkout directory inside a head host's state dir.
pub const LAUNCHER_DIR: &str = "spark-vllm-docker";

/// A side service (speech) whose container definition is pre-created on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimService {
    /// Container name (e.g. `parakeet`).
    pub name: String,
    /// STT or TTS.
    pub kind: SpeechKind,
    /// Port it listens on (on the host's IP).
    pub port: u16,
}

/// One simulated DGX Spark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimHost {
    /// Host name as the desired state calls it (e.g. `spark1`).
    pub name: String,
    /// Its loopback address (e.g. `127.0.0.2`).
    pub ip: String,
    /// Whether it holds a launcher checkout (the cluster head).
    pub head: bool,
    /// Side-service containers defined on it.
    pub services: Vec<SimService>,
    /// Its interconnect (ConnectX-7) address: the launcher's "local IP", what `-n` must
    /// hold. A loopback address other than `ip` (e.g. `127.0.1.2`), so a controller that
    /// gives the launcher the SSH address fails the way it does on real Sparks.
    pub cx7_ip: String,
    /// Which `launch-cluster.sh` generation its launcher checkout holds (head hosts).
    pub launcher: crate::launcher::Generation,
}

impl SimHost {
    /// This host's state dir (`SPARK_SIM_ROOT`).
    pub fn root(&self, base: &Path) -> PathBuf {
        base.join(&self.ip)
    }
    /// This host's launcher checkout (meaningful on head hosts).
    pub fn launcher_dir(&self, base: &Path) -> PathBuf {
        self.root(base).join(LAUNCHER_DIR)
    }
}

/// The usual pair: `spark1` on 127.0.0.2 (head) and `spark2` on 127.0.0.3 (worker), both
/// holding Parakeet (STT) and Magpie (TTS) containers on the given ports, so a service can
/// be placed, and moved, on either. The demo and the test cluster both use it.
pub fn two_sparks(stt_port: u16, tts_port: u16) -> Vec<SimHost> {
    let services = vec![
        SimService {
            name: "parakeet".into(),
            kind: SpeechKind::Stt,
            port: stt_port,
        },
        SimService {
            name: "magpie".into(),
            kind: SpeechKind::Tts,
            port: tts_port,
        },
    ];
    vec![
        SimHost {
            name: "spark1".into(),
            ip: "127.0.0.2".into(),
            head: true,
            services: services.clone(),
            cx7_ip: "127.0.1.2".into(),
            launcher: crate::launcher::Generation::B,
        },
        SimHost {
            name: "spark2".into(),
            ip: "127.0.0.3".into(),
            head: false,
            services,
            cx7_ip: "127.0.1.3".into(),
            launcher: crate::launcher::Generation::B,
        },
    ]
}

/// The environment a simulated host's commands run with: `SPARK_SIM_ROOT`,
/// `SPARK_SIM_IP`, `SPARK_SIM_BIN`, `HF_HOME` and `PATH` (shims first).
pub fn host_env(base: &Path, host: &SimHost, bin: &Path) -> Vec<(String, String)> {
    let root = host.root(base);
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    vec![
        ("SPARK_SIM_ROOT".into(), root.display().to_string()),
        ("SPARK_SIM_IP".into(), host.ip.clone()),
        ("SPARK_SIM_CX7_IP".into(), host.cx7_ip.clone()),
        ("SPARK_SIM_BIN".into(), bin.display().to_string()),
        ("HF_HOME".into(), root.join("hf").display().to_string()),
        (
            "PATH".into(),
            format!("{}:{path}", base.join("bin").display()),
        ),
    ]
}

fn write_file(path: &Path, text: &str, executable: bool) -> Result<(), SimError> {
    std::fs::write(path, text).map_err(|e| SimError::io("cannot write", path, e))?;
    if executable {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| SimError::io("cannot chmod", path, e))?;
    }
    Ok(())
}

fn mkdir(path: &Path) -> Result<(), SimError> {
    std::fs::create_dir_all(path).map_err(|e| SimError::io("cannot create", path, e))
}

fn validate(host: &SimHost) -> Result<(), SimError> {
    let bad = |reason: &str| SimError::InvalidHost {
        host: host.name.clone(),
        reason: reason.to_string(),
    };
    let ip: std::net::Ipv4Addr = host
        .ip
        .parse()
        .map_err(|_| bad("ip must be an IPv4 address"))?;
    if !ip.is_loopback() {
        return Err(bad("ip must be a loopback address (127.0.0.0/8)"));
    }
    let cx7: std::net::Ipv4Addr = host
        .cx7_ip
        .parse()
        .map_err(|_| bad("cx7_ip must be an IPv4 address"))?;
    if !cx7.is_loopback() {
        return Err(bad("cx7_ip must be a loopback address (127.0.0.0/8)"));
    }
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if !ok(&host.name) {
        return Err(bad("name must be non-empty [A-Za-z0-9_-]"));
    }
    if let Some(s) = host.services.iter().find(|s| !ok(&s.name)) {
        return Err(bad(&format!(
            "service name {:?} must be [A-Za-z0-9_-]",
            s.name
        )));
    }
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> Result<(), SimError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=spark-sim",
            "-c",
            "user.email=sim@localhost",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .map_err(|e| SimError::Command {
            cmd: format!("git {}", args.join(" ")),
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(SimError::Command {
            cmd: format!("git {} (in {})", args.join(" "), dir.display()),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Installs the shims into `<base>/bin` and each host's state under `<base>/<ip>`.
/// Idempotent: re-running rewrites the shims and keeps state (git history, caches).
pub fn install(base: &Path, hosts: &[SimHost]) -> Result<(), SimError> {
    for h in hosts {
        validate(h)?;
    }
    let bin = base.join("bin");
    mkdir(&bin)?;
    for (name, text) in [
        ("docker", DOCKER),
        ("hf", HF),
        ("huggingface-cli", HF),
        ("nvidia-smi", NVIDIA_SMI),
        ("sim-memory", SIM_MEMORY),
        ("free", FREE),
    ] {
        write_file(&bin.join(name), text, true)?;
    }
    mkdir(&base.join("by-cx7"))?;
    for h in hosts {
        let root = h.root(base);
        for sub in ["containers", "knobs", "run", "hf/hub"] {
            mkdir(&root.join(sub))?;
        }
        // The interconnect address → the host, for the launcher's peers.
        let link = base.join("by-cx7").join(&h.cx7_ip);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(Path::new("..").join(&h.ip), &link)
            .map_err(|e| SimError::io("cannot link", &link, e))?;
        for s in &h.services {
            let d = root.join("containers").join(&s.name);
            mkdir(&d)?;
            let cmd = format!(
                "exec \"$SPARK_SIM_BIN\" sim speech --kind {} --host \"$SPARK_SIM_IP\" --port {}\n",
                s.kind.as_str(),
                s.port
            );
            write_file(&d.join("cmd"), &cmd, false)?;
            let image = match s.kind {
                SpeechKind::Stt => "nvcr.io/nim/nvidia/parakeet-tdt-0.6b-v3:sim",
                SpeechKind::Tts => "nvcr.io/nim/nvidia/magpie-tts-multilingual:sim",
            };
            write_file(&d.join("image"), &format!("{image}\n"), false)?;
        }
        if h.head {
            let dir = h.launcher_dir(base);
            mkdir(&dir)?;
            let gen = match h.launcher {
                crate::launcher::Generation::A => "A",
                crate::launcher::Generation::B => "B",
            };
            let script = LAUNCH_CLUSTER.replace("@GEN@", gen);
            let fresh = !dir.join(".git").exists();
            write_file(&dir.join("launch-cluster.sh"), &script, true)?;
            if !fresh {
                // A re-install with another generation: a commit, as a real update is.
                let _ = git(
                    &dir,
                    &["commit", "-q", "-am", &format!("launcher generation {gen}")],
                );
            }
            write_file(&dir.join("build-and-copy.sh"), BUILD_AND_COPY, true)?;
            if !dir.join(".git").exists() {
                git(&dir, &["init", "-q"])?;
                git(&dir, &["add", "-A"])?;
                git(
                    &dir,
                    &["commit", "-q", "-m", "spark-vllm-docker (simulated)"],
                )?;
            }
            let upstream = root.join(UPSTREAM_DIR);
            if !upstream.exists() {
                mkdir(&upstream)?;
                git(&upstream, &["init", "-q", "--bare"])?;
                let url = upstream.display().to_string();
                if git(&dir, &["remote", "add", "origin", &url]).is_err() {
                    git(&dir, &["remote", "set-url", "origin", &url])?;
                }
                git(&dir, &["push", "-q", "-u", "origin", "HEAD:main"])?;
                git(&dir, &["branch", "-q", "--set-upstream-to=origin/main"])?;
            }
        }
    }
    Ok(())
}

/// Name of the bare "upstream" repository inside a head host's state dir.
pub const UPSTREAM_DIR: &str = "upstream.git";

/// Adds one commit per subject to the head's upstream repository (each appends a line to
/// `CHANGELOG.md`) and returns their hashes, oldest first. The checkout does not change
/// until it fetches and pulls.
pub fn add_upstream_commits(
    base: &Path,
    host: &SimHost,
    subjects: &[&str],
) -> Result<Vec<String>, SimError> {
    let root = host.root(base);
    let upstream = root.join(UPSTREAM_DIR);
    let work = root.join("run").join("upstream-work");
    let _ = std::fs::remove_dir_all(&work);
    mkdir(&work)?;
    git(
        &work,
        &["clone", "-q", &upstream.display().to_string(), "."],
    )?;
    let mut hashes = Vec::new();
    for subject in subjects {
        let f = work.join("CHANGELOG.md");
        let mut text = std::fs::read_to_string(&f).unwrap_or_default();
        text.push_str(&format!("- {subject}\n"));
        write_file(&f, &text, false)?;
        git(&work, &["add", "CHANGELOG.md"])?;
        git(&work, &["commit", "-q", "-m", subject])?;
        let out = Command::new("git")
            .arg("-C")
            .arg(&work)
            .args(["rev-parse", "HEAD"])
            .output()
            .map_err(|e| SimError::Command {
                cmd: "git rev-parse HEAD".into(),
                detail: e.to_string(),
            })?;
        hashes.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    git(&work, &["push", "-q", "origin", "HEAD:main"])?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(hashes)
}

/// Whether `pid` is a live (non-zombie) process whose environment points into `base`.
fn ours(pid: u32, base: &Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
    if matches!(state, Some('Z') | Some('X') | None) {
        return false;
    }
    let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let needle = format!("SPARK_SIM_ROOT={}/", base.display());
    env.split(|b| *b == 0)
        .any(|var| var.starts_with(needle.as_bytes()))
}

fn signal(sig: &str, target: &str) -> bool {
    Command::new("kill")
        .args([sig, "--", target])
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Every pid recorded under `<base>`: container main processes (group leaders) and
/// registered shim processes (`run/*.pid`). Returns `(pid, is_group_leader)`.
fn recorded_pids(base: &Path) -> Vec<(u32, bool)> {
    let mut out = Vec::new();
    let Ok(hosts) = std::fs::read_dir(base) else {
        return out;
    };
    let read_pid = |p: &Path| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|pid| *pid > 1)
    };
    for host in hosts.flatten() {
        let root = host.path();
        if let Ok(cs) = std::fs::read_dir(root.join("containers")) {
            for c in cs.flatten() {
                if let Some(pid) = read_pid(&c.path().join("pid")) {
                    out.push((pid, true));
                }
            }
        }
        if let Ok(rs) = std::fs::read_dir(root.join("run")) {
            for r in rs.flatten() {
                if r.path().extension().is_some_and(|e| e == "pid") {
                    if let Some(pid) = read_pid(&r.path()) {
                        out.push((pid, false));
                    }
                }
            }
        }
    }
    out
}

/// Every live process (other than this one) whose environment points into `base`.
fn processes_in(base: &Path) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid > 1 && *pid != me && ours(*pid, base))
        .collect()
}

/// Kills every live process of the simulation under `base`: the recorded ones
/// (container process groups, registered shim processes) and any other process whose
/// environment points into `base` (e.g. a launcher's cleanup racing the shutdown).
/// SIGTERM first, SIGKILL after 3 s. Returns how many recorded processes were signalled.
pub fn kill_all(base: &Path) -> usize {
    let recorded: Vec<(u32, bool)> = recorded_pids(base)
        .into_iter()
        .filter(|(pid, _)| ours(*pid, base))
        .collect();
    for (pid, leader) in &recorded {
        if *leader {
            signal("-TERM", &format!("-{pid}"));
        }
        signal("-TERM", &pid.to_string());
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    for round in 0.. {
        let left = processes_in(base);
        if left.is_empty() {
            break;
        }
        let sig = if Instant::now() < deadline {
            "-TERM"
        } else {
            "-KILL"
        };
        if round % 10 == 0 || sig == "-KILL" {
            for pid in &left {
                signal(sig, &pid.to_string());
            }
        }
        if Instant::now() > deadline + Duration::from_secs(2) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    recorded.len()
}

/// An installed simulation. Dropping it (or [`Sim::shutdown`]) kills every process the
/// simulation started, so tests and the demo never leak processes.
#[derive(Debug)]
pub struct Sim {
    base: PathBuf,
    hosts: Vec<SimHost>,
}

impl Sim {
    /// Installs the simulation (see [`install`]) and returns its owner.
    pub fn install(base: &Path, hosts: Vec<SimHost>) -> Result<Sim, SimError> {
        install(base, &hosts)?;
        Ok(Sim {
            base: base.to_path_buf(),
            hosts,
        })
    }
    /// The simulation base directory.
    pub fn base(&self) -> &Path {
        &self.base
    }
    /// The simulated hosts.
    pub fn hosts(&self) -> &[SimHost] {
        &self.hosts
    }
    /// The environment of `host` (see [`host_env`]) with `bin` as `SPARK_SIM_BIN`.
    pub fn env(&self, host: &SimHost, bin: &Path) -> Vec<(String, String)> {
        host_env(&self.base, host, bin)
    }
    /// Kills every process the simulation started. Idempotent.
    pub fn shutdown(&self) -> usize {
        kill_all(&self.base)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shutdown();
    }
}
