//! Planning the model: stop, settle, download, launch, wait — or nothing. Never two models
//! up; never a stop or launch for a host whose containers are unknown. Pure.
//!
//! [`model_steps`] reads as the decisions it makes, each a small function: what is wanted
//! ([`wanted`]), what runs ([`what_runs`], [`workers_running`]), whether what runs stays or
//! is stopped and why ([`keep_or_stop`]), which hosts must download ([`downloads`]), and
//! whether the launch can be made ([`launch`]: the launcher generation and its argv).
//! Whatever cannot be seen ends the plan there with an "unknown" line: the steps already
//! planned stay (a stop of a model that must go anyway), nothing after them is planned.

use std::collections::BTreeMap;

use super::{Action, Ctx, StopReason};
use crate::launcher::Generation;
use crate::model::catalog::{catalog, launch_spec, settings_diff, LaunchSpec};
use crate::model::desired::{Cluster, Desired, Mode, Overrides};
use crate::model::observed::{ContainerObserved, LaunchRecord};

/// What cannot be seen, for the plan's "unknown" list: the decision is not made.
type Unknown = String;

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

/// The model's steps, appended to the plan in `cx`.
pub(super) fn model_steps(d: &Desired, cx: &mut Ctx<'_>) {
    let Some(cluster) = d.primary_cluster() else {
        return;
    };
    if let Err(unknown) = plan_model(d, cluster, cx) {
        cx.unknown(unknown);
    }
}

/// The decisions in order; an `Err` is what could not be seen, and ends the plan there.
fn plan_model(d: &Desired, cluster: &Cluster, cx: &mut Ctx<'_>) -> Result<(), Unknown> {
    let head = cluster.head.as_str();
    let head_running = containers_of(cx, head)
        .map_err(|why| format!("{why}: no model is started or stopped"))?
        .get(&cluster.container)
        .is_some_and(|c| c.running);
    let want = wanted(d, cluster);
    let workers = workers_running(cx, cluster, want.as_ref())?;
    let Some(want) = want else {
        stop_unwanted(cx, head, head_running, &workers);
        return Ok(());
    };
    let stopped = match keep_or_stop(d, cluster, cx, head_running, &workers, &want)? {
        Verdict::Keep => {
            ensure_ready(cx, cluster, &want);
            return Ok(());
        }
        Verdict::Stop(action, why) => {
            cx.push(*action, why);
            true
        }
        Verdict::Free => false,
    };
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
    let why = launch_why(d, cx, stopped, &want);
    cx.push(launch(cx, cluster, &want)?, why);
    cx.push(
        wait_ready(&want, head, cluster.port),
        "a launch is done when the model answers",
    );
    Ok(())
}

/// What is wanted: the launch of `active_model` (`None`: nothing is desired, or the
/// desired model cannot be launched, which validation reports).
fn wanted(d: &Desired, cluster: &Cluster) -> Option<LaunchSpec> {
    let addresses: BTreeMap<String, String> = d
        .hosts
        .iter()
        .map(|(k, h)| (k.clone(), h.launcher_address().to_string()))
        .collect();
    let catalog = catalog(d);
    d.primary_model()
        .and_then(|m| catalog.get(m))
        .and_then(|e| launch_spec(e, cluster, &addresses))
}

/// The workers whose vLLM container runs. A worker whose containers are unknown matters
/// only for a cluster model, which is not launched until every worker can be seen.
fn workers_running(
    cx: &Ctx<'_>,
    cluster: &Cluster,
    want: Option<&LaunchSpec>,
) -> Result<Vec<String>, Unknown> {
    let mut running = Vec::new();
    for w in &cluster.workers {
        match containers_of(cx, w) {
            Ok(c) => {
                if c.get(&cluster.container).is_some_and(|c| c.running) {
                    running.push(w.clone());
                }
            }
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

/// Nothing is desired: stop the model on the head, or else the leftovers on workers.
fn stop_unwanted(cx: &mut Ctx<'_>, head: &str, head_running: bool, workers: &[String]) {
    if head_running {
        let model = launch_record(cx, head).map(|r| r.model.clone());
        cx.push(
            Action::StopModel {
                host: head.into(),
                model,
                reason: StopReason::NoneDesired,
            },
            "no model is desired (active_model: null)",
        );
    } else if !workers.is_empty() {
        cx.push(cleanup(head), cleanup_why(workers));
    }
}

/// The launch record on the head, if it is known and there is one.
fn launch_record<'a>(cx: &'a Ctx<'_>, head: &str) -> Option<&'a LaunchRecord> {
    cx.host(head)
        .and_then(|h| h.launch.get())
        .and_then(Option::as_ref)
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
fn what_runs(cx: &Ctx<'_>, head: &str, want: &LaunchSpec) -> Running {
    if let Some(r) = launch_record(cx, head) {
        return Running::Model {
            name: r.model.clone(),
            fingerprint: Some(r.fingerprint.clone()),
            settings: r.settings.clone(),
        };
    }
    let record_known = cx.host(head).is_some_and(|h| h.launch.get().is_some());
    match cx.obs.vllm.get().map(|v| &v.models) {
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
    cluster: &Cluster,
    cx: &Ctx<'_>,
    head_running: bool,
    workers: &[String],
    want: &LaunchSpec,
) -> Result<Verdict, Unknown> {
    let head = cluster.head.as_str();
    if !head_running {
        return Ok(if workers.is_empty() {
            Verdict::Free
        } else {
            Verdict::Stop(Box::new(cleanup(head)), cleanup_why(workers))
        });
    }
    let stop = |model: Option<String>, reason: StopReason, why: String| {
        let action = Action::StopModel {
            host: head.into(),
            model,
            reason,
        };
        Ok(Verdict::Stop(Box::new(action), why))
    };
    let (name, fingerprint, settings) = match what_runs(cx, head, want) {
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
    match crash_reason(d, cx.obs) {
        Some(why) => stop(Some(name), StopReason::Crashed { why: why.clone() }, why),
        None => Ok(Verdict::Keep),
    }
}

/// The desired model runs: wait until it serves, unless it already does.
fn ensure_ready(cx: &mut Ctx<'_>, cluster: &Cluster, want: &LaunchSpec) {
    let ready = cx
        .obs
        .vllm
        .get()
        .is_some_and(|v| want.served.iter().any(|n| v.models.contains(n)));
    if !ready {
        cx.push(
            wait_ready(want, &cluster.head, cluster.port),
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
fn launch_why(d: &Desired, cx: &Ctx<'_>, stopped: bool, want: &LaunchSpec) -> String {
    if stopped {
        format!("{} is desired", want.model)
    } else if let Some(crash) = crash_reason(d, cx.obs) {
        format!("{crash}; relaunching")
    } else {
        format!("{} is desired and nothing runs", want.model)
    }
}

/// The launch, in the argv of the launcher generation seen on the head; no launch while
/// the generation is unknown or the launcher refuses the settings.
fn launch(cx: &Ctx<'_>, cluster: &Cluster, want: &LaunchSpec) -> Result<Action, Unknown> {
    let head = cluster.head.as_str();
    let generation = launcher_generation(cx, head, want)?;
    let argv = crate::launcher::launch_argv(generation, want, cluster)?;
    Ok(Action::LaunchModel {
        spec: want.clone(),
        host: head.into(),
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

/// Why the model that runs on the head has crashed, if it has: its container runs but the
/// `vllm serve` process inside is gone while no launcher of ours is still starting it
/// (generation B keeps the container alive); or, after it was ready once (the launch
/// record's `ready_at`), its container is gone (generation A's launcher stops it when
/// vLLM dies) or `/health` failed three checks in a row. A deliberate stop clears
/// `ready_at` first, so it is never taken for a crash.
pub fn crash_reason(d: &Desired, o: &crate::model::observed::Observed) -> Option<String> {
    use crate::launcher::LauncherState;
    let c = d.primary_cluster()?;
    let head = c.head.as_str();
    let h = o.hosts.get(head)?;
    let record = h.launch.get()?.as_ref()?;
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
    let failures = o.vllm.get().map_or(0, |v| v.health_failures);
    if failures >= 3 {
        return Some(format!(
            "vLLM ({}) stopped answering on {head}: /health failed {failures} checks in a row after it was ready",
            record.model
        ));
    }
    None
}

/// Waiting for `want` to answer on the head.
fn wait_ready(want: &LaunchSpec, head: &str, port: u16) -> Action {
    Action::WaitReady {
        model: want.model.clone(),
        repo: want.repo.clone(),
        served: want.served.clone(),
        host: head.into(),
        port,
        timeout_secs: want.start_timeout_secs,
    }
}

/// The stop of leftover vLLM containers on workers while the head runs none (the stop
/// names every node).
fn cleanup(head: &str) -> Action {
    Action::StopModel {
        host: head.into(),
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
