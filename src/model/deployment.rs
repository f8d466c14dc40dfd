//! The deployments of a desired file, normalised: the one typed view every reader of
//! "what vLLM should run where" uses. A file in the older shape (`cluster:` +
//! `active_model:`) is one deployment named `default`; a file with `deployments:` is one
//! deployment per entry, in file order. Pure.

use super::desired::{Cluster, Desired};

/// The name of the one deployment a file in the older shape (`cluster:` + `active_model:`)
/// describes.
pub const DEFAULT_NAME: &str = "default";

/// One deployment: a vLLM launched on `cluster.head` (and its workers for cluster models).
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// Its name (`default` for the older shape).
    pub name: String,
    /// Hosts, port and launcher settings.
    pub cluster: Cluster,
    /// The model it should serve, by catalog name.
    pub active_model: Option<String>,
    /// JSON pointer of its section in the file (`/cluster`, `/deployments/1`), for messages.
    pub pointer: String,
    /// JSON pointer of its `active_model` (`/active_model`, `/deployments/1/active_model`).
    pub active_pointer: String,
}

impl Deployment {
    /// Every host it uses when its model is a cluster model: the head, then the workers.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.cluster.head.as_str())
            .chain(self.cluster.workers.iter().map(String::as_str))
    }
}

impl Desired {
    /// The deployments, normalised (see the module doc). Empty when none is configured.
    pub fn deployments(&self) -> Vec<Deployment> {
        if !self.deployments.is_empty() {
            return self
                .deployments
                .iter()
                .enumerate()
                .map(|(i, d)| Deployment {
                    name: d.name.clone(),
                    cluster: d.to_cluster(),
                    active_model: d.active_model.clone(),
                    pointer: format!("/deployments/{i}"),
                    active_pointer: format!("/deployments/{i}/active_model"),
                })
                .collect();
        }
        match &self.cluster {
            Some(c) => vec![Deployment {
                name: DEFAULT_NAME.into(),
                cluster: c.clone(),
                active_model: self.active_model.clone(),
                pointer: "/cluster".into(),
                active_pointer: "/active_model".into(),
            }],
            None => Vec::new(),
        }
    }

    /// The first deployment: the one requests without a `model` go to, and `vllm` in
    /// `/api/endpoints`.
    pub fn first_deployment(&self) -> Option<Deployment> {
        self.deployments().into_iter().next()
    }

    /// How many deployments name a different `active_model` in `other` than here (a
    /// deployment in one only counts when it names a model).
    pub fn model_changes(&self, other: &Desired) -> usize {
        let mine = self.deployments();
        let theirs = other.deployments();
        let model_of = |all: &[Deployment], name: &str| {
            all.iter()
                .find(|d| d.name == name)
                .and_then(|d| d.active_model.clone())
        };
        let mut names: Vec<&str> = mine
            .iter()
            .chain(&theirs)
            .map(|d| d.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .filter(|n| model_of(&mine, n) != model_of(&theirs, n))
            .count()
    }

    /// Whether the file uses the `deployments:` shape (several deployments possible).
    pub fn uses_deployments(&self) -> bool {
        !self.deployments.is_empty()
    }
}
