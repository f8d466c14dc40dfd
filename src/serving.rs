//! Which catalog model is served where, for clients: every catalog entry with its names
//! (catalog name, repo, aliases), the deployment serving it or where it could run, and a
//! status (`serving`, `loading`, `available`, `downloading`, `failed`). The proxy routes
//! by these names (`routes.rs`), `/v1/models` lists them and `/api/endpoints` maps them.
//! Pure: one `Status` snapshot in, values out.

use serde::Serialize;

use crate::model::catalog::catalog;
use crate::model::deployment::Deployment;
use crate::model::desired::{Desired, Mode};
use crate::plan::Action;
use crate::status::Status;

/// Where a catalog model stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelStatus {
    /// Its deployment's vLLM lists it: requests are answered.
    Serving,
    /// Active on a deployment, which is launching it (or swapping to it).
    Loading,
    /// Not active anywhere; can be activated.
    Available,
    /// Not active; its weights are being downloaded.
    Downloading,
    /// Active on a deployment, but not serving and nothing is under way to change that.
    Failed,
}

/// One catalog model as clients see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelView {
    /// Catalog name (`id` in `/v1/models`).
    pub name: String,
    /// Hugging Face repo.
    pub repo: String,
    /// Its aliases from the catalog entry.
    pub aliases: Vec<String>,
    /// Every name a client may use: catalog name, repo, aliases.
    pub names: Vec<String>,
    /// Its status.
    pub status: ModelStatus,
    /// The deployment it is active on, if any.
    pub deployment: Option<String>,
    /// `http://host:port` of that deployment's vLLM (no `/v1`), when its head is known.
    pub base: Option<String>,
    /// Deployments it could be activated on (solo: any; cluster: those with workers).
    pub could_run: Vec<String>,
    /// Context length, when known (the effective `max_context` setting).
    pub max_model_len: Option<u64>,
}

/// `http://host:port` of a deployment's vLLM (IPv6 literals bracketed).
pub fn base_of(d: &Desired, dep: &Deployment) -> Option<String> {
    let h = d.hosts.get(&dep.cluster.head)?;
    let host = if h.address.contains(':') && !h.address.starts_with('[') {
        format!("[{}]", h.address)
    } else {
        h.address.clone()
    };
    Some(format!("http://{host}:{}", dep.cluster.port))
}

/// Whether deployment `name` (`first`: the first one) is being launched or swapped: the
/// plan launches or waits for it, or an operation runs that changes its model.
pub fn launching(s: &Status, name: &str, first: bool) -> bool {
    // Settles and downloads are on the way to a launch of some deployment.
    let ours = |a: &Action| {
        a.for_deployment(name, first)
            .unwrap_or_else(|| a.is_model_action())
    };
    s.plan.steps.iter().any(|st| {
        matches!(
            st.action,
            Action::LaunchModel { .. } | Action::WaitReady { .. }
        ) && ours(&st.action)
    }) || (s.busy() && s.plan.steps.iter().any(|st| ours(&st.action)))
}

/// Every catalog model, by name.
pub fn model_views(s: &Status) -> Vec<ModelView> {
    let Some(d) = s.desired.as_deref() else {
        return Vec::new();
    };
    let deployments = d.deployments();
    let downloading: Vec<&str> = s
        .plan
        .steps
        .iter()
        .filter_map(|st| match &st.action {
            Action::Download { model, .. } => Some(model.as_str()),
            _ => None,
        })
        .collect();
    catalog(d)
        .into_values()
        .map(|entry| {
            let names = entry.names();
            let active = deployments
                .iter()
                .enumerate()
                .find(|(_, x)| x.active_model.as_deref() == Some(entry.name.as_str()));
            let status = match active {
                Some((i, x)) => {
                    let listed = s
                        .observed
                        .vllm_of(&x.name, i == 0)
                        .get()
                        .map(|v| v.models.clone())
                        .unwrap_or_default();
                    if names.iter().any(|n| listed.contains(n)) {
                        ModelStatus::Serving
                    } else if downloading.contains(&entry.name.as_str()) {
                        ModelStatus::Downloading
                    } else if launching(s, &x.name, i == 0) {
                        ModelStatus::Loading
                    } else {
                        ModelStatus::Failed
                    }
                }
                None if downloading.contains(&entry.name.as_str()) => ModelStatus::Downloading,
                None => ModelStatus::Available,
            };
            let could_run = deployments
                .iter()
                .filter(|x| entry.spec.mode == Mode::Solo || !x.cluster.workers.is_empty())
                .map(|x| x.name.clone())
                .collect();
            ModelView {
                repo: entry.spec.repo.clone(),
                aliases: entry.spec.aliases.clone(),
                status,
                deployment: active.map(|(_, x)| x.name.clone()),
                base: active.and_then(|(_, x)| base_of(d, x)),
                could_run,
                max_model_len: entry.settings.max_context,
                names,
                name: entry.name,
            }
        })
        .collect()
}
