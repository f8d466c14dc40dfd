//! The model catalog (bundled + custom entries) and the effective launch of a model.
//!
//! Owns: the five bundled models, merging them with the file's custom entries, merging
//! per-model overrides over bundled defaults, and turning a model into the exact launcher
//! argv (`LaunchSpec`) with a fingerprint. The planner compares fingerprints to decide a
//! relaunch, so everything that changes the launch must be in the argv or env here.
//! Pure: no IO, no clock.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::desired::{Cluster, Desired, Mode, ModelSpec, Overrides};

/// A bundled catalog entry.
struct Bundled {
    name: &'static str,
    repo: &'static str,
    mode: Mode,
    description: &'static str,
    defaults: fn() -> Overrides,
}

fn no_defaults() -> Overrides {
    Overrides::default()
}

fn qwen36_defaults() -> Overrides {
    Overrides {
        max_context: Some(131072),
        gpu_memory: Some(0.80),
        ..Overrides::default()
    }
}

fn big_defaults() -> Overrides {
    Overrides {
        max_context: Some(32768),
        gpu_memory: Some(0.85),
        ..Overrides::default()
    }
}

const BUNDLED: &[Bundled] = &[
    Bundled {
        name: "qwen3-vl",
        repo: "Qwen/Qwen3-VL-30B-A3B-Instruct-FP8",
        mode: Mode::Solo,
        description: "Qwen3-VL 30B-A3B (vision-language), FP8",
        defaults: no_defaults,
    },
    Bundled {
        name: "gemma4",
        repo: "google/gemma-4-26B-A4B-it",
        mode: Mode::Solo,
        description: "Gemma 4 26B-A4B instruct (MoE, multimodal)",
        defaults: no_defaults,
    },
    Bundled {
        name: "qwen36",
        repo: "RedHatAI/Qwen3.6-35B-A3B-NVFP4",
        mode: Mode::Solo,
        description: "Qwen3.6 35B-A3B, NVFP4",
        defaults: qwen36_defaults,
    },
    Bundled {
        name: "qwen3-235b-fp8",
        repo: "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8",
        mode: Mode::Cluster,
        description: "Qwen3 235B-A22B instruct, FP8, tensor-parallel over both Sparks",
        defaults: big_defaults,
    },
    Bundled {
        name: "qwen2.5-72b",
        repo: "Qwen/Qwen2.5-72B-Instruct-AWQ",
        mode: Mode::Solo,
        description: "Qwen2.5 72B instruct, AWQ 4-bit",
        defaults: no_defaults,
    },
];

/// Names of the bundled models.
pub fn bundled_names() -> impl Iterator<Item = &'static str> {
    BUNDLED.iter().map(|b| b.name)
}

/// One entry of the effective catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CatalogEntry {
    /// Catalog name.
    pub name: String,
    /// The model spec (repo, mode, ...).
    #[serde(flatten)]
    pub spec: ModelSpec,
    /// Whether it comes from the bundled catalog (and was not replaced by a custom entry).
    pub bundled: bool,
    /// Settings after merging the file's overrides over the bundled defaults.
    pub settings: Overrides,
}

impl CatalogEntry {
    /// The names clients may use for this model, the catalog name first: name, repo
    /// (unless equal), aliases.
    pub fn names(&self) -> Vec<String> {
        let mut out = vec![self.name.clone()];
        for n in std::iter::once(&self.spec.repo).chain(&self.spec.aliases) {
            if !out.contains(n) {
                out.push(n.clone());
            }
        }
        out
    }
}

/// The effective catalog: bundled entries merged with custom ones (custom wins), each with
/// its effective settings. Ordered by name.
pub fn catalog(desired: &Desired) -> BTreeMap<String, CatalogEntry> {
    let mut out = BTreeMap::new();
    for b in BUNDLED {
        let spec = ModelSpec {
            repo: b.repo.into(),
            mode: b.mode,
            description: Some(b.description.into()),
            start_timeout_secs: None,
            aliases: Vec::new(),
        };
        out.insert(
            b.name.to_string(),
            CatalogEntry {
                name: b.name.into(),
                spec,
                bundled: true,
                settings: (b.defaults)(),
            },
        );
    }
    for (name, spec) in &desired.models {
        out.insert(
            name.clone(),
            CatalogEntry {
                name: name.clone(),
                spec: spec.clone(),
                bundled: false,
                settings: Overrides::default(),
            },
        );
    }
    for (name, ov) in &desired.overrides {
        if let Some(entry) = out.get_mut(name) {
            entry.settings = merge(&entry.settings, ov);
        }
    }
    out
}

/// `over` field by field on top of `base`; lists and maps from `over` replace when non-empty.
pub fn merge(base: &Overrides, over: &Overrides) -> Overrides {
    Overrides {
        max_context: over.max_context.or(base.max_context),
        gpu_memory: over.gpu_memory.or(base.gpu_memory),
        fastsafetensors: over.fastsafetensors.or(base.fastsafetensors),
        prefix_caching: over.prefix_caching.or(base.prefix_caching),
        fp8_kv_cache: over.fp8_kv_cache.or(base.fp8_kv_cache),
        extra_args: if over.extra_args.is_empty() {
            base.extra_args.clone()
        } else {
            over.extra_args.clone()
        },
        env: if over.env.is_empty() {
            base.env.clone()
        } else {
            over.env.clone()
        },
    }
}

/// The vLLM flags for a model's settings, in a fixed order.
pub fn flags(settings: &Overrides) -> Vec<String> {
    let mut f = Vec::new();
    if let Some(n) = settings.max_context {
        f.push("--max-model-len".into());
        f.push(n.to_string());
    }
    if let Some(g) = settings.gpu_memory {
        f.push("--gpu-memory-utilization".into());
        f.push(format_fraction(g));
    }
    if settings.fastsafetensors == Some(true) {
        f.push("--load-format".into());
        f.push("fastsafetensors".into());
    }
    // On by default in current vLLM: off must be said.
    match settings.prefix_caching {
        Some(true) => f.push("--enable-prefix-caching".into()),
        Some(false) => f.push("--no-enable-prefix-caching".into()),
        None => {}
    }
    if settings.fp8_kv_cache == Some(true) {
        f.push("--kv-cache-dtype".into());
        f.push("fp8".into());
    }
    f.extend(settings.extra_args.iter().cloned());
    f
}

fn format_fraction(g: f64) -> String {
    let s = format!("{g:.2}");
    // 0.80 stays 0.80 (what people write); 0.855 keeps its precision.
    if (s.parse::<f64>().unwrap_or(g) - g).abs() > 1e-9 {
        format!("{g}")
    } else {
        s
    }
}

/// Everything the executor needs to launch a model, and what identifies that launch. The
/// launcher argv is built from it by `crate::launcher` for the generation on the head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LaunchSpec {
    /// Catalog name.
    pub model: String,
    /// Hugging Face repo.
    pub repo: String,
    /// Solo or cluster.
    pub mode: Mode,
    /// Hosts involved, head first (solo: the head only).
    pub hosts: Vec<String>,
    /// The launcher addresses of `hosts` (interconnect, else address), head first: `-n`.
    pub nodes: Vec<String>,
    /// vLLM's port on the head.
    pub port: u16,
    /// vLLM flags: the settings, then the extra args.
    pub flags: Vec<String>,
    /// Environment for vLLM.
    pub env: BTreeMap<String, String>,
    /// The names vLLM answers to in `/v1/models` (`--served-model-name`, else the repo).
    pub served: Vec<String>,
    /// The effective settings (for showing what changed on a relaunch).
    pub settings: Overrides,
    /// Seconds to wait for ready.
    pub start_timeout_secs: u64,
    /// Short hash of what vLLM is started with (repo, nodes, port, flags, env): a change
    /// means relaunch. Independent of the launcher generation.
    pub fingerprint: String,
}

/// Builds the launch of catalog entry `entry` on `cluster`, with `addresses` mapping host
/// names to their launcher addresses. Returns `None` when a host has no address
/// (validation prevents it).
pub fn launch_spec(
    entry: &CatalogEntry,
    cluster: &Cluster,
    addresses: &BTreeMap<String, String>,
) -> Option<LaunchSpec> {
    let mut hosts = vec![cluster.head.clone()];
    if entry.spec.mode == Mode::Cluster {
        hosts.extend(cluster.workers.iter().cloned());
    }
    let nodes: Option<Vec<String>> = hosts.iter().map(|h| addresses.get(h).cloned()).collect();
    let nodes = nodes?;
    let mut flags = flags(&entry.settings);
    let env = entry.settings.env.clone();
    // vLLM answers to every name after `--served-model-name` (and `/v1/models` lists each),
    // so clients may use the catalog name, the repo or an alias. A `--served-model-name`
    // in `extra_args` is the user's choice and stays as it is.
    if served_names(&flags).is_none() {
        let mut names = vec!["--served-model-name".to_string()];
        names.extend(entry.names());
        flags.splice(0..0, names);
    }
    let served = served_names(&flags).unwrap_or_else(|| vec![entry.spec.repo.clone()]);
    let mut key: Vec<String> = vec![entry.spec.repo.clone(), format!("{:?}", entry.spec.mode)];
    key.extend(nodes.iter().cloned());
    key.push(cluster.port.to_string());
    key.extend(flags.iter().cloned());
    let fingerprint = fingerprint(&key, &env);
    Some(LaunchSpec {
        model: entry.name.clone(),
        repo: entry.spec.repo.clone(),
        mode: entry.spec.mode,
        hosts,
        nodes,
        port: cluster.port,
        flags,
        env,
        served,
        settings: entry.settings.clone(),
        start_timeout_secs: entry
            .spec
            .start_timeout_secs
            .unwrap_or(cluster.start_timeout_secs),
        fingerprint,
    })
}

/// The names after `--served-model-name` (or `--served-model-name=a`), if the flags set any.
pub fn served_names(flags: &[String]) -> Option<Vec<String>> {
    let mut out = None;
    let mut it = flags.iter().peekable();
    while let Some(f) = it.next() {
        if let Some(v) = f.strip_prefix("--served-model-name=") {
            out = Some(vec![v.to_string()]);
        } else if f == "--served-model-name" {
            let mut names = Vec::new();
            while let Some(n) = it.peek() {
                if n.starts_with("--") {
                    break;
                }
                names.push((*n).clone());
                it.next();
            }
            if !names.is_empty() {
                out = Some(names);
            }
        }
    }
    out
}

fn fingerprint(argv: &[String], env: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for a in argv {
        h.update(a.as_bytes());
        h.update([0]);
    }
    h.update([1]);
    for (k, v) in env {
        h.update(k.as_bytes());
        h.update([b'=']);
        h.update(v.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Human description of what changed between two settings, e.g.
/// `gpu_memory 0.8 → 0.9, prefix_caching off → on`. Empty when only argv outside the
/// settings changed.
pub fn settings_diff(old: &Overrides, new: &Overrides) -> Vec<String> {
    fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
        v.as_ref().map_or("unset".into(), |v| v.to_string())
    }
    fn onoff(v: &Option<bool>) -> String {
        match v {
            Some(true) => "on".into(),
            Some(false) => "off".into(),
            None => "unset".into(),
        }
    }
    let mut out = Vec::new();
    if old.max_context != new.max_context {
        out.push(format!(
            "max_context {} → {}",
            opt(&old.max_context),
            opt(&new.max_context)
        ));
    }
    if old.gpu_memory != new.gpu_memory {
        out.push(format!(
            "gpu_memory {} → {}",
            opt(&old.gpu_memory),
            opt(&new.gpu_memory)
        ));
    }
    for (name, a, b) in [
        (
            "fastsafetensors",
            &old.fastsafetensors,
            &new.fastsafetensors,
        ),
        ("prefix_caching", &old.prefix_caching, &new.prefix_caching),
        ("fp8_kv_cache", &old.fp8_kv_cache, &new.fp8_kv_cache),
    ] {
        if a != b {
            out.push(format!("{name} {} → {}", onoff(a), onoff(b)));
        }
    }
    if old.extra_args != new.extra_args {
        out.push(format!(
            "extra_args [{}] → [{}]",
            old.extra_args.join(" "),
            new.extra_args.join(" ")
        ));
    }
    if old.env != new.env {
        out.push("env changed".into());
    }
    out
}
