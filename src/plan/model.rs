//! Planning the models of every deployment: stop, settle, download, launch, wait — or
//! nothing. Never two models up on a host; never a stop or launch for a host whose
//! containers are unknown. Pure.
//!
//! Each deployment is planned on its own ([`plan_model`]), in file order, against the same
//! observation; then every stop of every deployment goes first (one per head: a host's
//! vLLM is stopped once, from the head that launched it), and the launches follow in file
//! order. So a layout change (two solo deployments → one cluster deployment over both
//! hosts, and back) stops everything in the way before anything starts, and a deployment
//! whose model runs as desired gets no step at all. What runs on a host belongs to the
//! deployment its head's launch record names ([`holder`]): a cluster model's worker is
//! stopped from its head, never on its own.
//!
//! [`model_steps`] reads as the decisions it makes, each a small function: what is wanted
//! ([`wanted`]), what runs ([`what_runs`], [`workers_running`]), whether what runs stays or
//! is stopped and why ([`keep_or_stop`]), which hosts must download ([`downloads`]), and
//! whether the launch can be made ([`launch`]: the launcher generation and its argv).
//! Whatever cannot be seen ends the plan there with an "unknown" line: the steps already
//! planned stay (a stop of a model that must go anyway), nothing after them is planned.

use std::collections::BTreeMap;

use super::holder::{holder, launch_record};
use super::{Action, Ctx, StopReason};
use crate::launcher::Generation;
use crate::model::catalog::{catalog, launch_spec, settings_diff, LaunchSpec};
use crate::model::deployment::{Deployment, DEFAULT_NAME};
use crate::model::desired::{Cluster, Desired, Mode, Overrides};
use crate::model::observed::ContainerObserved;

/// What cannot be seen, for the plan's "unknown" list: the decision is not made.
type Unknown = String;

use super::holder::crash_reason_of;

pub(super) fn containers_of<'a>(
    cx: &'a Ctx<'_>,
    host: &str,
) -> Result<&'a BTreeMap<String, ContainerObserved>, String> {
    match cx.host(host) {
        None => Err(format!("{host}: not observed yet")),
        Some(h) => match (&h.reachable, h.containers.get()) {
            (_, Some(c)) => Ok(c),
            (r, None) => Err(format!(
                "{host}: containers unknown ({})",
                h.containers.why().or(r.why()).unwrap_or("host unreachable")
            )),
        },
    }
}

/// Every deployment's model steps, appended to the plan in `cx`: all stops first (one per
/// head), then each deployment's settle, downloads, launch and wait, in file order.
pub(super) fn model_steps(d: &Desired, cx: &mut Ctx<'_>) {
    let deployments = d.deployments();
    let mut stops: Vec<super::Step> = Vec::new();
    let mut rest: Vec<super::Step> = Vec::new();
    for (i, dep) in deployments.iter().enumerate() {
        let before = cx.plan.steps.len();
        let result = plan_model(d, dep, i == 0, cx);
        for step in cx.plan.steps.drain(before..).collect::<Vec<_>>() {
            match &step.action {
                Action::StopModel { host, .. } => {
                    let dup = stops.iter().any(
                        |s| matches!(&s.action, Action::StopModel { host: h, .. } if h == host),
                    );
                    if !dup {
                        stops.push(step);
                    }
                }
                _ => rest.push(step),
            }
        }
        if let Err(unknown) = result {
            cx.unknown(unknown);
        }
    }
    cx.plan.steps.extend(stops);
    cx.plan.steps.extend(rest);
}

/// The decisions in order for one deployment; an `Err` is what could not be seen, and
/// ends this deployment's plan there.
fn plan_model(d: &Desired, dep: &Deployment, first: bool, cx: &mut Ctx<'_>) -> Result<(), Unknown> {
    let cluster = &dep.cluster;
    let head = cluster.head.as_str();
    let head_running = containers_of(cx, head)
        .map_err(|why| format!("{why}: no model is started or stopped"))?
        .get(&cluster.container)
        .is_some_and(|c| c.running);
    let want = wanted(d, dep);
    let held = holder(d, cx, head, &cluster.container)
        .map_err(|why| format!("{why}: no model is started or stopped"))?;
    let ours = held.as_ref().is_none_or(|h| h.deployment == dep.name);
    let workers = workers_running(d, cx, dep, want.as_ref())?;
    let Some(want) = want else {
        if ours {
            stop_unwanted(cx, dep, head_running, &workers);
        }
        return Ok(());
    };
    let mut stopped = false;
    if ours {
        match keep_or_stop(d, dep, first, cx, head_running, &workers, &want)? {
            Verdict::Keep => {
                ensure_ready(cx, dep, first, &want);
                return Ok(());
            }
            Verdict::Stop(action, why) => {
                cx.push(*action, why);
                stopped = true;
            }
            Verdict::Free => {}
        }
    }
    // What another deployment runs on the hosts this launch needs goes first.
    for host in &want.hosts {
        let container = &cluster.container;
        let held = holder(d, cx, host, container)
            .map_err(|why| format!("{why}: {} is not launched until it can be seen", want.model))?;
        if let Some(other) = held.filter(|h| h.deployment != dep.name) {
            let model = launch_record(cx, &other.head).map(|r| r.model.clone());
            cx.push(
                Action::StopModel {
                    host: other.head.clone(),
                    deployment: other.deployment.clone(),
                    model,
                    reason: StopReason::Swap {
                        to: want.model.clone(),
                    },
                },
                format!(
                    "{} on deployment `{}` needs {host}, which deployment `{}` holds",
                    want.model, dep.name, other.deployment
                ),
            );
            stopped = true;
        }
    }
    let download = downloads(cx, &want)?;
    if stopped {
        cx.push(
            settle(cluster, &want),
            "let GPU memory be released before the next launch",
        );
    }
    for host in download {
        cx.push(
            Action::Download {
                host: host.clone(),
                model: want.model.clone(),
                repo: want.repo.clone(),
            },
            format!("{} is not in {host}'s Hugging Face cache", want.repo),
        );
    }
    let why = launch_why(d, dep, first, cx, stopped, &want);
    cx.push(launch(cx, dep, &want)?, why);
    cx.push(
        wait_ready(&want, dep),
        "a launch is done when the model answers",
    );
    Ok(())
}

/// What is wanted: the launch of `active_model` (`None`: nothing is desired, or the
/// desired model cannot be launched, which validation reports).
fn wanted(d: &Desired, dep: &Deployment) -> Option<LaunchSpec> {
    let addresses: BTreeMap<String, String> = d
        .hosts
        .iter()
        .map(|(k, h)| (k.clone(), h.launcher_address().to_string()))
        .collect();
    let catalog = catalog(d);
    dep.active_model
        .as_ref()
        .and_then(|m| catalog.get(m))
        .and_then(|e| launch_spec(e, &dep.cluster, &addresses))
}

/// The workers whose vLLM container runs and belongs to this deployment (a worker that
/// runs another deployment's model is that deployment's to stop). A worker whose
/// containers are unknown matters only for a cluster model, which is not launched until
/// every worker can be seen.
fn workers_running(
    d: &Desired,
    cx: &Ctx<'_>,
    dep: &Deployment,
    want: Option<&LaunchSpec>,
) -> Result<Vec<String>, Unknown> {
    let cluster = &dep.cluster;
    let mut running = Vec::new();
    for w in &cluster.workers {
        match holder(d, cx, w, &cluster.container) {
            Ok(Some(held)) => {
                if held.deployment == dep.name {
                    running.push(w.clone());
                }
            }
            Ok(None) => {}
            Err(why) if want.is_some_and(|s| s.mode == Mode::Cluster) => {
                return Err(format!(
                    "{why}: the cluster model is not launched until it can be seen"
                ))
            }
            Err(_) => {}
        }
    }
    Ok(running)
}

/// Nothing is desired: stop the model on the head, or else the leftovers on workers
/// (unless another deployment's launch holds them).
fn stop_unwanted(cx: &mut Ctx<'_>, dep: &Deployment, head_running: bool, workers: &[String]) {
    let head = dep.cluster.head.as_str();
    if head_running {
        let model = launch_record(cx, head).map(|r| r.model.clone());
        cx.push(
            Action::StopModel {
                host: head.into(),
                deployment: dep.name.clone(),
                model,
                reason: StopReason::NoneDesired,
            },
            if dep.name == DEFAULT_NAME {
                "no model is desired (active_model: null)".to_string()
            } else {
                format!(
                    "no model is desired on deployment `{}` (active_model: null)",
                    dep.name
                )
            },
        );
    } else if !workers.is_empty() {
        cx.push(cleanup(dep), cleanup_why(workers));
    }
}

/// What runs in the head's vLLM container, as far as the observation tells.
enum Running {
    /// A model with a name: from the launch record (with its fingerprint and settings);
    /// launched by hand but serving the desired repo (adopted: its settings are taken to
    /// be the desired ones); or serving other names ("unknown (…)").
    Model {
        name: String,
        fingerprint: Option<String>,
        settings: Overrides,
    },
    /// No launch record (known), and vLLM (known) serves nothing yet.
    Unidentified,
    /// Not enough is known to tell.
    Unknown,
}

/// What runs in the head's vLLM container (which runs).
fn what_runs(cx: &Ctx<'_>, dep: &Deployment, first: bool, want: &LaunchSpec) -> Running {
    let head = dep.cluster.head.as_str();
    if let Some(r) = launch_record(cx, head) {
        return Running::Model {
            name: r.model.clone(),
            fingerprint: Some(r.fingerprint.clone()),
            settings: r.settings.clone(),
        };
    }
    let record_known = cx.host(head).is_some_and(|h| h.launch.get().is_some());
    let vllm = cx.obs.vllm_of(&dep.name, first);
    match vllm.get().map(|v| &v.models) {
        Some(served) if served.contains(&want.repo) => Running::Model {
            name: want.model.clone(),
            fingerprint: None,
            settings: want.settings.clone(),
        },
        Some(served) if !served.is_empty() => Running::Model {
            name: format!("unknown ({})", served.join(", ")),
            fingerprint: None,
            settings: Overrides::default(),
        },
        Some(_) if record_known => Running::Unidentified,
        _ => Running::Unknown,
    }
}

/// Whether what runs stays.
enum Verdict {
    /// The desired model runs, as desired, alive.
    Keep,
    /// What runs must go before the launch: this stop, and why.
    Stop(Box<Action>, String),
    /// Nothing is in the way of the launch.
    Free,
}

/// Whether what runs stays or is stopped, and why: another model (a swap), the desired
/// one with other settings (a relaunch), a crashed one, an unidentified one, or leftover
/// containers on workers while the head runs none.
fn keep_or_stop(
    d: &Desired,
    dep: &Deployment,
    first: bool,
    cx: &Ctx<'_>,
    head_running: bool,
    workers: &[String],
    want: &LaunchSpec,
) -> Result<Verdict, Unknown> {
    let cluster = &dep.cluster;
    let head = cluster.head.as_str();
    if !head_running {
        return Ok(if workers.is_empty() {
            Verdict::Free
        } else {
            Verdict::Stop(Box::new(cleanup(dep)), cleanup_why(workers))
        });
    }
    let stop = |model: Option<String>, reason: StopReason, why: String| {
        let action = Action::StopModel {
            host: head.into(),
            deployment: dep.name.clone(),
            model,
            reason,
        };
        Ok(Verdict::Stop(Box::new(action), why))
    };
    let (name, fingerprint, settings) = match what_runs(cx, dep, first, want) {
        Running::Unknown => {
            return Err(format!(
                "{head}: {} runs but what it serves is unknown: no model is started or stopped",
                cluster.container
            ))
        }
        Running::Unidentified => {
            return stop(
                None,
                StopReason::Unidentified,
                format!(
                "{} runs on {head} without a launch record and serves nothing yet; {} is desired",
                cluster.container, want.model
            ),
            )
        }
        Running::Model {
            name,
            fingerprint,
            settings,
        } => (name, fingerprint, settings),
    };
    if name != want.model {
        let why = format!("{} is desired instead of {name}", want.model);
        let to = want.model.clone();
        return stop(Some(name), StopReason::Swap { to }, why);
    }
    if fingerprint.is_some_and(|fp| fp != want.fingerprint) {
        let changes = settings_diff(&settings, &want.settings);
        let why = if changes.is_empty() {
            "the launch command changed".to_string()
        } else {
            format!("settings changed: {}", changes.join(", "))
        };
        return stop(Some(name), StopReason::Relaunch { changes }, why);
    }
    match crash_reason_of(d, cx.obs, dep, first) {
        Some(why) => stop(Some(name), StopReason::Crashed { why: why.clone() }, why),
        None => Ok(Verdict::Keep),
    }
}

/// The desired model runs: wait until it serves, unless it already does.
fn ensure_ready(cx: &mut Ctx<'_>, dep: &Deployment, first: bool, want: &LaunchSpec) {
    let ready = cx
        .obs
        .vllm_of(&dep.name, first)
        .get()
        .is_some_and(|v| want.served.iter().any(|n| v.models.contains(n)));
    if !ready {
        cx.push(
            wait_ready(want, dep),
            format!("{} is launched but not serving yet", want.model),
        );
    }
}

/// The hosts the model needs that do not hold it in their Hugging Face cache. A host
/// whose cache cannot be seen stops the plan: the model is not launched blind.
fn downloads(cx: &Ctx<'_>, want: &LaunchSpec) -> Result<Vec<String>, Unknown> {
    let mut missing = Vec::new();
    for h in &want.hosts {
        let Some(cache) = cx.host(h).map(|o| &o.hf_cache) else {
            return Err(format!(
                "{h}: not observed yet: {} is not launched",
                want.model
            ));
        };
        match cache.get() {
            Some(set) if set.contains(&want.repo) => {}
            Some(_) => missing.push(h.clone()),
            None => {
                let why = cache.why().unwrap_or("unknown");
                return Err(format!(
                    "{h}: HF cache unknown ({why}): {} is not launched until it can be seen",
                    want.model
                ));
            }
        }
    }
    Ok(missing)
}

/// The wait after a stop for the memory the next model needs.
fn settle(cluster: &Cluster, want: &LaunchSpec) -> Action {
    Action::SettleGpu {
        hosts: want.hosts.clone(),
        below_mib: cluster.settle_below_mib,
        free_share: want
            .settings
            .gpu_memory
            .unwrap_or(super::VLLM_DEFAULT_GPU_MEMORY),
        timeout_secs: cluster.settle_timeout_secs,
    }
}

/// Why the launch: after a stop, after a crash, or because nothing runs.
fn launch_why(
    d: &Desired,
    dep: &Deployment,
    first: bool,
    cx: &Ctx<'_>,
    stopped: bool,
    want: &LaunchSpec,
) -> String {
    if stopped {
        format!("{} is desired", want.model)
    } else if let Some(crash) = crash_reason_of(d, cx.obs, dep, first) {
        format!("{crash}; relaunching")
    } else {
        format!("{} is desired and nothing runs", want.model)
    }
}

/// The launch, in the argv of the launcher generation seen on the head; no launch while
/// the generation is unknown or the launcher refuses the settings.
fn launch(cx: &Ctx<'_>, dep: &Deployment, want: &LaunchSpec) -> Result<Action, Unknown> {
    let cluster = &dep.cluster;
    let head = cluster.head.as_str();
    let generation = launcher_generation(cx, head, want)?;
    let argv = crate::launcher::launch_argv(generation, want, cluster)?;
    Ok(Action::LaunchModel {
        spec: want.clone(),
        host: head.into(),
        deployment: dep.name.clone(),
        generation,
        argv,
    })
}

/// The launcher generation on the head (its argv depends on it).
fn launcher_generation(cx: &Ctx<'_>, head: &str, want: &LaunchSpec) -> Result<Generation, Unknown> {
    let Some(launcher) = cx.host(head).map(|h| &h.launcher) else {
        return Err(format!(
            "{head}: not observed yet: {} is not launched",
            want.model
        ));
    };
    let Some(l) = launcher.get() else {
        return Err(format!(
            "{head}: launcher checkout unknown ({}): {} is not launched",
            launcher.why().unwrap_or("not observed"),
            want.model
        ));
    };
    l.generation.ok_or_else(|| {
        format!(
            "{head}: the launcher generation is unknown ({}): {} is not launched",
            l.generation_error.as_deref().unwrap_or("not detected yet"),
            want.model
        )
    })
}

/// Waiting for `want` to answer on the head.
fn wait_ready(want: &LaunchSpec, dep: &Deployment) -> Action {
    Action::WaitReady {
        model: want.model.clone(),
        repo: want.repo.clone(),
        served: want.served.clone(),
        host: dep.cluster.head.clone(),
        deployment: dep.name.clone(),
        port: dep.cluster.port,
        timeout_secs: want.start_timeout_secs,
    }
}

/// The stop of leftover vLLM containers on workers while the head runs none (the stop
/// names every node).
fn cleanup(dep: &Deployment) -> Action {
    Action::StopModel {
        host: dep.cluster.head.clone(),
        deployment: dep.name.clone(),
        model: None,
        reason: StopReason::Cleanup,
    }
}

/// Why [`cleanup`].
fn cleanup_why(workers: &[String]) -> String {
    format!(
        "vLLM containers still run on {} while the head runs none",
        workers.join(", ")
    )
}
