//! The planner: `plan(&Desired, &Observed) -> Plan`, pure and deterministic.
//!
//! A plan is a value: ordered, typed actions, each with the reason it is needed, plus
//! whether the planner could see everything it needed. It is shown (CLI, UI, logs) and
//! then run by the executor. Rules (see ARCHITECTURE.md):
//! - never act on ignorance: an unknown fact yields no stop or launch for that target;
//!   the plan then lists what it could not see and says it is incomplete;
//! - a swap is stop → settle → (download) → launch → wait ready; never two models up;
//! - a relaunch happens only when the effective launch (fingerprint) changed;
//! - every action is an "ensure": running it on a world already in that state is a no-op.
//!
//! No IO, no tokio, no clock.

pub mod render;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::catalog::{catalog, launch_spec, settings_diff, LaunchSpec};
use crate::model::desired::{Desired, Mode, UpdatePolicy};
use crate::model::observed::{HostObserved, Observed};

pub use render::render;

/// Why a model is stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StopReason {
    /// Another model is desired.
    Swap {
        /// The model desired instead.
        to: String,
    },
    /// The same model, with a changed launch.
    Relaunch {
        /// What changed, for people.
        changes: Vec<String>,
    },
    /// No model is desired.
    NoneDesired,
    /// Leftover containers on workers while the head runs nothing.
    Cleanup,
    /// Something runs that spark-control cannot identify, and another model is desired.
    Unidentified,
}

/// One typed step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// Ensure no model runs: `launch-cluster.sh stop` in the launcher dir on the head.
    StopModel {
        /// The head.
        host: String,
        /// What runs now, when known.
        model: Option<String>,
        /// Why.
        reason: StopReason,
    },
    /// Wait until GPU memory used is below a threshold on these hosts (after a stop).
    SettleGpu {
        /// Hosts to watch.
        hosts: Vec<String>,
        /// Threshold, MiB.
        below_mib: u64,
        /// Upper bound, seconds.
        timeout_secs: u64,
    },
    /// Ensure `repo` is in `host`'s Hugging Face cache.
    Download {
        /// Target host.
        host: String,
        /// Catalog name.
        model: String,
        /// Repo.
        repo: String,
    },
    /// Ensure the model runs (launch on the head).
    LaunchModel {
        /// The launch.
        spec: LaunchSpec,
        /// The head.
        host: String,
    },
    /// Wait until the model answers on the head's port.
    WaitReady {
        /// Catalog name.
        model: String,
        /// Repo (listed by `/v1/models` when ready).
        repo: String,
        /// The head.
        host: String,
        /// vLLM port.
        port: u16,
        /// Upper bound, seconds.
        timeout_secs: u64,
    },
    /// Ensure the service's container is stopped on `host`.
    StopService {
        /// Service name.
        service: String,
        /// Host.
        host: String,
        /// Container name.
        container: String,
    },
    /// Ensure the service's container runs on `host`.
    StartService {
        /// Service name.
        service: String,
        /// Host.
        host: String,
        /// Container name.
        container: String,
        /// Port it serves on.
        port: u16,
    },
    /// Restart a service's container (an imperative one-shot; the planner never emits it).
    RestartService {
        /// Service name.
        service: String,
        /// Host.
        host: String,
        /// Container name.
        container: String,
    },
    /// `git fetch` in the launcher checkout, to learn what is new upstream (one-shot).
    FetchLauncher {
        /// The head.
        host: String,
    },
    /// `git pull && ./build-and-copy.sh -c` in the launcher checkout.
    UpdateLauncher {
        /// The head.
        host: String,
        /// Commits behind.
        behind: u32,
    },
    /// Check out a pinned commit in the launcher checkout.
    CheckoutLauncher {
        /// The head.
        host: String,
        /// Pinned commit.
        commit: String,
        /// Current HEAD.
        from: String,
    },
}

impl Action {
    /// Whether this action changes which model runs (used by `auto` updates and the proxy).
    pub fn is_model_action(&self) -> bool {
        matches!(
            self,
            Action::StopModel { .. }
                | Action::SettleGpu { .. }
                | Action::Download { .. }
                | Action::LaunchModel { .. }
                | Action::WaitReady { .. }
        )
    }
}

/// An action and why it is needed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// What to do.
    #[serde(flatten)]
    pub action: Action,
    /// Why, for people.
    pub why: String,
}

/// The plan: what to do, and whether the planner saw enough to be sure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Observation generation this plan was made from.
    pub generation: u64,
    /// Ordered steps.
    pub steps: Vec<Step>,
    /// False when something needed could not be seen (see `unknown`).
    pub complete: bool,
    /// What could not be seen, and what was therefore not decided.
    pub unknown: Vec<String>,
}

impl Plan {
    /// No steps.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

struct Ctx<'a> {
    plan: Plan,
    obs: &'a Observed,
}

impl Ctx<'_> {
    fn push(&mut self, action: Action, why: impl Into<String>) {
        self.plan.steps.push(Step {
            action,
            why: why.into(),
        });
    }
    fn unknown(&mut self, what: String) {
        self.plan.complete = false;
        if !self.plan.unknown.contains(&what) {
            self.plan.unknown.push(what);
        }
    }
    fn host(&self, name: &str) -> Option<&HostObserved> {
        self.obs.hosts.get(name)
    }
}

/// Makes the plan that converges `observed` towards `desired`.
pub fn plan(desired: &Desired, observed: &Observed) -> Plan {
    let mut cx = Ctx {
        plan: Plan {
            generation: observed.generation,
            steps: Vec::new(),
            complete: true,
            unknown: Vec::new(),
        },
        obs: observed,
    };
    let svc_stops = service_stops(desired, &mut cx);
    for (a, why) in svc_stops {
        cx.push(a, why);
    }
    model_steps(desired, &mut cx);
    let svc_starts = service_starts(desired, &mut cx);
    for (a, why) in svc_starts {
        cx.push(a, why);
    }
    launcher_steps(desired, &mut cx);
    cx.plan
}

fn containers_of<'a>(
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

fn model_steps(d: &Desired, cx: &mut Ctx<'_>) {
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
        .map(|(k, h)| (k.clone(), h.address.clone()))
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
                        _ => need_launch = false,
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
        let ready = served.as_ref().is_some_and(|l| l.contains(&want.repo));
        if !ready {
            cx.push(
                Action::WaitReady {
                    model: want.model.clone(),
                    repo: want.repo.clone(),
                    host: head.into(),
                    port: cluster.port,
                    timeout_secs: want.start_timeout_secs,
                },
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
    } else {
        format!("{} is desired and nothing runs", want.model)
    };
    cx.push(
        Action::LaunchModel {
            spec: want.clone(),
            host: head.into(),
        },
        why,
    );
    cx.push(
        Action::WaitReady {
            model: want.model.clone(),
            repo: want.repo.clone(),
            host: head.into(),
            port: cluster.port,
            timeout_secs: want.start_timeout_secs,
        },
        "a launch is done when the model answers".to_string(),
    );
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

fn service_stops(d: &Desired, cx: &mut Ctx<'_>) -> Vec<(Action, String)> {
    let mut out = Vec::new();
    for (name, svc) in &d.services {
        let container = svc.container_name(name);
        for host in d.hosts.keys() {
            let wanted_here = *host == svc.host && svc.running;
            match containers_of(cx, host) {
                Ok(c) => {
                    if c.get(container).is_some_and(|c| c.running) && !wanted_here {
                        let why = if *host != svc.host {
                            format!("{name} is placed on {}", svc.host)
                        } else {
                            format!("{name} should not run (running: false)")
                        };
                        out.push((
                            Action::StopService {
                                service: name.clone(),
                                host: host.clone(),
                                container: container.into(),
                            },
                            why,
                        ));
                    }
                }
                Err(why) => {
                    if *host == svc.host {
                        cx.unknown(format!(
                            "{why}: service {name} is not started or stopped there"
                        ));
                    } else if d.hosts.len() > 1 {
                        cx.unknown(format!(
                            "{why}: whether a stray {name} runs there is unknown"
                        ));
                    }
                }
            }
        }
    }
    out
}

fn service_starts(d: &Desired, cx: &mut Ctx<'_>) -> Vec<(Action, String)> {
    let mut out = Vec::new();
    for (name, svc) in &d.services {
        if !svc.running {
            continue;
        }
        let container = svc.container_name(name);
        if let Ok(c) = containers_of(cx, &svc.host) {
            if !c.get(container).is_some_and(|c| c.running) {
                out.push((
                    Action::StartService {
                        service: name.clone(),
                        host: svc.host.clone(),
                        container: container.into(),
                        port: svc.port,
                    },
                    format!("{name} should run on {}", svc.host),
                ));
            }
        }
    }
    out
}

fn launcher_steps(d: &Desired, cx: &mut Ctx<'_>) {
    let Some(cluster) = &d.cluster else {
        return;
    };
    let head = cluster.head.clone();
    let policy = &d.updates.launcher;
    if matches!(policy, UpdatePolicy::Manual | UpdatePolicy::Notify) {
        return;
    }
    let model_busy = cx.plan.steps.iter().any(|s| s.action.is_model_action());
    let info = match cx.host(&head).map(|h| &h.launcher) {
        Some(f) => match f.get() {
            Some(v) => v.clone(),
            None => {
                let why = f.why().unwrap_or("unknown").to_string();
                cx.unknown(format!("{head}: launcher checkout unknown ({why})"));
                return;
            }
        },
        None => {
            cx.unknown(format!("{head}: launcher checkout not observed yet"));
            return;
        }
    };
    match policy {
        UpdatePolicy::Auto => {
            if let Some(n) = info.behind.filter(|n| *n > 0) {
                if model_busy {
                    return;
                }
                cx.push(
                    Action::UpdateLauncher {
                        host: head,
                        behind: n,
                    },
                    format!("{n} commits behind upstream; policy auto"),
                );
            }
        }
        UpdatePolicy::Pin(commit) => {
            if !info.head.starts_with(commit.as_str()) && !model_busy {
                cx.push(
                    Action::CheckoutLauncher {
                        host: head,
                        commit: commit.clone(),
                        from: info.head.clone(),
                    },
                    format!("pinned to {commit}"),
                );
            }
        }
        UpdatePolicy::Manual | UpdatePolicy::Notify => {}
    }
}

#[cfg(test)]
mod tests;
