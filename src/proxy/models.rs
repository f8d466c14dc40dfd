//! The catalog as the proxy sees it: which deployment serves which name, and the
//! `/v1/models` document. Plain data published by the control loop in [`Routes`]; the
//! lookups here are pure.
//!
//! Routing policy: a request naming a model (`model` in a JSON body) goes to the
//! deployment serving it, whichever of its names (catalog name, repo, alias) it uses; a
//! catalog model nothing serves is 404 `model_not_loaded` naming the deployments it could
//! run on; a name the catalog does not know is 404 `model_not_found`. A request without
//! `model` (or with an empty table: nothing configured) goes to the first deployment.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::Upstream;

/// One catalog model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelEntry {
    /// Catalog name: the `id` in `/v1/models`.
    pub name: String,
    /// Hugging Face repo.
    pub repo: String,
    /// Aliases from the catalog entry.
    pub aliases: Vec<String>,
    /// `serving`, `loading`, `available`, `downloading` or `failed`.
    pub status: String,
    /// The deployment it is active on.
    pub deployment: Option<String>,
    /// Deployments it could be activated on.
    pub could_run: Vec<String>,
    /// Context length, when known.
    pub max_model_len: Option<u64>,
    /// Where its deployment's vLLM is (`NotConfigured` when it is active nowhere).
    pub upstream: Upstream,
    /// The file no longer names it, but `deployment` still serves it and no stop of it
    /// has begun (a swap waiting for another operation, say): requests still reach it
    /// until the drain before its stop starts.
    pub leaving: bool,
}

/// Every catalog model, and an index of every name clients may use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelTable {
    /// Ordered by catalog name.
    pub entries: Vec<ModelEntry>,
    /// Catalog name, repo and each alias → index in `entries`.
    pub by_name: BTreeMap<String, usize>,
    /// The first deployment's name: requests for its model take the `vllm` route (with
    /// its wait-for-ready).
    pub first: Option<String>,
}

/// What a request naming a model gets.
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup<'a> {
    /// Served by the first deployment: the `vllm` route.
    First,
    /// Served by another deployment.
    Other(&'a Upstream),
    /// In the catalog, active nowhere.
    NotLoaded(&'a ModelEntry),
    /// Not in the catalog.
    Unknown,
}

impl ModelTable {
    /// Builds the index from the entries (later names never replace earlier ones;
    /// validation keeps names unique).
    pub fn new(entries: Vec<ModelEntry>, first: Option<String>) -> Self {
        let mut by_name = BTreeMap::new();
        for (i, e) in entries.iter().enumerate() {
            for n in std::iter::once(&e.name)
                .chain(std::iter::once(&e.repo))
                .chain(&e.aliases)
            {
                by_name.entry(n.clone()).or_insert(i);
            }
        }
        Self {
            entries,
            by_name,
            first,
        }
    }

    /// Where a request naming `model` goes.
    pub fn lookup(&self, model: &str) -> Lookup<'_> {
        let Some(e) = self.by_name.get(model).and_then(|&i| self.entries.get(i)) else {
            return Lookup::Unknown;
        };
        match &e.deployment {
            None => Lookup::NotLoaded(e),
            Some(_) if e.leaving => Lookup::Other(&e.upstream),
            Some(d) if Some(d) == self.first.as_ref() => Lookup::First,
            Some(_) => Lookup::Other(&e.upstream),
        }
    }

    /// The deployment a request naming `model` (or none) goes to, for the metrics'
    /// `deployment` label: the one serving it, the first one without a model,
    /// [`NO_DEPLOYMENT`](super::metrics::NO_DEPLOYMENT) when nothing serves it.
    pub fn deployment_for(&self, model: Option<&str>) -> &str {
        use super::metrics::{DEFAULT_DEPLOYMENT, NO_DEPLOYMENT};
        let first = self.first.as_deref().unwrap_or(DEFAULT_DEPLOYMENT);
        match model.filter(|m| !m.is_empty()) {
            _ if self.entries.is_empty() => first,
            None => first,
            Some(m) => match self.lookup(m) {
                Lookup::First => first,
                Lookup::Other(_) => self
                    .by_name
                    .get(m)
                    .and_then(|&i| self.entries.get(i))
                    .and_then(|e| e.deployment.as_deref())
                    .unwrap_or(NO_DEPLOYMENT),
                Lookup::NotLoaded(_) | Lookup::Unknown => NO_DEPLOYMENT,
            },
        }
    }

    /// One `/v1/models` entry: OpenAI's fields plus ours.
    pub fn card(e: &ModelEntry) -> Value {
        json!({
            "id": e.name,
            "object": "model",
            "created": 0,
            "owned_by": "spark-control",
            "status": e.status,
            "deployment": e.deployment,
            "repo": e.repo,
            "aliases": e.aliases,
            "max_model_len": e.max_model_len,
        })
    }

    /// The `/v1/models` document (an empty list when nothing is configured).
    pub fn list(&self) -> Value {
        let data: Vec<Value> = self.entries.iter().map(Self::card).collect();
        json!({ "object": "list", "data": data })
    }
}
