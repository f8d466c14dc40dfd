//! The built-in demo: two simulated Sparks on this machine (127.0.0.2 head, 127.0.0.3
//! worker) with the local transport and the simulator's shims, and a desired file that
//! points at them. Used by `spark-control demo` and by tests that want the whole product
//! without sshd. A fake Hugging Face Hub on 127.0.0.1 answers repo sizes (`HF_ENDPOINT`
//! points at it), so downloads show progress; the launcher's upstream is two commits
//! ahead, so `notify` has something to say. Never touches anything outside its
//! directory, never a non-loopback host, never the real Hub.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::hosts::Connector;
use crate::sim::{Sim, SimError, SimHost};

/// Ports and knobs of a demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// vLLM port on the simulated head.
    pub vllm_port: u16,
    /// Parakeet (STT) port.
    pub stt_port: u16,
    /// Magpie (TTS) port.
    pub tts_port: u16,
    /// Simulated model startup time.
    pub startup_delay_ms: u64,
    /// The model active at start.
    pub active_model: String,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            vllm_port: 8888,
            stt_port: 8000,
            tts_port: 9000,
            startup_delay_ms: 4000,
            active_model: "qwen36".into(),
        }
    }
}

/// A prepared demo: the simulation (kills its processes on drop), the desired file and
/// how to reach the simulated hosts.
pub struct Demo {
    /// The simulation.
    pub sim: Sim,
    /// The desired file.
    pub desired: PathBuf,
    /// The data dir.
    pub data_dir: PathBuf,
    /// Transports for the simulated hosts.
    pub connector: Connector,
    /// The fake Hub (stops when dropped).
    pub hub: crate::sim::hub::FakeHub,
}

/// Size of every repo in the demo (the `hf` shim and the fake Hub agree), and the
/// simulated download speed: a download takes about eight seconds.
const DEMO_REPO_BYTES: u64 = 24 * 1024 * 1024;
const DEMO_HF_SPEED: u64 = 3 * 1024 * 1024;

fn hosts(o: &DemoOptions) -> Vec<SimHost> {
    crate::sim::hosts::two_sparks(o.stt_port, o.tts_port)
}

/// The demo's desired file text.
pub fn desired_text(launcher: &Path, o: &DemoOptions) -> String {
    format!(
        "# yaml-language-server: $schema=./desired-state.schema.json\n\
         # spark-control demo: two simulated Sparks on this machine. Edit me, or use the UI.\n\
         version: 1\n\
         hosts:\n\
         \x20 spark1: {{ address: 127.0.0.2, interconnect: 127.0.1.2, user: demo }}   # simulated head\n\
         \x20 spark2: {{ address: 127.0.0.3, interconnect: 127.0.1.3, user: demo }}   # simulated worker\n\
         cluster:\n\
         \x20 head: spark1\n\
         \x20 workers: [spark2]\n\
         \x20 port: {vllm}\n\
         \x20 launcher: {launcher}\n\
         \x20 settle_timeout_secs: 5\n\
         \x20 start_timeout_secs: 120\n\
         active_model: {active}\n\
         overrides:\n\
         \x20 qwen36: {{ max_context: 32768, gpu_memory: 0.80 }}\n\
         services:\n\
         \x20 parakeet: {{ kind: stt, host: spark2, port: {stt}, running: true, model: nvidia/parakeet-tdt-0.6b-v3 }}\n\
         \x20 magpie: {{ kind: tts, host: spark2, port: {tts}, running: true }}\n\
         updates: {{ launcher: notify }}\n\
         ssh: {{ poll_interval_secs: 2 }}\n",
        vllm = o.vllm_port,
        stt = o.stt_port,
        tts = o.tts_port,
        active = o.active_model,
        launcher = launcher.display(),
    )
}

/// Installs the simulation under `dir` (shims, host state, launcher checkout) and writes
/// `dir/desired.yaml` unless `keep` and it exists. `bin` is the binary that runs the fake
/// servers (`spark-control` itself).
pub fn prepare(dir: &Path, bin: &Path, o: &DemoOptions, keep: bool) -> Result<Demo, SimError> {
    std::fs::create_dir_all(dir).map_err(|e| SimError::io("cannot create", dir, e))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| SimError::io("cannot resolve", dir, e))?;
    let base = dir.join("sim");
    let hosts = hosts(o);
    // Processes of an earlier demo in this directory would hold the ports.
    crate::sim::hosts::kill_all(&base);
    let sim = Sim::install(&base, hosts.clone())?;
    for h in &hosts {
        let knobs = h.root(&base).join("knobs");
        std::fs::create_dir_all(&knobs).map_err(|e| SimError::io("cannot create", &knobs, e))?;
        for (knob, value) in [
            ("startup-delay-ms", o.startup_delay_ms),
            ("hf-size", DEMO_REPO_BYTES),
            ("hf-speed", DEMO_HF_SPEED),
        ] {
            let f = knobs.join(knob);
            std::fs::write(&f, value.to_string())
                .map_err(|e| SimError::io("cannot write", &f, e))?;
        }
    }
    let hub = crate::sim::hub::FakeHub::start()?;
    hub.update(|s| s.default_bytes = DEMO_REPO_BYTES);
    if let Some(head) = hosts.iter().find(|h| h.head) {
        let behind = std::process::Command::new("git")
            .arg("-C")
            .arg(head.launcher_dir(&base))
            .args(["rev-list", "--count", "HEAD..origin/main"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        if behind.as_deref() == Some("0") {
            crate::sim::hosts::add_upstream_commits(
                &base,
                head,
                &[
                    "Bump vLLM to the latest nightly",
                    "launch-cluster.sh: wait for the NCCL rendezvous",
                ],
            )?;
        }
    }
    let desired = dir.join("desired.yaml");
    if !(keep && desired.exists()) {
        let launcher = hosts[0].launcher_dir(&base);
        std::fs::write(&desired, desired_text(&launcher, o))
            .map_err(|e| SimError::io("cannot write", &desired, e))?;
    }
    let schema = desired.with_file_name(crate::model::schema::BESIDE_NAME);
    std::fs::write(&schema, crate::model::schema::schema_text())
        .map_err(|e| SimError::io("cannot write", &schema, e))?;
    let mut env = BTreeMap::new();
    for h in &hosts {
        // Each simulated host has its own home (launch record, `~` paths), never the
        // real user's.
        let home = h.root(&base).join("home");
        std::fs::create_dir_all(&home).map_err(|e| SimError::io("cannot create", &home, e))?;
        let mut e = sim.env(h, bin);
        e.retain(|(k, _)| k != "HOME");
        e.push(("HOME".into(), home.display().to_string()));
        env.insert(h.name.clone(), e);
    }
    let data_dir = dir.join("data");
    std::fs::create_dir_all(&data_dir).map_err(|e| SimError::io("cannot create", &data_dir, e))?;
    Ok(Demo {
        sim,
        desired,
        data_dir,
        connector: Connector::Sim { env },
        hub,
    })
}
