//! Two simulated Sparks behind two real OpenSSH sshd (127.0.0.2 head, 127.0.0.3 worker),
//! and the real control loop driving them over SSH.
//!
//! The simulator's shims (docker, launcher, hf, nvidia-smi) reach each sshd session through
//! `SetEnv`, so every remote command the product runs goes through real SSH. Tests look at
//! the world: what answers on the head's vLLM port, which fake vLLM processes exist, which
//! containers run where — never at which commands were sent.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spark_control::hosts::Connector;
pub use spark_control::launcher::Generation;
use spark_control::reconcile::{self, Handle, LoopConfig};
use spark_control::sim::{Sim, SimHost};
use spark_control::status::Status;
use tokio_util::sync::CancellationToken;

use super::sshd::{free_port, whoami, SshdHost};

/// The controller, in its own runtime so a test can kill it like a crashed process.
pub struct Controller {
    rt: Option<tokio::runtime::Runtime>,
    pub handle: Handle,
    shutdown: CancellationToken,
}

impl Controller {
    /// Kills it abruptly: every task (loop, operation, SSH connections) just stops.
    pub fn kill(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.kill();
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub sim: Sim,
    pub spark1: SshdHost,
    pub spark2: SshdHost,
    /// Hosts past the first two (`Cluster::fleet`): spark3 on 127.0.0.4, and so on.
    pub extra: Vec<SshdHost>,
    pub desired_path: PathBuf,
    pub data_dir: PathBuf,
    pub vllm_port: u16,
    pub stt_port: u16,
    pub tts_port: u16,
    pub launcher: PathBuf,
    pub controller: Option<Controller>,
    /// The fake Hugging Face Hub the controller asks for repo sizes.
    pub hub: spark_control::sim::hub::FakeHub,
    /// Settings of downloads and telemetry (short timings; the hub above).
    pub addons: reconcile::Addons,
    /// The loop's settle window for file changes (None: the product's default).
    pub settle: Option<Duration>,
}

/// One deployment of [`Cluster::fleet_desired`]: (name, head index, worker indices, port,
/// active model or None), indices into [`Cluster::sshds`].
pub type FleetDeployment<'a> = (&'a str, usize, &'a [usize], u16, Option<&'a str>);

pub const HEAD: &str = "127.0.0.2";
pub const WORKER: &str = "127.0.0.3";
/// The simulated hosts' interconnect (ConnectX-7) addresses.
pub const HEAD_CX7: &str = "127.0.1.2";
pub const WORKER_CX7: &str = "127.0.1.3";

impl Cluster {
    /// Sets up hosts and simulation; no controller yet (see `start_controller`).
    pub fn new(startup_delay_ms: u64) -> Cluster {
        Cluster::with_launcher(startup_delay_ms, Generation::B)
    }

    /// Like `new`, with the head's launcher checkout of generation `g`.
    pub fn with_launcher(startup_delay_ms: u64, g: Generation) -> Cluster {
        Cluster::setup(startup_delay_ms, g, |_| {})
    }

    /// Like `with_launcher`, and spark2 holds a launcher checkout too (of the same
    /// generation), so it can be the head of its own deployment.
    pub fn two_heads(startup_delay_ms: u64, g: Generation) -> Cluster {
        Cluster::setup(startup_delay_ms, g, |hosts| {
            for h in hosts {
                h.head = true;
            }
        })
    }

    /// `n` simulated Sparks (2 ≤ n ≤ 8), each with a launcher checkout of generation `g`:
    /// spark1 and spark2 as in `two_heads`, then spark3… on 127.0.0.4… (interconnect
    /// 127.0.1.4…), with no speech services. Write its file with [`Cluster::fleet_desired`].
    pub fn fleet(n: usize, startup_delay_ms: u64, g: Generation) -> Cluster {
        assert!((2..=8).contains(&n), "a fleet has 2 to 8 hosts, not {n}");
        Cluster::setup(startup_delay_ms, g, |hosts| {
            for h in hosts.iter_mut() {
                h.head = true;
            }
            for i in 3..=n {
                hosts.push(SimHost {
                    name: format!("spark{i}"),
                    ip: format!("127.0.0.{}", i + 1),
                    head: true,
                    services: Vec::new(),
                    cx7_ip: format!("127.0.1.{}", i + 1),
                    launcher: g,
                });
            }
        })
    }

    fn setup(startup_delay_ms: u64, g: Generation, tweak: impl Fn(&mut Vec<SimHost>)) -> Cluster {
        super::init_tracing();
        let dir = tempfile::Builder::new()
            .prefix("cluster-")
            .tempdir()
            .expect("tempdir");
        let base = dir.path().join("sim");
        let vllm_port = free_port(HEAD);
        let stt_port = free_port(WORKER);
        let mut tts_port = free_port(WORKER);
        while tts_port == stt_port {
            tts_port = free_port(WORKER);
        }
        let mut hosts = spark_control::sim::hosts::two_sparks(stt_port, tts_port);
        for h in &mut hosts {
            h.launcher = g;
        }
        tweak(&mut hosts);
        let sim = Sim::install(&base, hosts.clone()).expect("install the simulator");
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_spark-control"));
        for h in &hosts {
            let knobs = h.root(&base).join("knobs");
            std::fs::create_dir_all(&knobs).expect("knobs dir");
            std::fs::write(knobs.join("startup-delay-ms"), startup_delay_ms.to_string())
                .expect("knob");
            std::fs::write(knobs.join("smi-settle-ms"), "300").expect("knob");
            std::fs::write(knobs.join("hf-speed"), "4194304").expect("knob");
        }
        let env = |h: &SimHost| sim.env(h, &bin);
        let e1 = env(&hosts[0]);
        let e2 = env(&hosts[1]);
        let as_ref = |e: &Vec<(String, String)>| {
            e.iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>()
        };
        let e1 = as_ref(&e1);
        let e2 = as_ref(&e2);
        let spark1 = SshdHost::start(
            HEAD,
            &e1.iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
        );
        let spark2 = SshdHost::start(
            WORKER,
            &e2.iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
        );
        let extra: Vec<SshdHost> = hosts[2..]
            .iter()
            .map(|h| {
                let e = env(h);
                SshdHost::start(
                    &h.ip,
                    &e.iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).expect("data dir");
        // The controller's own identity, authorized on both hosts.
        let key =
            spark_control::remote::keys::load_or_create_identity(&data_dir).expect("identity");
        let line = spark_control::remote::keys::public_line(&key);
        for s in [&spark1, &spark2].into_iter().chain(&extra) {
            let ak = s.dir().join("authorized_keys");
            let mut text = std::fs::read_to_string(&ak).expect("authorized_keys");
            text.push_str(&line);
            text.push('\n');
            std::fs::write(&ak, text).expect("authorize the controller key");
        }
        let launcher = hosts[0].launcher_dir(&base);
        let desired_path = dir.path().join("desired.yaml");
        let hub = spark_control::sim::hub::FakeHub::start().expect("fake hub");
        let addons = reconcile::Addons {
            hub: spark_control::hub::HubConfig::at(hub.url()),
            downloads: spark_control::downloads::DownloadSettings {
                poll_interval: Duration::from_millis(300),
                stall_after: Duration::from_secs(3),
                retry_base: Duration::from_millis(500),
                retry_max: Duration::from_secs(2),
                max_attempts: 30,
            },
            telemetry: spark_control::telemetry::TelemetrySettings {
                scrape_interval: Duration::from_millis(500),
                ..Default::default()
            },
        };
        let c = Cluster {
            dir,
            sim,
            spark1,
            spark2,
            extra,
            desired_path,
            data_dir,
            vllm_port,
            stt_port,
            tts_port,
            launcher,
            controller: None,
            hub,
            addons,
            settle: None,
        };
        c.write(&c.desired("qwen36", ""));
        c
    }

    /// A desired file for this cluster with `active` and extra top-level YAML appended.
    pub fn desired(&self, active: &str, extra: &str) -> String {
        format!(
            "# test cluster\nversion: 1\nhosts:\n  spark1: {{ address: {HEAD}, interconnect: {HEAD_CX7}, port: {p1}, user: {u} }}\n  spark2: {{ address: {WORKER}, interconnect: {WORKER_CX7}, port: {p2}, user: {u} }}\n\
             cluster:\n  head: spark1\n  workers: [spark2]\n  port: {vp}\n  launcher: {l}\n  settle_timeout_secs: 5\n  start_timeout_secs: 60\n\
             active_model: {active}\n\
             services:\n  parakeet: {{ kind: stt, host: spark2, port: {sp}, running: true }}\n  magpie: {{ kind: tts, host: spark2, port: {tp}, running: true }}\n\
             ssh: {{ poll_interval_secs: 1, connect_timeout_secs: 8 }}\n{extra}",
            p1 = self.spark1.port(),
            p2 = self.spark2.port(),
            u = whoami(),
            vp = self.vllm_port,
            l = self.launcher.display(),
            sp = self.stt_port,
            tp = self.tts_port,
        )
    }

    /// Every host's sshd, spark1 first.
    pub fn sshds(&self) -> Vec<&SshdHost> {
        [&self.spark1, &self.spark2]
            .into_iter()
            .chain(&self.extra)
            .collect()
    }

    /// A desired file naming every host of the fleet and the given deployments:
    /// (name, head index, worker indices, port, active model or None), indices into
    /// [`Cluster::sshds`]. Each deployment launches with its head's launcher checkout.
    pub fn fleet_desired(&self, deployments: &[FleetDeployment]) -> String {
        let sshds = self.sshds();
        let mut text = String::from("# test fleet\nversion: 1\nhosts:\n");
        for (i, s) in sshds.iter().enumerate() {
            let n = i + 1;
            text.push_str(&format!(
                "  spark{n}: {{ address: {ip}, interconnect: 127.0.1.{last}, port: {p}, user: {u} }}\n",
                ip = s.addr(),
                last = n + 1,
                p = s.port(),
                u = whoami(),
            ));
        }
        text.push_str("deployments:\n");
        for (name, head, workers, port, model) in deployments {
            let workers: Vec<String> = workers.iter().map(|w| format!("spark{}", w + 1)).collect();
            text.push_str(&format!(
                "  - name: {name}\n    head: spark{h}\n    workers: [{w}]\n    port: {port}\n    launcher: {l}\n    active_model: {m}\n",
                h = head + 1,
                w = workers.join(", "),
                l = self.launcher_on(sshds[*head].addr()).display(),
                m = model.unwrap_or("null"),
            ));
        }
        text.push_str("ssh: { poll_interval_secs: 1, connect_timeout_secs: 8 }\n");
        text
    }

    /// How many SSH sessions each host's sshd accepted (its own log's "Accepted
    /// publickey" lines), spark1 first.
    pub fn accepted_connections(&self) -> Vec<usize> {
        self.sshds()
            .iter()
            .map(|s| s.log().matches("Accepted publickey").count())
            .collect()
    }

    /// Writes the desired file the way an editor does: a temp file renamed over it.
    pub fn write(&self, text: &str) {
        let tmp = self.desired_path.with_extension("swp");
        std::fs::write(&tmp, text).expect("write desired");
        std::fs::rename(&tmp, &self.desired_path).expect("rename desired");
    }

    pub fn start_controller(&mut self) -> Handle {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("controller runtime");
        let key =
            spark_control::remote::keys::load_or_create_identity(&self.data_dir).expect("identity");
        let shutdown = CancellationToken::new();
        let cfg = LoopConfig {
            desired_path: self.desired_path.clone(),
            data_dir: self.data_dir.clone(),
            connector: Connector::Ssh {
                key: Arc::new(key),
                known_hosts: self.data_dir.join("known_hosts"),
            },
            poll_interval: Some(Duration::from_millis(700)),
            settle: self.settle,
        };
        let _guard = rt.enter();
        let (handle, _task) = reconcile::spawn_with(cfg, self.addons.clone(), shutdown.clone());
        drop(_guard);
        self.controller = Some(Controller {
            rt: Some(rt),
            handle: handle.clone(),
            shutdown,
        });
        handle
    }

    /// The whole product (`app::start_on`: loop, API, `/v1` proxy with request-triggered
    /// swaps and idle unload) in its own runtime, on 127.0.0.1:<free port>; its address.
    pub async fn start_app(&mut self) -> std::net::SocketAddr {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("app runtime");
        let key =
            spark_control::remote::keys::load_or_create_identity(&self.data_dir).expect("identity");
        let shutdown = CancellationToken::new();
        let opts = spark_control::app::ServeOptions {
            desired: self.desired_path.clone(),
            data_dir: self.data_dir.clone(),
            listen: "127.0.0.1:0".parse().expect("addr"),
            admin_token: None,
            inference_keys: Vec::new(),
            connector: Some(Connector::Ssh {
                key: Arc::new(key),
                known_hosts: self.data_dir.join("known_hosts"),
            }),
            poll_interval: Some(Duration::from_millis(700)),
            open_webui_url: None,
            hub: Some(self.addons.hub.clone()),
            allowed_hosts: Vec::new(),
            limits: Default::default(),
            settle: self.settle,
        };
        let stop = shutdown.clone();
        let running = rt
            .spawn(async move { spark_control::app::start(opts, stop).await })
            .await
            .expect("app task")
            .expect("app starts");
        let addr = running.addr;
        self.controller = Some(Controller {
            rt: Some(rt),
            handle: running.handle,
            shutdown,
        });
        addr
    }

    pub fn handle(&self) -> &Handle {
        &self.controller.as_ref().expect("controller started").handle
    }

    pub fn status(&self) -> Arc<Status> {
        self.handle().status.borrow().clone()
    }

    /// Waits until `pred` holds for the status, or panics with `what` and the status.
    pub async fn wait_status(
        &self,
        what: &str,
        secs: u64,
        pred: impl Fn(&Status) -> bool,
    ) -> Arc<Status> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.status();
            if pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out after {secs}s waiting for {what}\nplan:\n{}\noperation: {:?}\nlast error: {:?}\nlog tail:\n{}", s.plan_text, s.operation, s.last_error, self.log_tail(30));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_tail(&self, n: usize) -> String {
        let Some(c) = &self.controller else {
            return String::new();
        };
        let (lines, _) = c.handle.logs.subscribe(None);
        lines
            .iter()
            .rev()
            .take(n)
            .rev()
            .map(|l| format!("[{}] {}", l.host.as_deref().unwrap_or("-"), l.text))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The repos the head's vLLM serves now (the state of the world: the `root` of each
    /// `/v1/models` card, once per repo; vLLM lists one card per served name), None if
    /// nothing answers.
    pub async fn served(&self) -> Option<Vec<String>> {
        served_at(HEAD, self.vllm_port).await
    }

    /// The launcher checkout on a simulated host (`two_heads`: both have one).
    pub fn launcher_on(&self, ip: &str) -> PathBuf {
        self.sim_root(ip)
            .join(spark_control::sim::hosts::LAUNCHER_DIR)
    }

    /// Waits until `ip:port` serves exactly `repo`.
    pub async fn wait_serving_at(&self, ip: &str, port: u16, repo: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if served_at(ip, port)
                .await
                .is_some_and(|m| m == [repo.to_string()])
            {
                return;
            }
            if Instant::now() > deadline {
                let s = self.status();
                panic!("{repo} not serving on {ip}:{port} after {secs}s; serving {:?}\nplan:\n{}\nop: {:?}\nerror: {:?}\nlog:\n{}", served_at(ip, port).await, s.plan_text, s.operation, s.last_error, self.log_tail(40));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The repos the vLLM on `ip:port` serves now (see [`Cluster::served`]).
pub async fn served_at(ip: &str, port: u16) -> Option<Vec<String>> {
    {
        let url = format!("http://{ip}:{port}/v1/models");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .no_proxy()
            .build()
            .ok()?;
        // A loaded test machine can miss one 2 s answer: a transport error is asked again
        // (twice); an answer is taken as it is.
        let mut body = None;
        for _ in 0..3 {
            match client.get(&url).send().await {
                Ok(r) => {
                    body = r.text().await.ok();
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let body = body?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        Some(roots(v["data"].as_array()?))
    }
}

impl Cluster {
    /// Waits until the head serves exactly `repo`.
    pub async fn wait_serving(&self, repo: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if self.served().await.is_some_and(|m| m == [repo.to_string()]) {
                return;
            }
            if Instant::now() > deadline {
                let s = self.status();
                panic!("{repo} not serving after {secs}s; serving {:?}\nplan:\n{}\nop: {:?}\nerror: {:?}\nlog:\n{}", self.served().await, s.plan_text, s.operation, s.last_error, self.log_tail(40));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Fake vLLM processes serving on this cluster's port: (pid, model).
    pub fn vllm_processes(&self) -> Vec<(u32, String)> {
        vllm_processes(self.vllm_port)
    }

    /// The pid of a live container process on a host (simulator's files), if one runs.
    pub fn container_pid(&self, ip: &str, name: &str) -> Option<u32> {
        let pid_file = self
            .dir
            .path()
            .join("sim")
            .join(ip)
            .join("containers")
            .join(name)
            .join("pid");
        let pid = std::fs::read_to_string(pid_file)
            .ok()?
            .trim()
            .parse::<u32>()
            .ok()?;
        alive(pid).then_some(pid)
    }

    /// The desired file's path.
    pub fn desired_path(&self) -> &std::path::Path {
        &self.desired_path
    }

    /// Whether a container runs on a host, from the simulator's own files.
    pub fn container_running(&self, ip: &str, name: &str) -> bool {
        self.container_pid(ip, name).is_some()
    }

    /// The argv (after `vllm`) of the fake vLLM serving on this cluster's port, as the
    /// process received it (`/proc/<pid>/cmdline`); empty when none runs.
    pub fn launch_argv(&self) -> Vec<String> {
        vllm_argv(self.vllm_port).unwrap_or_default()
    }

    /// The environment of the fake vLLM serving on this cluster's port.
    pub fn vllm_environ(&self) -> Vec<String> {
        let Some((pid, _)) = self.vllm_processes().into_iter().next() else {
            return Vec::new();
        };
        std::fs::read(format!("/proc/{pid}/environ"))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    /// Fake vLLM processes (head or headless worker) of any port whose state is in `ip`'s
    /// simulated host (their environment says so).
    pub fn vllm_processes_on(&self, ip: &str) -> Vec<u32> {
        vllm_processes_in(&self.sim_root(ip).display().to_string())
    }

    pub fn sim_root(&self, ip: &str) -> PathBuf {
        self.dir.path().join("sim").join(ip)
    }

    /// Sets a simulator knob on every host (`None` removes it).
    pub fn knob(&self, name: &str, value: Option<&str>) {
        for ip in [HEAD, WORKER] {
            let f = self.sim_root(ip).join("knobs").join(name);
            match value {
                Some(v) => std::fs::write(&f, v).expect("write knob"),
                None => {
                    let _ = std::fs::remove_file(&f);
                }
            }
        }
    }

    /// Makes every repo `bytes` big, for the `hf` shim and the fake Hub alike.
    pub fn set_repo_size(&self, bytes: u64) {
        self.knob("hf-size", Some(&bytes.to_string()));
        self.hub.update(|s| s.default_bytes = bytes);
    }
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s.rsplit(") ").next().unwrap_or("");
            !(state.starts_with('Z') || state.starts_with('X'))
        }
        Err(_) => false,
    }
}

/// Every live fake vLLM process (`vllm serve …`): (pid, argv from `vllm` on).
fn all_vllm() -> Vec<(u32, Vec<String>)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let mut args: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.last().is_some_and(|a| a.is_empty()) {
            args.pop();
        }
        let is_vllm = args
            .first()
            .is_some_and(|a| a == "vllm" || a.ends_with("/vllm"))
            && args.get(1).is_some_and(|a| a == "serve");
        if is_vllm && alive(pid) {
            out.push((pid, args));
        }
    }
    out
}

/// Fake vLLM processes (head or headless worker) whose simulated host's state dir is
/// `root` (their environment says so).
pub fn vllm_processes_in(root: &str) -> Vec<u32> {
    let want = format!("SPARK_SIM_ROOT={root}");
    all_vllm()
        .into_iter()
        .filter(|(pid, _)| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .unwrap_or_default()
                .split(|b| *b == 0)
                .any(|kv| kv == want.as_bytes())
        })
        .map(|(p, _)| p)
        .collect()
}

/// Every live fake vLLM process serving HTTP on `port` (headless workers excluded):
/// (pid, model).
pub fn vllm_processes(port: u16) -> Vec<(u32, String)> {
    all_vllm()
        .into_iter()
        .filter(|(_, a)| {
            !a.iter().any(|w| w == "--headless")
                && a.windows(2)
                    .any(|w| w[0] == "--port" && w[1] == port.to_string())
        })
        .map(|(p, a)| (p, a.get(2).cloned().unwrap_or_default()))
        .collect()
}

/// The argv after `vllm` of the fake vLLM serving on `port`.
pub fn vllm_argv(port: u16) -> Option<Vec<String>> {
    all_vllm()
        .into_iter()
        .find(|(_, a)| {
            !a.iter().any(|w| w == "--headless")
                && a.windows(2)
                    .any(|w| w[0] == "--port" && w[1] == port.to_string())
        })
        .map(|(_, a)| a[1..].to_vec())
}

/// Samples the fake vLLM processes on a port in the background: the most ever alive at
/// once, every (pid, model) seen, and every model name the head's API served
/// (`/v1/models` on `HEAD:port`).
pub struct Sampler {
    stop: Arc<AtomicBool>,
    pub max_alive: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<BTreeSet<(u32, String)>>>,
    pub served: Arc<Mutex<BTreeSet<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The repos `GET /v1/models` on `HEAD:port` lists now (empty when it does not answer).
pub fn served_now(port: u16) -> Vec<String> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 2], port));
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else {
        return Vec::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
    if s.write_all(b"GET /v1/models HTTP/1.0\r\nHost: 127.0.0.2\r\n\r\n")
        .is_err()
    {
        return Vec::new();
    }
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let Some((_, body)) = text.split_once("\r\n\r\n") else {
        return Vec::new();
    };
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["data"].as_array().map(|d| roots(d)))
        .unwrap_or_default()
}

/// The repos behind `/v1/models` cards (`root`), in order, each once.
fn roots(cards: &[serde_json::Value]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in cards.iter().filter_map(|m| m["root"].as_str()) {
        if !out.iter().any(|o| o == r) {
            out.push(r.to_string());
        }
    }
    out
}

impl Sampler {
    pub fn start(port: u16) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let max_alive = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let served = Arc::new(Mutex::new(BTreeSet::new()));
        let (s, m, v, sv) = (
            stop.clone(),
            max_alive.clone(),
            seen.clone(),
            served.clone(),
        );
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            while !s.load(Ordering::SeqCst) && Instant::now() < deadline {
                let now = vllm_processes(port);
                m.fetch_max(now.len(), Ordering::SeqCst);
                let up = !now.is_empty();
                if let Ok(mut g) = v.lock() {
                    g.extend(now);
                }
                if up {
                    let names = served_now(port);
                    if let Ok(mut g) = sv.lock() {
                        g.extend(names);
                    }
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        });
        Sampler {
            stop,
            max_alive,
            seen,
            served,
            thread: Some(thread),
        }
    }

    pub fn finish(mut self) -> (usize, BTreeSet<(u32, String)>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let seen = self.seen.lock().map(|g| g.clone()).unwrap_or_default();
        (self.max_alive.load(Ordering::SeqCst), seen)
    }
}

/// Launches of `repo` among the seen processes (distinct pids).
pub fn launches(seen: &BTreeSet<(u32, String)>, repo: &str) -> usize {
    seen.iter().filter(|(_, m)| m == repo).count()
}
