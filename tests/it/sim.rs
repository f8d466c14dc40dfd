//! Tests of the simulator (`spark_control::sim`): the fake vLLM over real HTTP, and the
//! shims run with `sh -c` in each simulated host's environment (no SSH needed).
//! Shared helpers for both live here.

mod build_and_copy;
mod fake_vllm;
mod shims;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use spark_control::sim::{Sim, SimHost, SimService, SpeechKind};

/// The binary used as `SPARK_SIM_BIN`.
pub fn sim_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fake-vllm"))
}

/// A port that was free on `ip` a moment ago.
pub fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .expect("bind ephemeral port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Whether something accepts TCP connections on ip:port.
pub fn port_open(ip: &str, port: u16) -> bool {
    let addr = format!("{ip}:{port}").parse().expect("socket addr");
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// Polls `cond` every 50 ms until it holds or `within` passes.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The result of a shell command.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// What a command reads on stdin.
pub enum Input {
    Null,
    /// A pipe that stays open (never written) until the command ends.
    OpenPipe,
}

/// Two simulated Sparks under a temp dir: spark1 (head, 127.0.0.2) and spark2
/// (127.0.0.3, parakeet STT and magpie TTS containers).
pub struct World {
    pub sim: Sim,
    pub stt_port: u16,
    pub tts_port: u16,
    _dir: tempfile::TempDir,
}

impl World {
    pub fn new() -> World {
        World::with_launcher(spark_control::launcher::Generation::B)
    }

    /// A world whose head holds a launcher checkout of generation `g`.
    pub fn with_launcher(g: spark_control::launcher::Generation) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let stt_port = free_port("127.0.0.3");
        let tts_port = free_port("127.0.0.3");
        let hosts = vec![
            SimHost {
                name: "spark1".into(),
                ip: "127.0.0.2".into(),
                head: true,
                services: vec![],
                cx7_ip: "127.0.1.2".into(),
                launcher: g,
            },
            SimHost {
                name: "spark2".into(),
                ip: "127.0.0.3".into(),
                head: false,
                cx7_ip: "127.0.1.3".into(),
                launcher: spark_control::launcher::Generation::B,
                services: vec![
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
                ],
            },
        ];
        let sim = Sim::install(dir.path(), hosts).expect("install sim");
        World {
            sim,
            stt_port,
            tts_port,
            _dir: dir,
        }
    }

    pub fn host(&self, name: &str) -> SimHost {
        self.sim
            .hosts()
            .iter()
            .find(|h| h.name == name)
            .cloned()
            .expect("known host")
    }

    pub fn root(&self, name: &str) -> PathBuf {
        self.host(name).root(self.sim.base())
    }

    pub fn knob(&self, host: &str, name: &str, value: &str) {
        std::fs::write(self.root(host).join("knobs").join(name), value).expect("write knob");
    }

    /// Runs `script` with `sh -c` on `host` (its env, cwd = its launcher dir or root).
    pub fn sh(&self, host: &str, script: &str) -> Out {
        self.sh_with(host, script, Input::Null, Duration::from_secs(30))
            .expect("command finished in time")
    }

    /// Like [`World::sh`]; `None` when the command did not finish within `timeout`
    /// (it is then killed).
    pub fn sh_with(
        &self,
        host: &str,
        script: &str,
        input: Input,
        timeout: Duration,
    ) -> Option<Out> {
        let h = self.host(host);
        let dir = if h.head {
            h.launcher_dir(self.sim.base())
        } else {
            h.root(self.sim.base())
        };
        let mut cmd = Command::new("sh");
        // Own process group, so a timeout kills the whole command tree.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.arg("-c")
            .arg(script)
            .current_dir(dir)
            .envs(self.sim.env(&h, &sim_bin()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.stdin(match input {
            Input::Null => Stdio::null(),
            Input::OpenPipe => Stdio::piped(),
        });
        let mut child = cmd.spawn().expect("spawn sh");
        let stdin = child.stdin.take();
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let res = rx.recv_timeout(timeout);
        drop(stdin);
        match res {
            Ok(out) => {
                let out = out.expect("wait for sh");
                Some(Out {
                    code: out.status.code(),
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                })
            }
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                None
            }
        }
    }

    /// Puts a complete model into `host`'s HF cache with the `hf` shim (fast knobs).
    pub fn download(&self, host: &str, repo: &str) {
        self.knob(host, "hf-size", "65536");
        self.knob(host, "hf-speed", "10000000");
        let out = self.sh(host, &format!("hf download '{repo}'"));
        assert_eq!(out.code, Some(0), "hf download failed: {out:?}");
    }

    /// `docker ps -a` rows on `host` as (name, state, image).
    pub fn ps(&self, host: &str) -> Vec<(String, String, String)> {
        let out = self.sh(
            host,
            "docker ps -a --format '{{.Names}}\\t{{.State}}\\t{{.Image}}'",
        );
        assert_eq!(out.code, Some(0), "docker ps: {out:?}");
        out.stdout
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                assert_eq!(f.len(), 3, "docker ps line {l:?}");
                (f[0].to_string(), f[1].to_string(), f[2].to_string())
            })
            .collect()
    }

    pub fn state_of(&self, host: &str, container: &str) -> Option<String> {
        self.ps(host)
            .into_iter()
            .find(|(n, _, _)| n == container)
            .map(|(_, s, _)| s)
    }
}
