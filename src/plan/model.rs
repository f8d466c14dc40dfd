//! Planning the model: stop, settle, download, launch, wait — or nothing. Never two models
//! up; never a stop or launch for a host whose containers are unknown. Pure.

use std::collections::BTreeMap;

use super::{Action, Ctx, StopReason};
use crate::model::catalog::{catalog, launch_spec, settings_diff, LaunchSpec};
use crate::model::desired::{Desired, Mode};

pub(super) fn containers_of<'a>(
    cx: &'a Ctx<'_>,
    host: &str,
) -> Result<&'a BTreeMap<String, crate::model::observed::ContainerObserved>, String> {
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

pub(super) fn model_steps(d: &Desired, cx: &mut Ctx<'_>) {
    let Some(cluster) = &d.cluster else {
        return;
    };
    let head = cluster.head.as_str();
    let head_containers = match containers_of(cx, head) {
        Ok(c) => c,
        Err(why) => {
            cx.unknown(format!("{why}: no model is started or stopped"));
            return;
        }
    };
    let head_running = head_containers
        .get(&cluster.container)
        .is_some_and(|c| c.running);
    let cat = catalog(d);
    let addresses: BTreeMap<String, String> = d
        .hosts
        .iter()
        .map(|(k, h)| (k.clone(), h.launcher_address().to_string()))
        .collect();
    let want: Option<LaunchSpec> = d
        .active_model
        .as_ref()
        .and_then(|m| cat.get(m))
        .and_then(|e| launch_spec(e, cluster, &addresses));

    // Workers matter for a cluster model and for leftover containers.
    let mut worker_running = Vec::new();
    for w in &cluster.workers {
        match containers_of(cx, w) {
            Ok(c) => {
                if c.get(&cluster.container).is_some_and(|c| c.running) {
                    worker_running.push(w.clone());
                }
            }
            Err(why) => {
                if want.as_ref().is_some_and(|s| s.mode == Mode::Cluster) {
                    cx.unknown(format!(
                        "{why}: the cluster model is not launched until it can be seen"
                    ));
                    return;
                }
            }
        }
    }

    let head_obs = cx.host(head);
    let record = head_obs.and_then(|h| h.launch.get()).cloned().flatten();
    let record_known = head_obs.is_some_and(|h| h.launch.get().is_some());
    let served: Option<Vec<String>> = cx.obs.vllm.get().map(|v| v.models.clone());

    let Some(want) = want else {
        // Nothing desired (or the desired model cannot be launched: validation says why).
        if head_running {
            let model = record.as_ref().map(|r| r.model.clone());
            cx.push(
                Action::StopModel {
                    host: head.into(),
                    model,
                    reason: StopReason::NoneDesired,
                },
                "no model is desired (active_model: null)",
            );
        } else if !worker_running.is_empty() {
            push_cleanup(cx, head, &worker_running);
        }
        return;
    };

    let mut need_launch = true;
    let mut stopped = false;
    if head_running {
        // What runs?
        let identity = match &record {
            Some(r) => Some((
                r.model.clone(),
                Some(r.fingerprint.clone()),
                r.settings.clone(),
            )),
            None => match &served {
                Some(list) if list.contains(&want.repo) => {
                    // Launched outside spark-control, serving the desired repo: adopt it.
                    Some((want.model.clone(), None, want.settings.clone()))
                }
                Some(list) if !list.is_empty() => Some((
                    format!("unknown ({})", list.join(", ")),
                    None,
                    Default::default(),
                )),
                _ => None,
            },
        };
        match identity {
            None => {
                if record_known && served.is_some() {
                    cx.push(
                        Action::StopModel {
                            host: head.into(),
                            model: None,
                            reason: StopReason::Unidentified,
                        },
                        format!(
                            "{} runs on {head} without a launch record and serves nothing yet; {} is desired",
                            cluster.container, want.model
                        ),
                    );
                    stopped = true;
                } else {
                    cx.unknown(format!(
                        "{head}: {} runs but what it serves is unknown: no model is started or stopped",
                        cluster.container
                    ));
                    return;
                }
            }
            Some((model, fp, settings)) => {
                if model == want.model {
                    match fp {
                        Some(fp) if fp != want.fingerprint => {
                            let changes = settings_diff(&settings, &want.settings);
                            let why = if changes.is_empty() {
                                "the launch command changed".to_string()
                            } else {
                                format!("settings changed: {}", changes.join(", "))
                            };
                            cx.push(
                                Action::StopModel {
                                    host: head.into(),
                                    model: Some(model),
                                    reason: StopReason::Relaunch { changes },
                                },
                                why,
                            );
                            stopped = true;
                        }
                        _ => match crash_reason(d, cx.obs) {
                            Some(why) => {
                                cx.push(
                                    Action::StopModel {
                                        host: head.into(),
                                        model: Some(model),
                                        reason: StopReason::Crashed { why: why.clone() },
                                    },
                                    why,
                                );
                                stopped = true;
                            }
                            None => need_launch = false,
                        },
                    }
                } else {
                    cx.push(
                        Action::StopModel {
                            host: head.into(),
                            model: Some(model.clone()),
                            reason: StopReason::Swap {
                                to: want.model.clone(),
                            },
                        },
                        format!("{} is desired instead of {model}", want.model),
                    );
                    stopped = true;
                }
            }
        }
    } else if !worker_running.is_empty() {
        push_cleanup(cx, head, &worker_running);
        stopped = true;
    }

    if !need_launch {
        let ready = served
            .as_ref()
            .is_some_and(|l| want.served.iter().any(|n| l.contains(n)));
        if !ready {
            cx.push(
                wait_ready(&want, head, cluster.port),
                format!("{} is launched but not serving yet", want.model),
            );
        }
        return;
    }

    // Downloads first: every host the model needs must hold it.
    let mut downloads = Vec::new();
    for h in &want.hosts {
        match cx.host(h).map(|o| &o.hf_cache) {
            Some(f) => match f.get() {
                Some(set) if set.contains(&want.repo) => {}
                Some(_) => downloads.push(h.clone()),
                None => {
                    let why = f.why().unwrap_or("unknown").to_string();
                    cx.unknown(format!(
                        "{h}: HF cache unknown ({why}): {} is not launched until it can be seen",
                        want.model
                    ));
                    return;
                }
            },
            None => {
                cx.unknown(format!(
                    "{h}: not observed yet: {} is not launched",
                    want.model
                ));
                return;
            }
        }
    }
    if stopped {
        cx.push(
            Action::SettleGpu {
                hosts: want.hosts.clone(),
                below_mib: cluster.settle_below_mib,
                free_share: want
                    .settings
                    .gpu_memory
                    .unwrap_or(super::VLLM_DEFAULT_GPU_MEMORY),
                timeout_secs: cluster.settle_timeout_secs,
            },
            "let GPU memory be released before the next launch".to_string(),
        );
    }
    for h in downloads {
        cx.push(
            Action::Download {
                host: h.clone(),
                model: want.model.clone(),
                repo: want.repo.clone(),
            },
            format!("{} is not in {h}'s Hugging Face cache", want.repo),
        );
    }
    let why = if stopped {
        format!("{} is desired", want.model)
    } else if let Some(crash) = crash_reason(d, cx.obs) {
        format!("{crash}; relaunching")
    } else {
        format!("{} is desired and nothing runs", want.model)
    };
    // The launcher argv depends on the launcher generation on the head.
    let launcher = cx.host(head).map(|h| &h.launcher);
    let generation = match launcher.map(|f| (f.get(), f.why())) {
        Some((Some(l), _)) => match (l.generation, &l.generation_error) {
            (Some(g), _) => g,
            (None, e) => {
                cx.unknown(format!(
                    "{head}: the launcher generation is unknown ({}): {} is not launched",
                    e.as_deref().unwrap_or("not detected yet"),
                    want.model
                ));
                return;
            }
        },
        Some((None, why)) => {
            cx.unknown(format!(
                "{head}: launcher checkout unknown ({}): {} is not launched",
                why.unwrap_or("not observed"),
                want.model
            ));
            return;
        }
        None => {
            cx.unknown(format!(
                "{head}: not observed yet: {} is not launched",
                want.model
            ));
            return;
        }
    };
    let argv = match crate::launcher::launch_argv(generation, &want, cluster) {
        Ok(a) => a,
        Err(e) => {
            cx.unknown(e);
            return;
        }
    };
    cx.push(
        Action::LaunchModel {
            spec: want.clone(),
            host: head.into(),
            generation,
            argv,
        },
        why,
    );
    cx.push(
        wait_ready(&want, head, cluster.port),
        "a launch is done when the model answers".to_string(),
    );
}

/// Why the model that runs on the head has crashed, if it has: its container runs but the
/// `vllm serve` process inside is gone while no launcher of ours is still starting it
/// (generation B keeps the container alive); or, after it was ready once (the launch
/// record's `ready_at`), its container is gone (generation A's launcher stops it when
/// vLLM dies) or `/health` failed three checks in a row. A deliberate stop clears
/// `ready_at` first, so it is never taken for a crash.
pub fn crash_reason(d: &Desired, o: &crate::model::observed::Observed) -> Option<String> {
    use crate::launcher::LauncherState;
    let c = d.cluster.as_ref()?;
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

/// Stop leftover vLLM containers on workers while the head runs none.
fn push_cleanup(cx: &mut Ctx<'_>, head: &str, workers: &[String]) {
    cx.push(
        Action::StopModel {
            host: head.into(),
            model: None,
            reason: StopReason::Cleanup,
        },
        format!(
            "vLLM containers still run on {} while the head runs none",
            workers.join(", ")
        ),
    );
}
