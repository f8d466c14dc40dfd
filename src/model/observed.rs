//! Observed-state types: what the poller saw on the hosts.
//!
//! Every fact is either known (with when it was seen) or unknown (with why). The planner
//! never acts on an unknown fact (invariant 2 in ARCHITECTURE.md). These are plain data:
//! the observer fills them, the planner and the HTTP layer read them. No IO here.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::desired::Overrides;

/// A fact the poller knows (and since when), or does not know (and why).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "Fact_of_{T}")]
pub enum Fact<T> {
    /// Seen.
    Known {
        /// The value.
        value: T,
        /// When it was seen (absent in hand-written observed files).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<DateTime<Utc>>,
    },
    /// Not seen.
    Unknown {
        /// Why not: "host unreachable: connection refused", "not polled yet", ...
        why: String,
    },
}

impl<T> Default for Fact<T> {
    fn default() -> Self {
        Fact::Unknown {
            why: "not observed yet".into(),
        }
    }
}

impl<T> Fact<T> {
    /// A fact seen now (`at` given by the caller: this module has no clock).
    pub fn known(value: T, at: DateTime<Utc>) -> Self {
        Fact::Known {
            value,
            at: Some(at),
        }
    }
    /// A fact without a timestamp (tests, hand-written files).
    pub fn known_now(value: T) -> Self {
        Fact::Known { value, at: None }
    }
    /// An unknown fact.
    pub fn unknown(why: impl Into<String>) -> Self {
        Fact::Unknown { why: why.into() }
    }
    /// The value, if known.
    pub fn get(&self) -> Option<&T> {
        match self {
            Fact::Known { value, .. } => Some(value),
            Fact::Unknown { .. } => None,
        }
    }
    /// Why it is unknown, if it is.
    pub fn why(&self) -> Option<&str> {
        match self {
            Fact::Known { .. } => None,
            Fact::Unknown { why } => Some(why),
        }
    }
    /// Mutable access to a known value.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        match self {
            Fact::Known { value, .. } => Some(value),
            Fact::Unknown { .. } => None,
        }
    }
}

/// Everything observed, one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Observed {
    /// Increases with every completed poll; a plan remembers the generation it was made
    /// from, and the executor refuses a plan older than the newest observation.
    #[serde(default)]
    pub generation: u64,
    /// Per host, by the names of the desired file.
    #[serde(default)]
    pub hosts: BTreeMap<String, HostObserved>,
    /// vLLM's API on the first deployment's head (`GET /v1/models`); the same value as
    /// that deployment's entry in `deployments`.
    #[serde(default)]
    pub vllm: Fact<VllmObserved>,
    /// vLLM's API of every deployment, by deployment name (its head and port).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deployments: BTreeMap<String, Fact<VllmObserved>>,
    /// Health of each side service (HTTP GET of its health path on its placed host).
    #[serde(default)]
    pub services: BTreeMap<String, Fact<bool>>,
}

impl Observed {
    /// What deployment `name`'s vLLM answered. An observation without per-deployment
    /// entries (hand-written, or from an older build) has only `vllm`, the first
    /// deployment's; any other deployment is then not observed.
    pub fn vllm_of(&self, name: &str, first: bool) -> std::borrow::Cow<'_, Fact<VllmObserved>> {
        match self.deployments.get(name) {
            Some(f) => std::borrow::Cow::Borrowed(f),
            None if first => std::borrow::Cow::Borrowed(&self.vllm),
            None => {
                std::borrow::Cow::Owned(Fact::unknown(format!("deployment {name} is not observed")))
            }
        }
    }
}

/// What one host looked like.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HostObserved {
    /// Whether an SSH command ran; unknown before the first poll.
    #[serde(default)]
    pub reachable: Fact<bool>,
    /// SSH round trip of the poll's first command, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// Docker containers by name.
    #[serde(default)]
    pub containers: Fact<BTreeMap<String, ContainerObserved>>,
    /// The launch record spark-control left on this host (head only): what it launched.
    #[serde(default)]
    pub launch: Fact<Option<LaunchRecord>>,
    /// Hugging Face repos complete in this host's HF cache.
    #[serde(default)]
    pub hf_cache: Fact<BTreeSet<String>>,
    /// The launcher checkout (head only).
    #[serde(default)]
    pub launcher: Fact<LauncherObserved>,
    /// GPUs (`nvidia-smi`).
    #[serde(default)]
    pub gpus: Fact<Vec<GpuObserved>>,
    /// The launcher process spark-control started (head only).
    #[serde(default)]
    pub launcher_process: Fact<crate::launcher::LauncherState>,
    /// Whether a `vllm serve` process runs inside the vLLM container (head only; `false`
    /// also when the container does not run). A container can outlive vLLM (generation B).
    #[serde(default)]
    pub vllm_process: Fact<bool>,
}

/// One docker container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContainerObserved {
    /// `docker ps` State is `running`.
    pub running: bool,
    /// Image name.
    #[serde(default)]
    pub image: String,
}

/// What spark-control launched on the head (written there at launch time, so a restarted
/// controller knows what runs and with which settings).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LaunchRecord {
    /// Catalog name.
    pub model: String,
    /// Hugging Face repo.
    pub repo: String,
    /// Fingerprint of the launch argv + env.
    pub fingerprint: String,
    /// Effective settings at launch.
    #[serde(default)]
    pub settings: Overrides,
    /// When it was launched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_at: Option<DateTime<Utc>>,
    /// The addresses the launcher was given in `-n`, head first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// The launcher generation it was launched with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<crate::launcher::Generation>,
    /// When it first answered (written by the wait for ready): from then on, failed health
    /// checks mean a crash, not loading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<DateTime<Utc>>,
    /// The deployment it was launched for (absent in records of older builds: then the
    /// first deployment whose head this host is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
}

/// What vLLM's API answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VllmObserved {
    /// Model ids listed by `/v1/models`; empty when nothing answers on the port
    /// (connection refused: known to be not serving).
    pub models: Vec<String>,
    /// Consecutive failed `GET /health` checks (0 after a 200).
    #[serde(default)]
    pub health_failures: u32,
}

/// The launcher checkout.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LauncherObserved {
    /// HEAD commit.
    pub head: String,
    /// Commits behind upstream, when checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behind: Option<u32>,
    /// Subjects of the commits behind, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    /// The launcher generation, detected from `./launch-cluster.sh --help` (cached per
    /// commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<crate::launcher::Generation>,
    /// Why the generation could not be detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_error: Option<String>,
    /// The usage text just read (the observer turns it into `generation`; never kept).
    #[serde(skip)]
    pub usage: Option<String>,
    /// The branch checked out; `None` when HEAD is detached (a pinned commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The branch spark-control left when it pinned the checkout (recorded in the
    /// checkout's git config as `spark-control.pinned-from`), to return to it later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_from: Option<String>,
}

/// One GPU.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GpuObserved {
    /// Index.
    pub index: u32,
    /// Name.
    pub name: String,
    /// Utilisation, percent.
    pub util_pct: f64,
    /// Memory used, MiB.
    pub mem_used_mib: u64,
    /// Memory total, MiB (may be unknown on unified-memory GB10: 0).
    pub mem_total_mib: u64,
    /// Temperature, °C.
    pub temp_c: f64,
    /// Power, W.
    pub power_w: f64,
}
