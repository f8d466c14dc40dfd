//! The desired-state file's types: what *should* run.
//!
//! These types are the contract of `desired.yaml`. Their doc comments become the
//! descriptions in `schema/desired-state.schema.json` (via schemars), so they are
//! written for the person editing the file. This module owns the shape only: no IO,
//! no clock, no validation beyond what serde enforces (see `validate` for meaning).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::limits;

/// The whole desired state of the cluster: `desired.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    /// Format version of this file. Always `1`.
    pub version: u32,
    /// The machines spark-control manages, by name (e.g. `spark1`, `spark2`). Any number.
    /// Use IPv4 addresses: vLLM binds IPv4 only, and mDNS `.local` names resolve to IPv6 first.
    #[serde(default)]
    #[schemars(extend("propertyNames" = { "maxLength": limits::NAME }))]
    pub hosts: BTreeMap<String, Host>,
    /// Where vLLM runs: the head host that runs the launcher, and the workers it drives for
    /// tensor-parallel "cluster" models. Omit until hosts are configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Cluster>,
    /// The model that should be serving, by catalog name (bundled or custom), or `null` for
    /// none. Changing it swaps models: the old one is stopped before the new one launches.
    #[serde(default)]
    #[schemars(length(max = limits::NAME))]
    pub active_model: Option<String>,
    /// Several vLLM deployments at once, each on its own hosts (e.g. a coder model on
    /// `spark1` and a vision model on `spark2`, or one cluster model over both). Use it
    /// instead of `cluster:` + `active_model:` (which stay valid and mean one deployment).
    /// A host may be listed in several deployments, but at most one of them may have an
    /// active model: moving from two solo deployments to one cluster deployment stops the
    /// solo models first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = limits::DEPLOYMENTS))]
    pub deployments: Vec<DeploymentSpec>,
    /// Custom catalog entries, merged with the five bundled models (`qwen3-vl`, `gemma4`,
    /// `qwen36`, `qwen3-235b-fp8`, `qwen2.5-72b`). An entry with a bundled name replaces it.
    #[serde(default)]
    #[schemars(extend("propertyNames" = { "maxLength": limits::NAME }))]
    pub models: BTreeMap<String, ModelSpec>,
    /// Per-model launch settings, for bundled or custom models. Changing the settings of the
    /// active model relaunches it; settings of other models take effect when they are activated.
    #[serde(default)]
    #[schemars(extend("propertyNames" = { "maxLength": limits::NAME }))]
    pub overrides: BTreeMap<String, Overrides>,
    /// Side services (speech-to-text, text-to-speech, ...): which host runs each, on which
    /// port, and whether it should be running. Each is a docker container on its host.
    #[serde(default)]
    #[schemars(extend("propertyNames" = { "maxLength": limits::NAME }))]
    pub services: BTreeMap<String, Service>,
    /// Update policy for the launcher checkout (spark-vllm-docker) on the head.
    #[serde(default)]
    pub updates: Updates,
    /// Settings of the OpenAI-compatible passthrough proxy served at `/v1`.
    #[serde(default)]
    pub proxy: ProxySettings,
    /// SSH settings shared by every host.
    #[serde(default)]
    pub ssh: SshSettings,
    /// Git-ops: every edit made through the UI or API is a commit of this file, with a
    /// history and rollback; with `remote`, the controller also pulls from (and pushes to)
    /// that repository. Without this section, git-ops is on when the file is tracked in a
    /// git work tree; `git: {}` turns it on for an untracked file too (a repository is
    /// created in the file's directory when there is none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSettings>,
    /// The first deployment's cluster settings when the file uses `deployments:` (built
    /// once, on first use, by `primary_cluster`). Not part of the file.
    #[serde(skip)]
    #[schemars(skip)]
    pub(crate) first_cluster: FirstCluster,
}

/// A cache of values derived from the rest of `Desired`: never part of its equality.
#[derive(Debug, Clone, Default)]
pub struct FirstCluster(
    std::sync::OnceLock<Option<Cluster>>,
    std::sync::OnceLock<Vec<(String, Cluster)>>,
);

impl PartialEq for FirstCluster {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Desired {
    /// The cluster settings of the first deployment (`cluster:` in the older shape): the
    /// deployment the observer, planner and executor of this build converge.
    pub fn primary_cluster(&self) -> Option<&Cluster> {
        if self.deployments.is_empty() {
            return self.cluster.as_ref();
        }
        self.first_cluster
            .0
            .get_or_init(|| self.deployments.first().map(DeploymentSpec::to_cluster))
            .as_ref()
    }

    /// The cluster settings of the deployment named `name` (`default` in the older shape).
    pub fn deployment_cluster(&self, name: &str) -> Option<&Cluster> {
        self.first_cluster
            .1
            .get_or_init(|| {
                self.deployments()
                    .into_iter()
                    .map(|x| (x.name, x.cluster))
                    .collect()
            })
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c)
    }

    /// The first deployment's active model (`active_model:` in the older shape).
    pub fn primary_model(&self) -> Option<&String> {
        match self.deployments.first() {
            Some(first) => first.active_model.as_ref(),
            None => self.active_model.as_ref(),
        }
    }
}

/// One machine spark-control reaches over SSH.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// IPv4 address (preferred) or DNS name. Also used for HTTP health checks and the proxy.
    #[schemars(length(max = limits::ADDRESS))]
    pub address: String,
    /// SSH user.
    #[serde(default = "default_user")]
    #[schemars(length(max = limits::USER))]
    pub user: String,
    /// SSH port.
    #[serde(default = "default_ssh_port")]
    pub port: u16,
    /// Pinned SSH host key, either a public key line (`ssh-ed25519 AAAA...`) or a
    /// fingerprint (`SHA256:...`). Without it, the key seen on first contact is remembered
    /// in `<data dir>/known_hosts` and a later change is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::HOST_KEY))]
    pub host_key: Option<String>,
    /// How commands reach the host: `ssh` (default) or `local` (run on this machine, when
    /// spark-control runs on that Spark itself).
    #[serde(default)]
    pub transport: TransportKind,
    /// The host's address on the ConnectX-7 interconnect (e.g. `192.168.100.11`), which the
    /// launcher is given in `-n`: spark-vllm-docker finds its own IP on that interface and
    /// refuses a node list without it ("Local IP ... is not in the list of nodes"). Usually
    /// not the LAN `address` used for SSH and HTTP. Unset: `address` is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::ADDRESS))]
    pub interconnect: Option<String>,
}

impl Host {
    /// The address the launcher is given for this host (`-n`, `build-and-copy.sh -c`).
    pub fn launcher_address(&self) -> &str {
        self.interconnect.as_deref().unwrap_or(&self.address)
    }
}

/// How commands reach a host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// Over SSH (russh), one persistent connection per host.
    #[default]
    Ssh,
    /// On this machine, with `sh -c`.
    Local,
}

/// The vLLM cluster: head, workers, port, launcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Host that runs the launcher and serves the OpenAI API (Spark 1).
    #[schemars(length(max = limits::NAME))]
    pub head: String,
    /// Hosts driven by the head for tensor-parallel "cluster" models (Spark 2, ...).
    #[serde(default)]
    #[schemars(length(max = limits::WORKERS), inner(length(max = limits::NAME)))]
    pub workers: Vec<String>,
    /// Port vLLM serves on, on the head.
    #[serde(default = "default_vllm_port")]
    pub port: u16,
    /// The spark-vllm-docker checkout on the head (`~/` means the SSH user's home).
    #[serde(default = "default_launcher")]
    #[schemars(length(max = limits::LAUNCHER))]
    pub launcher: String,
    /// Name of the vLLM container the launcher runs.
    #[serde(default = "default_container")]
    #[schemars(length(max = limits::CONTAINER))]
    pub container: String,
    /// What a request naming a catalog model this deployment could serve, but does not,
    /// does: `off` (404 `model_not_loaded`, as always) or `swap` (its `active_model` is set
    /// to that model by a recorded edit of this file, and the request waits for it).
    #[serde(default, skip_serializing_if = "OnRequest::is_off")]
    pub on_request: OnRequest,
    /// Unload the model after this long without a request (`90s`, `30m`, `2h`): its
    /// `active_model` is set to `null` by a recorded edit. Unset or `null`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 12))]
    pub idle_unload_after: Option<String>,
    /// Ignored (kept so older files load): spark-control now starts the launcher itself,
    /// detached in its own session with its output captured, on every launcher generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detach: Option<DetachMode>,
    /// Override of the launch command, as argv; leave unset: the launcher driver builds the
    /// right command for the launcher generation it detects on the head. Placeholders:
    /// `{solo}` (`--solo` or nothing; generation B only), `{nodes}` (interconnect addresses
    /// of the model's hosts, comma-separated), `{detach}` (`-d` on generation B, nothing on
    /// A), `{repo}`, `{port}`, `{tp}` (`-tp N` or nothing), `{flags}` (settings + extra
    /// args). An element that is exactly a list placeholder expands to zero or more
    /// arguments. Everything after `exec` is the command: it reaches vLLM's argv as written
    /// (quoted for generation A, which re-parses it with bash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::TEMPLATE_ITEMS), inner(length(max = limits::TEMPLATE_ARG)))]
    pub launch_template: Option<Vec<String>>,
    /// Override of the stop command, as argv, run in the launcher directory; leave unset.
    /// `{nodes}` is every cluster host's interconnect address: a stop without `-n`
    /// autodiscovers and, finding no peers, stops the head only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::TEMPLATE_ITEMS), inner(length(max = limits::TEMPLATE_ARG)))]
    pub stop_template: Option<Vec<String>>,
    /// Seconds a launch may take to produce a running vLLM container before it fails with
    /// the launcher's last lines (the model's loading time is `start_timeout_secs`).
    #[serde(default = "default_launch_timeout")]
    pub launch_timeout_secs: u64,
    /// Seconds to wait for a model to become ready unless the model says otherwise.
    #[serde(default = "default_start_timeout")]
    pub start_timeout_secs: u64,
    /// After a stop, wait until each GPU's used memory is below this many MiB (or
    /// `settle_timeout_secs` passed) before launching the next model. On unified memory
    /// (DGX Spark's GB10, where `nvidia-smi` reports no GPU memory) the wait is instead
    /// until the share of host memory the next model asks vLLM for (`gpu_memory`, vLLM's
    /// default 0.9) is available, as `free -m` reports it.
    #[serde(default = "default_settle_mib")]
    pub settle_below_mib: u64,
    /// Upper bound of the wait for GPU memory to settle after a stop.
    #[serde(default = "default_settle_timeout")]
    pub settle_timeout_secs: u64,
}

/// One entry of `deployments:`: a vLLM launched by the launcher on `head`, serving one
/// model at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSpec {
    /// The deployment's name (e.g. `coder`), shown in plans and `/v1/models`.
    #[schemars(length(max = limits::NAME))]
    pub name: String,
    /// Host that runs the launcher and serves the OpenAI API.
    #[schemars(length(max = limits::NAME))]
    pub head: String,
    /// Hosts driven by the head for tensor-parallel "cluster" models.
    #[serde(default)]
    #[schemars(length(max = limits::WORKERS), inner(length(max = limits::NAME)))]
    pub workers: Vec<String>,
    /// Port vLLM serves on, on the head.
    #[serde(default = "default_vllm_port")]
    pub port: u16,
    /// The model this deployment should serve, by catalog name, or `null` for none. The
    /// key must be present (`null` for none), so a file cut short never reads as "stop".
    #[serde(default)]
    #[schemars(length(max = limits::NAME))]
    pub active_model: Option<String>,
    /// The spark-vllm-docker checkout on the head (`~/` means the SSH user's home).
    #[serde(default = "default_launcher")]
    #[schemars(length(max = limits::LAUNCHER))]
    pub launcher: String,
    /// Name of the vLLM container the launcher runs.
    #[serde(default = "default_container")]
    #[schemars(length(max = limits::CONTAINER))]
    pub container: String,
    /// What a request naming a catalog model this deployment could serve, but does not,
    /// does: `off` (404 `model_not_loaded`, as always) or `swap` (its `active_model` is set
    /// to that model by a recorded edit of this file, and the request waits for it).
    #[serde(default, skip_serializing_if = "OnRequest::is_off")]
    pub on_request: OnRequest,
    /// Unload the model after this long without a request (`90s`, `30m`, `2h`): its
    /// `active_model` is set to `null` by a recorded edit. Unset or `null`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 12))]
    pub idle_unload_after: Option<String>,
}

impl DeploymentSpec {
    /// The cluster settings of this deployment: its hosts, port and launcher, every other
    /// setting at its default.
    pub fn to_cluster(&self) -> Cluster {
        Cluster {
            head: self.head.clone(),
            workers: self.workers.clone(),
            port: self.port,
            launcher: self.launcher.clone(),
            container: self.container.clone(),
            on_request: self.on_request,
            idle_unload_after: self.idle_unload_after.clone(),
            detach: None,
            launch_template: None,
            stop_template: None,
            launch_timeout_secs: default_launch_timeout(),
            start_timeout_secs: default_start_timeout(),
            settle_below_mib: default_settle_mib(),
            settle_timeout_secs: default_settle_timeout(),
        }
    }
}

/// What a request for a catalog model a deployment does not serve does (`on_request`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnRequest {
    /// Nothing: 404 `model_not_loaded`.
    #[default]
    Off,
    /// Swap the deployment to it (a recorded edit of the file), the request waiting.
    Swap,
}

impl OnRequest {
    fn is_off(&self) -> bool {
        *self == OnRequest::Off
    }
}

/// `90s`, `30m`, `2h` as a duration (`idle_unload_after`); `None` for anything else.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let n: u64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let secs = match unit {
        's' => n,
        'm' => n.checked_mul(60)?,
        'h' => n.checked_mul(3600)?,
        _ => return None,
    };
    (secs > 0).then(|| std::time::Duration::from_secs(secs))
}

/// How a launch is detached from the SSH session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DetachMode {
    /// The launcher's own `-d` flag.
    #[default]
    Flag,
    /// `setsid nohup <launch> </dev/null >log 2>&1 &` (launchers without `-d`).
    Nohup,
}

/// A catalog entry: which Hugging Face repo, launched how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Hugging Face repository, `org/name`.
    #[schemars(length(max = limits::REPO))]
    pub repo: String,
    /// `solo`: on the head only. `cluster`: tensor-parallel across the head and every worker.
    #[serde(default)]
    pub mode: Mode,
    /// A short note shown in the UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::DESCRIPTION))]
    pub description: Option<String>,
    /// Seconds this model may take to become ready (large models load slowly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timeout_secs: Option<u64>,
    /// More names clients may use for this model (besides its catalog name and its repo);
    /// vLLM answers to all of them. Names are unique across the catalog.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = limits::ALIASES), inner(length(max = limits::REPO)))]
    pub aliases: Vec<String>,
}

/// Where a model runs.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// On the head only (`--solo`).
    #[default]
    Solo,
    /// Tensor-parallel across the head and all workers (`-tp <hosts>`).
    Cluster,
}

/// Launch settings of one model. Unset fields keep the bundled default (or vLLM's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// Maximum context length in tokens (`--max-model-len`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_context: Option<u64>,
    /// Fraction of GPU memory vLLM may use, in (0, 1] (`--gpu-memory-utilization`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory: Option<f64>,
    /// Load weights with fastsafetensors (`--load-format fastsafetensors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fastsafetensors: Option<bool>,
    /// Automatic prefix caching (`--enable-prefix-caching`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_caching: Option<bool>,
    /// FP8 KV cache (`--kv-cache-dtype fp8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp8_kv_cache: Option<bool>,
    /// Extra arguments passed to `vllm serve` verbatim, one list element per argument.
    /// At most 64 arguments of at most 4096 bytes each, 16 KiB in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = limits::EXTRA_ARGS_ITEMS), inner(length(max = limits::EXTRA_ARG)))]
    pub extra_args: Vec<String>,
    /// Extra environment variables for the launcher. At most 64, names of at most 128
    /// bytes, values of at most 4096 bytes, 8 KiB in all.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend(
        "maxProperties" = limits::ENV_ITEMS,
        "propertyNames" = { "maxLength": limits::ENV_KEY },
        "additionalProperties" = { "type": "string", "maxLength": limits::ENV_VALUE },
    ))]
    pub env: BTreeMap<String, String>,
}

/// A side service: a docker container on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// What it is: `stt` (speech-to-text), `tts` (text-to-speech) or `other`.
    pub kind: ServiceKind,
    /// The host that runs it. Moving it stops it on the old host and starts it on the new.
    #[schemars(length(max = limits::NAME))]
    pub host: String,
    /// The port it serves on.
    pub port: u16,
    /// Whether it should be running.
    #[serde(default = "default_true")]
    pub running: bool,
    /// Docker container name, if different from the service's name. The container must
    /// exist on every host the service may be placed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::CONTAINER))]
    pub container: Option<String>,
    /// HTTP path answering 200 when healthy.
    #[serde(default = "default_health_path")]
    #[schemars(length(max = limits::HEALTH_PATH))]
    pub health_path: String,
    /// The model it serves, shown in `/api/endpoints` (e.g. `nvidia/parakeet-tdt-0.6b-v3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::SERVICE_MODEL))]
    pub model: Option<String>,
}

impl Service {
    /// The docker container name: `container`, or the service's own name.
    pub fn container_name<'a>(&'a self, service_name: &'a str) -> &'a str {
        self.container.as_deref().unwrap_or(service_name)
    }
}

/// What a side service is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    /// Speech-to-text (Parakeet): `/v1/audio/transcriptions` is proxied to it.
    Stt,
    /// Text-to-speech (Magpie): `/v1/audio/speech` is proxied to it.
    Tts,
    /// Anything else; shown and steered, not proxied.
    Other,
}

/// Update policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Updates {
    /// Launcher checkout policy: `manual` (check on request), `notify` (check periodically,
    /// show commits behind), `auto` (apply when no model operation is in flight), or
    /// `{pin: <commit>}` (keep the checkout at that commit, the image rebuilt to match).
    /// Applying runs `git pull` and `./build-and-copy.sh -c <worker addresses>`.
    #[serde(default)]
    pub launcher: UpdatePolicy,
    /// Seconds between periodic checks (`notify`, `auto`).
    #[serde(default = "default_check_interval")]
    pub check_interval_secs: u64,
    /// With `launcher: auto`: apply only while no model serves (`active_model` is null and
    /// vLLM lists no model), so a build never competes with a serving model. Default
    /// false: apply whenever no model operation is in flight.
    #[serde(default)]
    pub auto_only_when_idle: bool,
}

/// Update policy for the launcher checkout.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UpdatePolicy {
    /// Check only when asked.
    Manual,
    /// Check periodically and show what is new.
    #[default]
    Notify,
    /// Check periodically and apply when no model operation is in flight (see
    /// `auto_only_when_idle`).
    Auto,
    /// Keep the checkout at this commit (full or abbreviated hash); the image is rebuilt
    /// to match. Leaving the pin for another policy checks the branch out again.
    Pin(#[schemars(length(max = limits::PIN))] String),
}

/// OpenAI passthrough proxy settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxySettings {
    /// Overall limit of one proxied request, in seconds (big-context completions are slow).
    #[serde(default = "default_overall_timeout")]
    pub timeout_secs: u64,
    /// Connect timeout to the upstream, in milliseconds.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// Largest JSON request body, in bytes.
    #[serde(default = "default_max_json")]
    pub max_json_body: u64,
    /// Largest audio request body, in bytes.
    #[serde(default = "default_max_audio")]
    pub max_audio_body: u64,
    /// While a model is loading, hold requests up to this many seconds instead of answering
    /// 503 at once. 0: answer 503 with Retry-After.
    #[serde(default)]
    pub wait_for_ready_secs: u64,
    /// Most requests at once per model, by catalog name (e.g. `{qwen36: 8}`); past it, 429
    /// with `Retry-After`. Models not named here are not limited.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = { "maxLength": limits::NAME }))]
    pub max_concurrent: BTreeMap<String, u32>,
    /// Requests waiting for a request-triggered swap, per model; past it, 503 with
    /// `Retry-After`.
    #[serde(default = "default_swap_queue")]
    pub swap_queue: u32,
    /// Longest a request waits for a request-triggered swap, in seconds (then 503).
    #[serde(default = "default_swap_wait")]
    pub swap_wait_secs: u64,
    /// At most one request-triggered swap per deployment in this many seconds; requests
    /// for another model wait for it (within `swap_wait_secs`) or get 503.
    #[serde(default = "default_swap_interval")]
    pub swap_min_interval_secs: u64,
    /// Before any swap stops a model, its requests in flight may finish for up to this
    /// many seconds (no new ones are admitted); a stream still running then is ended with
    /// one SSE `error` event.
    #[serde(default = "default_drain_grace")]
    pub drain_grace_secs: u64,
}

fn default_swap_queue() -> u32 {
    64
}
fn default_swap_wait() -> u64 {
    900
}
fn default_swap_interval() -> u64 {
    30
}
fn default_drain_grace() -> u64 {
    30
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            timeout_secs: default_overall_timeout(),
            connect_timeout_ms: default_connect_timeout(),
            max_json_body: default_max_json(),
            max_audio_body: default_max_audio(),
            wait_for_ready_secs: 0,
            max_concurrent: BTreeMap::new(),
            swap_queue: default_swap_queue(),
            swap_wait_secs: default_swap_wait(),
            swap_min_interval_secs: default_swap_interval(),
            drain_grace_secs: default_drain_grace(),
        }
    }
}

/// Git-ops settings (`git:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitSettings {
    /// The repository to pull from and push to (pull mode), e.g.
    /// `git@github.com:me/cluster.git`, `https://git.example/me/cluster.git` or a path on
    /// disk. Unset: local history only. The desired file must be in a clone of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::GIT_URL))]
    pub remote: Option<String>,
    /// The branch to follow (the clone must have it checked out).
    #[serde(default = "default_git_branch")]
    #[schemars(length(max = limits::GIT_REF))]
    pub branch: String,
    /// The desired file's path inside the repository (e.g. `clusters/home/desired.yaml`);
    /// checked against where the file is. Unset: wherever it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::LAUNCHER))]
    pub path: Option<String>,
    /// Seconds between fetches of `remote` (at least 5). A webhook
    /// (`POST /api/git/webhook`) fetches at once.
    #[serde(default = "default_git_interval")]
    pub interval_secs: u64,
    /// Push commits made here to `remote` (default true). A rejected push keeps the commit
    /// locally and shows the branch as diverged.
    #[serde(default = "default_true")]
    pub push: bool,
    /// Author of the commits made here. Default `spark-control <spark-control@localhost>`;
    /// who made the change (UI, API client, on-request) is in each message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<GitIdentity>,
    /// Committer of the commits made here. Default: the author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committer: Option<GitIdentity>,
    /// SSH private key for an `ssh` remote. Default: the controller's own identity
    /// (`<data dir>/id_ed25519`, its public key is on the Setup page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::LAUNCHER))]
    pub ssh_key: Option<String>,
    /// File holding a token for an `https` remote (sent as the HTTP password; the user is
    /// the URL's, else `x-access-token`). The token itself never goes in this file, and is
    /// never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::LAUNCHER))]
    pub token_file: Option<String>,
    /// File holding the webhook's shared secret. Unset: `POST /api/git/webhook` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::LAUNCHER))]
    pub webhook_secret_file: Option<String>,
}

/// A git author or committer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitIdentity {
    /// Name, e.g. `Home Lab Bot`.
    #[schemars(length(max = limits::DESCRIPTION))]
    pub name: String,
    /// E-mail address.
    #[schemars(length(max = limits::DESCRIPTION))]
    pub email: String,
}

fn default_git_branch() -> String {
    "main".into()
}
fn default_git_interval() -> u64 {
    60
}

/// SSH settings shared by every host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SshSettings {
    /// Connect timeout, in seconds.
    #[serde(default = "default_ssh_connect")]
    pub connect_timeout_secs: u64,
    /// Default timeout of one remote command, in seconds.
    #[serde(default = "default_ssh_command")]
    pub command_timeout_secs: u64,
    /// Seconds between polls of every host.
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
}

impl Default for SshSettings {
    fn default() -> Self {
        Self {
            connect_timeout_secs: default_ssh_connect(),
            command_timeout_secs: default_ssh_command(),
            poll_interval_secs: default_poll(),
        }
    }
}

fn default_user() -> String {
    "nvidia".into()
}
fn default_ssh_port() -> u16 {
    22
}
fn default_vllm_port() -> u16 {
    8888
}
fn default_launcher() -> String {
    "~/spark-vllm-docker".into()
}
fn default_container() -> String {
    "vllm_node".into()
}
fn default_launch_timeout() -> u64 {
    180
}
fn default_start_timeout() -> u64 {
    30 * 60
}
fn default_settle_mib() -> u64 {
    8 * 1024
}
fn default_settle_timeout() -> u64 {
    60
}
fn default_true() -> bool {
    true
}
fn default_health_path() -> String {
    "/health".into()
}
fn default_check_interval() -> u64 {
    6 * 3600
}
fn default_overall_timeout() -> u64 {
    30 * 60
}
fn default_connect_timeout() -> u64 {
    2000
}
fn default_max_json() -> u64 {
    16 * 1024 * 1024
}
fn default_max_audio() -> u64 {
    100 * 1024 * 1024
}
fn default_ssh_connect() -> u64 {
    5
}
fn default_ssh_command() -> u64 {
    60
}
fn default_poll() -> u64 {
    5
}

impl Default for Updates {
    fn default() -> Self {
        Self {
            launcher: UpdatePolicy::default(),
            check_interval_secs: default_check_interval(),
            auto_only_when_idle: false,
        }
    }
}
