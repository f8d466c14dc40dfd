//! The observer: polls every host concurrently into an `Observed` snapshot.
//!
//! Per host one SSH command (a script of marked sections: containers, launch record, HF
//! cache, GPUs, and on the head the launcher checkout), plus a round-trip probe; over HTTP,
//! vLLM's `/v1/models` on the head and each service's health path. Every call has a
//! timeout; a host that cannot be reached yields unknown facts with the reason, never
//! guesses. Never changes a host.

pub mod parse;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;

use crate::hosts::Hosts;
use crate::model::desired::Desired;
use crate::model::observed::{Fact, HostObserved, LaunchRecord, Observed, VllmObserved};
use crate::remote::{Cmd, ExecOpts, Script, Transport};

/// Where spark-control keeps its launch record on the head (fixed, not user text).
pub const LAUNCH_RECORD: &str = "$HOME/.spark-control/launch.json";

/// The one `docker ps` whose output `parse::docker_ps` reads (a macro so the marked poll
/// section and the executor's check are the same text).
macro_rules! docker_ps {
    () => {
        "docker ps -a --format '{{.Names}}\t{{.State}}\t{{.Image}}'"
    };
}
/// The one `nvidia-smi` query whose output `parse::nvidia_smi` reads.
macro_rules! nvidia_smi {
    () => {
        "nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw --format=csv,noheader,nounits"
    };
}
/// `docker ps` as the executor runs it to verify a step.
pub const DOCKER_PS: &str = docker_ps!();
/// `nvidia-smi` as the executor runs it while waiting for memory to settle.
pub const NVIDIA_SMI: &str = nvidia_smi!();
/// Host memory, read while waiting for memory to settle on unified-memory GPUs (GB10).
pub const FREE: &str = "free -m";

const CONTAINERS: &str = concat!(
    "echo @@containers; ",
    docker_ps!(),
    " 2>&1; echo \"@@rc $?\""
);
const RECORD: &str = "echo @@launch; cat \"$HOME/.spark-control/launch.json\" 2>/dev/null || echo null; echo \"@@rc 0\"";
const HF: &str = "echo @@hf; for d in \"${HF_HOME:-$HOME/.cache/huggingface}\"/hub/models--*; do [ -d \"$d/snapshots\" ] || continue; [ -n \"$(ls -A \"$d/snapshots\" 2>/dev/null)\" ] || continue; s=partial; if [ -z \"$(find \"$d\" -name '*.incomplete' 2>/dev/null | head -n 1)\" ] && [ -n \"$(find \"$d/snapshots\" \\( -name '*.safetensors' -o -name '*.bin' -o -name '*.gguf' -o -name '*.pt' -o -name '*.pth' \\) 2>/dev/null | head -n 1)\" ]; then s=complete; for i in $(find \"$d/snapshots\" -name '*.index.json' 2>/dev/null); do for f in $(grep -oE '\"[^\"]*\\.(safetensors|bin)\"' \"$i\" | tr -d '\"' | sort -u); do [ -e \"${i%/*}/$f\" ] || s=partial; done; done; fi; echo \"$s ${d##*/}\"; done; echo \"@@rc 0\"";
const GPUS: &str = concat!("echo @@gpus; ", nvidia_smi!(), " 2>&1; echo \"@@rc $?\"");
/// HEAD, commits behind upstream, and — unless HEAD is `$1`, the commit whose generation
/// the observer already knows — the launcher's usage text (`--help` prints it and exits 1,
/// on both generations, before doing anything else).
const LAUNCHER_SCRIPT: &str = "h=$(git rev-parse HEAD) || exit 1; echo \"$h\"; n=$(git rev-list --count 'HEAD..@{u}' 2>/dev/null) && { echo \"behind $n\"; git log -n 20 --format='subject %s' 'HEAD..@{u}'; }; b=$(git symbolic-ref -q --short HEAD) && echo \"branch $b\"; p=$(git config --get spark-control.pinned-from) && echo \"pinned-from $p\"; if [ \"$h\" != \"$1\" ]; then echo usage-begin; ./launch-cluster.sh --help </dev/null 2>&1 | head -n 80 | sed 's/^/usage /'; fi; exit 0";

/// The poll script of one host. `known_commit`: the launcher commit whose generation is
/// cached (its usage text is not asked for again).
pub fn poll_script(d: &Desired, host: &str, known_commit: Option<&str>) -> Script {
    let mut parts = vec![
        Script::Raw(CONTAINERS),
        Script::Raw(RECORD),
        Script::Raw(HF),
        Script::Raw(GPUS),
    ];
    if let Some(c) = head_cluster(d, host).as_ref() {
        parts.push(Script::Raw("echo @@launcher"));
        parts.push(Script::One(
            Cmd::new("sh")
                .arg("-c")
                .arg(LAUNCHER_SCRIPT)
                .arg("sh")
                .arg(known_commit.unwrap_or("-"))
                .cwd(c.launcher.clone()),
        ));
        parts.push(Script::Raw("echo \"@@rc $?\""));
        parts.push(Script::Raw("echo @@launcherproc"));
        parts.push(Script::Raw(crate::launcher::STATE));
        parts.push(Script::Raw("echo \"@@rc 0\""));
        parts.push(Script::Raw("echo @@vllmproc"));
        // `docker top` lists the container's processes (real docker and the simulator).
        parts.push(Script::Pipe(vec![
            Cmd::new("docker").arg("top").arg(c.container.clone()),
            Cmd::new("grep").arg("-c").arg("vllm serve"),
        ]));
        parts.push(Script::Raw("echo \"@@rc 0\""));
    }
    Script::Seq(parts)
}

/// The launcher settings of `host` when it is the head of a deployment (the first such
/// deployment's: every deployment on one head uses that host's one checkout and
/// container), else `None`.
pub fn head_cluster(d: &Desired, host: &str) -> Option<crate::model::desired::Cluster> {
    d.deployments()
        .into_iter()
        .find(|x| x.cluster.head == host)
        .map(|x| x.cluster)
}

/// Per head host, the launcher generation of the checkout commit last read; per
/// deployment, the consecutive failed `/health` checks.
#[derive(Debug, Default)]
struct Memory {
    generations:
        std::collections::HashMap<String, (String, Result<crate::launcher::Generation, String>)>,
    health_failures: std::collections::HashMap<String, u32>,
}

/// Polls hosts and services.
#[derive(Clone)]
pub struct Observer {
    http: reqwest::Client,
    memory: std::sync::Arc<std::sync::Mutex<Memory>>,
}

/// The HTTP client for probing services on the Sparks (vLLM, speech, metrics): short
/// timeouts, and never an environment proxy (the Sparks are on the LAN).
pub fn probe_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(4))
        .no_proxy()
        .build()
        .unwrap_or_default()
}

impl Default for Observer {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer {
    /// An observer with its own HTTP client ([`probe_client`]).
    pub fn new() -> Self {
        Observer {
            http: probe_client(),
            memory: Default::default(),
        }
    }

    /// One full observation of every host and service.
    pub async fn observe(&self, d: &Desired, hosts: &Hosts, generation: u64) -> Observed {
        let timeout = Duration::from_secs(d.ssh.command_timeout_secs.clamp(5, 30));
        let host_polls = d.hosts.keys().map(|name| {
            let t = hosts.get(name);
            let name = name.clone();
            async move {
                let obs = match t {
                    Some(t) => self.observe_host(d, &name, &t, timeout).await,
                    None => unreachable_host(format!("{name}: no transport (configuration error)")),
                };
                (name, obs)
            }
        });
        let deployments = d.deployments();
        let vllm_probes = deployments
            .iter()
            .map(|x| async move { (x.name.clone(), self.probe_at(d, &x.name, &x.cluster).await) });
        let (host_results, vllms, services) = tokio::join!(
            futures::future::join_all(host_polls),
            futures::future::join_all(vllm_probes),
            self.probe_services(d)
        );
        let vllm = match vllms.first() {
            Some((_, f)) => f.clone(),
            None => Fact::known(VllmObserved::default(), Utc::now()),
        };
        Observed {
            generation,
            hosts: host_results.into_iter().collect(),
            vllm,
            deployments: vllms.into_iter().collect(),
            services,
        }
    }

    /// The first deployment's vLLM (see [`Observer::probe_at`]).
    pub async fn probe_vllm(&self, d: &Desired) -> Fact<VllmObserved> {
        match d.first_deployment() {
            Some(x) => self.probe_at(d, &x.name, &x.cluster).await,
            None => Fact::known(VllmObserved::default(), Utc::now()),
        }
    }

    /// `GET http://<head>:<port>/v1/models` of deployment `name` (hosts and port in `c`):
    /// refused → known empty; timeout → unknown.
    pub async fn probe_at(
        &self,
        d: &Desired,
        name: &str,
        c: &crate::model::desired::Cluster,
    ) -> Fact<VllmObserved> {
        let Some(h) = d.hosts.get(&c.head) else {
            return Fact::unknown("the head is not a configured host");
        };
        let url = format!("http://{}:{}/v1/models", h.address, c.port);
        let health = format!("http://{}:{}/health", h.address, c.port);
        // Both at once: a loading vLLM answers neither until their timeout.
        let (health, models) =
            tokio::join!(self.http.get(&health).send(), self.http.get(&url).send());
        let healthy = matches!(health, Ok(r) if r.status().is_success());
        let health_failures = match self.memory.lock() {
            Ok(mut m) => {
                let n = m.health_failures.entry(name.to_string()).or_default();
                *n = if healthy { 0 } else { n.saturating_add(1) };
                *n
            }
            Err(_) => 0,
        };
        let known = |models: Vec<String>| {
            Fact::known(
                VllmObserved {
                    models,
                    health_failures,
                },
                Utc::now(),
            )
        };
        match models {
            Ok(r) if r.status().is_success() => match r.text().await {
                Ok(body) => match parse::v1_models(&body) {
                    Ok(models) => known(models),
                    Err(e) => Fact::unknown(e),
                },
                Err(e) => Fact::unknown(format!("{url}: {e}")),
            },
            // Up but not serving a model (loading, or an error page): nothing listed.
            Ok(_) => known(Vec::new()),
            Err(e) if e.is_connect() && !e.is_timeout() => known(Vec::new()),
            Err(e) => Fact::unknown(format!("{url}: {e}")),
        }
    }

    /// Each service's health path on its placed host: 2xx → healthy.
    pub async fn probe_services(&self, d: &Desired) -> BTreeMap<String, Fact<bool>> {
        let probes = d.services.iter().map(|(name, s)| {
            let addr = d.hosts.get(&s.host).map(|h| h.address.clone());
            let url = addr.map(|a| format!("http://{a}:{}{}", s.port, s.health_path));
            let http = self.http.clone();
            let name = name.clone();
            async move {
                let f = match url {
                    None => Fact::unknown(format!("host {} is not configured", name)),
                    Some(url) => match http.get(&url).send().await {
                        Ok(r) => Fact::known(r.status().is_success(), Utc::now()),
                        Err(_) => Fact::known(false, Utc::now()),
                    },
                };
                (name, f)
            }
        });
        futures::future::join_all(probes)
            .await
            .into_iter()
            .collect()
    }
}

fn unreachable_host(why: String) -> HostObserved {
    HostObserved {
        reachable: Fact::known(false, Utc::now()),
        rtt_ms: None,
        containers: Fact::unknown(why.clone()),
        launch: Fact::unknown(why.clone()),
        hf_cache: Fact::unknown(why.clone()),
        launcher: Fact::unknown(why.clone()),
        gpus: Fact::unknown(why.clone()),
        launcher_process: Fact::unknown(why.clone()),
        vllm_process: Fact::unknown(why),
    }
}

impl Observer {
    /// Polls one host.
    async fn observe_host(
        &self,
        d: &Desired,
        name: &str,
        t: &Transport,
        timeout: Duration,
    ) -> HostObserved {
        let cached: Option<String> = self
            .memory
            .lock()
            .ok()
            .and_then(|m| m.generations.get(name).map(|(commit, _)| commit.clone()));
        let script = poll_script(d, name, cached.as_deref());
        let out = match t.exec(&script, ExecOpts::new(timeout)).await {
            Ok(o) => o,
            Err(e) => return unreachable_host(format!("host unreachable: {e}")),
        };
        let now = Utc::now();
        let rtt_ms = t.round_trip().await.ok().map(|d| d.as_secs_f64() * 1000.0);
        let s = parse::sections(&out.stdout);
        let get = |k: &str| s.get(k).cloned().unwrap_or_default();
        fn fact<T>(r: Result<T, String>, now: chrono::DateTime<Utc>) -> Fact<T> {
            match r {
                Ok(v) => Fact::known(v, now),
                Err(e) => Fact::unknown(e),
            }
        }
        let containers = fact(
            get("containers")
                .ok("docker ps")
                .map(|l| l.to_vec())
                .and_then(|l| parse::docker_ps(&l)),
            now,
        );
        let launch = fact(get("launch").ok("launch record").and_then(|l| {
        let text = l.join("\n");
        if text.trim() == "null" || text.trim().is_empty() {
            Ok(None)
        } else {
            serde_json::from_str::<LaunchRecord>(&text)
                .map(Some)
                .map_err(|e| format!("the launch record ~/.spark-control/launch.json is unreadable ({e}); delete it if nothing runs"))
        }
    }), now);
        let hf_cache = fact(get("hf").ok("HF cache listing").map(parse::hf_cache), now);
        let gpus = fact(
            get("gpus")
                .ok("nvidia-smi")
                .map(|l| l.to_vec())
                .and_then(|l| parse::nvidia_smi(&l)),
            now,
        );
        let is_head = head_cluster(d, name).is_some();
        let launcher = if is_head {
            let mut l = get("launcher")
                .ok("launcher checkout")
                .map(|l| l.to_vec())
                .and_then(|l| parse::launcher(&l));
            if let (Ok(l), Ok(mut m)) = (&mut l, self.memory.lock()) {
                // Fresh usage text: detect, and remember for this host's commit only.
                if let Some(u) = &l.usage {
                    let g = crate::launcher::detect(u);
                    m.generations.insert(name.to_string(), (l.head.clone(), g));
                }
                match m.generations.get(name).filter(|(c, _)| *c == l.head) {
                    Some((_, Ok(g))) => l.generation = Some(*g),
                    Some((_, Err(e))) => l.generation_error = Some(e.clone()),
                    None => l.generation_error = Some("not detected yet".into()),
                }
                l.usage = None;
            }
            fact(l, now)
        } else {
            Fact::unknown("not the head")
        };
        let (launcher_process, vllm_process) = if is_head {
            let lp = get("launcherproc").ok("launcher process").and_then(|l| {
                crate::launcher::parse_state(l.first().map(String::as_str).unwrap_or(""))
            });
            let vp = get("vllmproc").ok("vLLM process").and_then(|l| {
                l.first()
                    .and_then(|n| n.trim().parse::<u32>().ok())
                    .map(|n| n > 0)
                    .ok_or_else(|| "unexpected `docker top` count".to_string())
            });
            (fact(lp, now), fact(vp, now))
        } else {
            (Fact::unknown("not the head"), Fact::unknown("not the head"))
        };
        HostObserved {
            reachable: Fact::known(true, now),
            rtt_ms,
            containers,
            launch,
            hf_cache,
            launcher,
            gpus,
            launcher_process,
            vllm_process,
        }
    }
}

#[cfg(test)]
mod hf_listing_tests {
    use super::HF;

    /// Runs the observer's HF listing in a real shell over a real cache folder.
    fn listing(home: &std::path::Path) -> std::collections::BTreeSet<String> {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(HF)
            .env("HF_HOME", home)
            .output()
            .expect("sh");
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<String> = text.lines().map(String::from).collect();
        super::parse::hf_cache(&lines)
    }

    fn snapshot(home: &std::path::Path, repo: &str, files: &[(&str, &str)]) {
        let d = home
            .join("hub")
            .join(format!("models--{}", repo.replace('/', "--")))
            .join("snapshots/0123abc");
        std::fs::create_dir_all(&d).expect("snapshot dir");
        for (name, text) in files {
            std::fs::write(d.join(name), text).expect("file");
        }
    }

    /// A download stopped between files leaves no `.incomplete` marker (real `hf
    /// download` creates one per file only while that file is fetched): a snapshot is
    /// complete only with weights, and with every shard its index names.
    #[test]
    fn a_snapshot_is_complete_only_with_its_weights_and_every_indexed_shard() {
        let home = tempfile::tempdir().expect("tempdir");
        let h = home.path();
        let index = r#"{"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#;
        snapshot(h, "org/empty", &[]);
        snapshot(h, "org/config-only", &[("config.json", "{}")]);
        snapshot(
            h,
            "org/one-of-two",
            &[
                ("config.json", "{}"),
                ("model.safetensors.index.json", index),
                ("model-00001-of-00002.safetensors", "x"),
            ],
        );
        snapshot(
            h,
            "org/two-of-two",
            &[
                ("config.json", "{}"),
                ("model.safetensors.index.json", index),
                ("model-00001-of-00002.safetensors", "x"),
                ("model-00002-of-00002.safetensors", "x"),
            ],
        );
        snapshot(
            h,
            "org/partial",
            &[("config.json", "{}"), ("model.safetensors.incomplete", "x")],
        );
        snapshot(
            h,
            "org/single",
            &[("config.json", "{}"), ("model.safetensors", "x")],
        );
        let got: Vec<String> = listing(h).into_iter().collect();
        assert_eq!(got, ["org/single", "org/two-of-two"]);
    }
}
