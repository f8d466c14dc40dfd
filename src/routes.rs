//! Where the proxy sends requests, derived from the status: desired placement plus
//! observed readiness. Pure (`routes_from`), plus a small task that republishes routes
//! whenever the status changes. The proxy reads only this; it holds no control state.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::model::catalog::catalog;
use crate::model::desired::ServiceKind;
use crate::proxy::{ModelEntry, ModelTable, Policy, Routes, Upstream};
use crate::serving::model_views;
use crate::status::Status;

/// The proxy's routes for one status snapshot.
pub fn routes_from(s: &Status) -> Routes {
    let Some(d) = &s.desired else {
        return Routes::default();
    };
    let first = d.first_deployment();
    let vllm = match &first {
        Some(dep) => upstream_of(s, d, dep, true),
        None => Upstream::NotConfigured,
    };
    let models = model_table(s, &vllm, first.map(|x| x.name));
    let service = |kind: ServiceKind| {
        d.services
            .iter()
            .find(|(_, svc)| svc.kind == kind && svc.running)
            .and_then(|(name, svc)| {
                let base = d
                    .hosts
                    .get(&svc.host)
                    .map(|h| format!("http://{}:{}", h.address, svc.port))?;
                let healthy = s.observed.services.get(name).and_then(|f| f.get()).copied();
                Some(if healthy == Some(true) {
                    Upstream::Ready {
                        base,
                        model: svc.model.clone(),
                    }
                } else {
                    Upstream::Down {
                        base,
                        why: format!("{name} health check is not passing"),
                    }
                })
            })
            .unwrap_or_default()
    };
    Routes {
        vllm,
        stt: service(ServiceKind::Stt),
        tts: service(ServiceKind::Tts),
        models,
        policy: Arc::new(policy_of(d)),
    }
}

/// The request policies the desired file sets.
fn policy_of(d: &crate::model::desired::Desired) -> Policy {
    use crate::model::desired::{parse_duration, OnRequest};
    use std::time::Duration;
    let deployments = d.deployments();
    let p = &d.proxy;
    Policy {
        swap_on_request: deployments
            .iter()
            .filter(|x| x.cluster.on_request == OnRequest::Swap)
            .map(|x| x.name.clone())
            .collect(),
        idle_unload: deployments
            .iter()
            .filter_map(|x| {
                let after = parse_duration(x.cluster.idle_unload_after.as_deref()?)?;
                Some((x.name.clone(), after))
            })
            .collect(),
        max_concurrent: p.max_concurrent.clone(),
        queue: usize::try_from(p.swap_queue.max(1)).unwrap_or(usize::MAX),
        queue_wait: Duration::from_secs(p.swap_wait_secs.max(1)),
        min_interval: Duration::from_secs(p.swap_min_interval_secs),
        drain_grace: Duration::from_secs(p.drain_grace_secs),
    }
}

/// The upstream of one deployment (`first`: the first one): ready when its vLLM lists
/// its model's repo, loading while it is launched or swapped, else down.
fn upstream_of(
    s: &Status,
    d: &crate::model::desired::Desired,
    dep: &crate::model::deployment::Deployment,
    first: bool,
) -> Upstream {
    let Some(m) = dep.active_model.as_ref() else {
        return Upstream::NotConfigured;
    };
    let base = d
        .hosts
        .get(&dep.cluster.head)
        .map(|h| format!("http://{}:{}", h.address, dep.cluster.port));
    let repo = catalog(d).get(m).map(|e| e.spec.repo.clone());
    let served = s
        .observed
        .vllm_of(&dep.name, first)
        .get()
        .map(|v| v.models.clone())
        .unwrap_or_default();
    let ready = repo.as_ref().is_some_and(|r| served.contains(r));
    match base {
        None => Upstream::NotConfigured,
        Some(base) if ready => Upstream::Ready { base, model: repo },
        Some(base) if crate::serving::launching(s, &dep.name, first) => Upstream::Loading {
            model: m.clone(),
            base: Some(base),
        },
        Some(base) => Upstream::Down {
            base,
            why: format!("{m} is not serving (see /api/state)"),
        },
    }
}

/// The catalog for routing by name and `/v1/models`: a model active on a deployment goes
/// to that deployment's vLLM (the first deployment's is also the `vllm` route).
fn model_table(s: &Status, first_upstream: &Upstream, first: Option<String>) -> Arc<ModelTable> {
    let Some(d) = s.desired.as_deref() else {
        return Arc::new(ModelTable::new(Vec::new(), first));
    };
    let deployments = d.deployments();
    let entries = model_views(s)
        .into_iter()
        .map(|v| {
            let upstream = match &v.deployment {
                Some(dep) if Some(dep) == first.as_ref() => first_upstream.clone(),
                Some(dep) => deployments
                    .iter()
                    .find(|x| x.name == *dep)
                    .map_or(Upstream::NotConfigured, |x| upstream_of(s, d, x, false)),
                None => Upstream::NotConfigured,
            };
            let status = serde_json::to_value(v.status)
                .ok()
                .and_then(|x| x.as_str().map(str::to_string))
                .unwrap_or_default();
            let leaving = match &v.deployment {
                None => leaving(s, d, &deployments, &v.names, &v.repo),
                Some(_) => None,
            };
            match leaving {
                Some((deployment, upstream)) => ModelEntry {
                    name: v.name,
                    repo: v.repo,
                    aliases: v.aliases,
                    status: "serving".into(),
                    deployment: Some(deployment),
                    could_run: v.could_run,
                    max_model_len: v.max_model_len,
                    upstream,
                    leaving: true,
                },
                None => ModelEntry {
                    name: v.name,
                    repo: v.repo,
                    aliases: v.aliases,
                    status,
                    deployment: v.deployment,
                    could_run: v.could_run,
                    max_model_len: v.max_model_len,
                    upstream,
                    leaving: false,
                },
            }
        })
        .collect();
    Arc::new(ModelTable::new(entries, first))
}

/// A model the file no longer names that a deployment's vLLM still serves, while no stop
/// of that deployment has begun: that deployment and its upstream (requests keep flowing
/// until the drain before the stop starts).
fn leaving(
    s: &Status,
    d: &crate::model::desired::Desired,
    deployments: &[crate::model::deployment::Deployment],
    names: &[String],
    repo: &str,
) -> Option<(String, Upstream)> {
    deployments.iter().enumerate().find_map(|(i, dep)| {
        let listed = s.observed.vllm_of(&dep.name, i == 0).get()?.models.clone();
        if !names.iter().any(|n| listed.contains(n)) || stopping(s, &dep.name, i == 0) {
            return None;
        }
        let base = d
            .hosts
            .get(&dep.cluster.head)
            .map(|h| format!("http://{}:{}", h.address, dep.cluster.port))?;
        Some((
            dep.name.clone(),
            Upstream::Ready {
                base,
                model: Some(repo.to_string()),
            },
        ))
    })
}

/// Whether the running operation has begun stopping `deployment`'s model.
fn stopping(s: &Status, deployment: &str, first: bool) -> bool {
    use crate::plan::Action;
    let Some(op) = s.operation.as_ref() else {
        return false;
    };
    if op.finished_at.is_some() {
        return false;
    }
    op.timeline.iter().any(|t| {
        t.started_at.is_some()
            && matches!(t.step.action, Action::StopModel { .. })
            && t.step.action.for_deployment(deployment, first) == Some(true)
    })
}

/// Republishes routes on every status change until `shutdown`.
pub fn spawn(
    mut status: watch::Receiver<Arc<Status>>,
    shutdown: CancellationToken,
) -> watch::Receiver<Routes> {
    let first = routes_from(&status.borrow());
    let (tx, rx) = watch::channel(first);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = status.changed() => {
                    if r.is_err() { break; }
                    let routes = routes_from(&status.borrow_and_update());
                    tx.send_if_modified(|cur| if *cur != routes { *cur = routes; true } else { false });
                }
            }
        }
    });
    rx
}
