//! Who holds each host's vLLM container, and whether a deployment's model crashed. A host
//! runs one vLLM container at a time (the launcher's container name is fixed per host);
//! what runs there belongs to the deployment its head's launch record names, and a
//! cluster model's worker is held by its head. Pure.

use super::model::containers_of;
use super::Ctx;
use crate::model::deployment::Deployment;
use crate::model::desired::Desired;
use crate::model::observed::LaunchRecord;

/// What cannot be seen, for the plan's "unknown" list.
type Unknown = String;

/// Who holds a host's vLLM container: the head it was launched from and the deployment
/// that head's launch record names.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Held {
    pub(super) head: String,
    pub(super) deployment: String,
}

/// The deployment a launch record on `head` belongs to: the one it names, when the file
/// still has it; else (records of older builds, a deployment removed) the first
/// deployment whose head `head` is.
pub(super) fn owner(d: &Desired, head: &str, record: Option<&LaunchRecord>) -> String {
    let deployments = d.deployments();
    let named = record
        .and_then(|r| r.deployment.as_deref())
        .filter(|n| deployments.iter().any(|x| x.name == *n));
    if let Some(n) = named {
        return n.to_string();
    }
    deployments
        .iter()
        .find(|x| x.cluster.head == head)
        .or_else(|| {
            deployments
                .iter()
                .find(|x| x.cluster.workers.iter().any(|w| w == head))
        })
        .map(|x| x.name.clone())
        .unwrap_or_default()
}

/// What holds `host`'s vLLM container (`None`: it does not run): a head whose container
/// runs and whose launch record lists this host's address among its nodes (a cluster
/// model's worker); else the host itself, for the deployment its own launch record names
/// (or, without one, a leftover or a launch by hand: the first deployment that lists it).
/// The worker relation comes first: a host's own record can be stale (its model crashed,
/// then the host became a cluster's worker), a running head's record is its latest launch.
/// Unknown containers are an `Err`: nothing is decided for the hosts behind them.
pub(super) fn holder(
    d: &Desired,
    cx: &Ctx<'_>,
    host: &str,
    container: &str,
) -> Result<Option<Held>, Unknown> {
    let running = containers_of(cx, host)?
        .get(container)
        .is_some_and(|c| c.running);
    if !running {
        return Ok(None);
    }
    let address = d.hosts.get(host).map(|h| h.launcher_address().to_string());
    for (other, o) in &cx.obs.hosts {
        if other == host {
            continue;
        }
        let Some(r) = o.launch.get().and_then(Option::as_ref) else {
            continue;
        };
        let up = o
            .containers
            .get()
            .is_some_and(|c| c.get(container).is_some_and(|c| c.running));
        if up && address.as_ref().is_some_and(|a| r.nodes.contains(a)) {
            return Ok(Some(Held {
                head: other.clone(),
                deployment: owner(d, other, Some(r)),
            }));
        }
    }
    let record = launch_record(cx, host);
    Ok(Some(Held {
        head: host.into(),
        deployment: owner(d, host, record),
    }))
}

/// The launch record on the head, if it is known and there is one.
pub(super) fn launch_record<'a>(cx: &'a Ctx<'_>, head: &str) -> Option<&'a LaunchRecord> {
    cx.host(head)
        .and_then(|h| h.launch.get())
        .and_then(Option::as_ref)
}

/// Why the model that runs on the head has crashed, if it has: its container runs but the
/// `vllm serve` process inside is gone while no launcher of ours is still starting it
/// (generation B keeps the container alive); or, after it was ready once (the launch
/// record's `ready_at`), its container is gone (generation A's launcher stops it when
/// vLLM dies) or `/health` failed three checks in a row. A deliberate stop clears
/// `ready_at` first, so it is never taken for a crash.
///
/// Of every deployment with an active model, the first crash found.
pub fn crash_reason(d: &Desired, o: &crate::model::observed::Observed) -> Option<String> {
    d.deployments()
        .iter()
        .enumerate()
        .filter(|(_, x)| x.active_model.is_some())
        .find_map(|(i, x)| crash_reason_of(d, o, x, i == 0))
}

/// [`crash_reason`] of one deployment (`first`: it is the first one), when the model on
/// its head is its own.
pub(super) fn crash_reason_of(
    d: &Desired,
    o: &crate::model::observed::Observed,
    dep: &Deployment,
    first: bool,
) -> Option<String> {
    use crate::launcher::LauncherState;
    let c = &dep.cluster;
    let head = c.head.as_str();
    let h = o.hosts.get(head)?;
    let record = h.launch.get()?.as_ref()?;
    if owner(d, head, Some(record)) != dep.name {
        return None;
    }
    let running = h
        .containers
        .get()?
        .get(&c.container)
        .is_some_and(|v| v.running);
    let starting = matches!(
        h.launcher_process.get(),
        Some(LauncherState::Running { .. })
    );
    if running && h.vllm_process.get() == Some(&false) && !starting {
        return Some(format!(
            "vLLM ({}) crashed on {head}: its container runs but no `vllm serve` process is left in it",
            record.model
        ));
    }
    record.ready_at?;
    if !running {
        return Some(format!(
            "vLLM ({}) crashed on {head}: its container {} is gone",
            record.model, c.container
        ));
    }
    let failures = o
        .vllm_of(&dep.name, first)
        .get()
        .map_or(0, |v| v.health_failures);
    if failures >= 3 {
        return Some(format!(
            "vLLM ({}) stopped answering on {head}: /health failed {failures} checks in a row after it was ready",
            record.model
        ));
    }
    None
}
