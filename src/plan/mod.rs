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

mod holder;
mod model;
pub mod render;

pub use holder::crash_reason;
use model::{containers_of, model_steps};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::catalog::LaunchSpec;
use crate::model::desired::{Desired, UpdatePolicy};
use crate::model::observed::{HostObserved, Observed};

pub use render::render;

/// Why a model is stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    /// The model crashed (its container outlived it, or it stopped answering).
    Crashed {
        /// What was seen.
        why: String,
    },
}

/// One typed step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", tag = "action")]
// A plan holds a handful of actions: the launch's size is not worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Action {
    /// Ensure no model runs: `launch-cluster.sh stop` in the launcher dir on the head.
    StopModel {
        /// The head.
        host: String,
        /// The deployment whose launch is stopped (its hosts and port are verified).
        #[serde(default)]
        deployment: String,
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
        /// On unified memory (GB10: `nvidia-smi` reports no GPU memory), wait instead until
        /// this share of the host's memory is available: the share the next launch asks
        /// vLLM for (`--gpu-memory-utilization`), which vLLM checks at start.
        #[serde(default = "default_free_share")]
        free_share: f64,
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
        /// The deployment it is launched for.
        #[serde(default)]
        deployment: String,
        /// The launcher generation detected on the head.
        generation: crate::launcher::Generation,
        /// The exact launcher argv (run in the launcher directory).
        argv: Vec<String>,
    },
    /// Wait until the model answers on the head's port.
    WaitReady {
        /// Catalog name.
        model: String,
        /// Repo (listed by `/v1/models` when ready).
        repo: String,
        /// The head.
        host: String,
        /// The deployment it is launched for.
        #[serde(default)]
        deployment: String,
        /// The names vLLM answers to (`--served-model-name`, else the repo).
        #[serde(default)]
        served: Vec<String>,
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
    /// `git pull && ./build-and-copy.sh -c <workers>` in the launcher checkout.
    UpdateLauncher {
        /// The head.
        host: String,
        /// Commits behind.
        behind: u32,
    },
    /// Check out a pinned commit in the launcher checkout, then build the image and copy
    /// it to the workers (`./build-and-copy.sh -c <workers>`), so the image matches.
    CheckoutLauncher {
        /// The head.
        host: String,
        /// Pinned commit.
        commit: String,
        /// Current HEAD.
        from: String,
    },
    /// Leave a pin: check out again the branch the checkout followed before it was
    /// pinned (and build when that moved HEAD).
    ReturnLauncher {
        /// The head.
        host: String,
        /// The branch to follow again.
        branch: String,
        /// Current HEAD (the old pin).
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

    /// For a stop, launch or wait of a deployment's model: whether it acts for deployment
    /// `name` (`first`: the file's first one, which a step without a deployment name
    /// means). `None` for every other action.
    pub fn for_deployment(&self, name: &str, first: bool) -> Option<bool> {
        match self {
            Action::StopModel { deployment, .. }
            | Action::LaunchModel { deployment, .. }
            | Action::WaitReady { deployment, .. } => {
                Some(deployment == name || (deployment.is_empty() && first))
            }
            _ => None,
        }
    }
}

/// An action and why it is needed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    /// What to do.
    #[serde(flatten)]
    pub action: Action,
    /// Why, for people.
    pub why: String,
}

/// The plan: what to do, and whether the planner saw enough to be sure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    let Some(cluster) = d.primary_cluster() else {
        return;
    };
    let head = cluster.head.clone();
    let policy = &d.updates.launcher;
    let model_busy = cx.plan.steps.iter().any(|s| s.action.is_model_action());
    let observed = cx.host(&head).map(|h| &h.launcher);
    let info = match observed.and_then(|f| f.get()) {
        Some(v) => v.clone(),
        // Manual and notify change nothing unless a pin is left, which needs the checkout
        // seen; not seeing it is then no reason to call the plan incomplete.
        None if matches!(policy, UpdatePolicy::Manual | UpdatePolicy::Notify) => return,
        None => {
            let why = observed.and_then(|f| f.why()).unwrap_or("not observed yet");
            cx.unknown(format!("{head}: launcher checkout unknown ({why})"));
            return;
        }
    };
    if model_busy {
        return;
    }
    match policy {
        UpdatePolicy::Pin(commit) => {
            if !info.head.starts_with(commit.as_str()) {
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
        UpdatePolicy::Manual | UpdatePolicy::Notify | UpdatePolicy::Auto => {
            if let Some(branch) = left_pin(&info) {
                cx.push(
                    Action::ReturnLauncher {
                        host: head,
                        branch: branch.to_string(),
                        from: info.head.clone(),
                    },
                    format!("no longer pinned; follow {branch} again"),
                );
                return;
            }
            let Some(n) = info.behind.filter(|n| *n > 0) else {
                return;
            };
            if !matches!(policy, UpdatePolicy::Auto) {
                return;
            }
            if d.updates.auto_only_when_idle {
                match serving(d, cx) {
                    Serving::No => {}
                    Serving::Yes => return,
                    Serving::Unknown(why) => {
                        cx.unknown(format!(
                            "{head}: whether a model serves is unknown ({why}); `auto_only_when_idle` waits"
                        ));
                        return;
                    }
                }
            }
            cx.push(
                Action::UpdateLauncher {
                    host: head,
                    behind: n,
                },
                if d.updates.auto_only_when_idle {
                    format!("{n} commits behind upstream; policy auto, no model serving")
                } else {
                    format!("{n} commits behind upstream; policy auto")
                },
            );
        }
    }
}

/// The branch to return to when a pin was left: the checkout is detached at the commit
/// spark-control pinned it to and records the branch it left. A checkout detached by
/// hand (no record) is left alone.
fn left_pin(info: &crate::model::observed::LauncherObserved) -> Option<&str> {
    match (&info.branch, &info.pinned_from) {
        (None, Some(b)) => Some(b.as_str()),
        _ => None,
    }
}

/// Whether a model serves now (for `auto_only_when_idle`).
enum Serving {
    Yes,
    No,
    Unknown(String),
}

/// A model serves when vLLM's API lists one, or a model is desired (it is, or is about
/// to be, up: the planner added no model step, so it runs as desired).
fn serving(d: &Desired, cx: &Ctx<'_>) -> Serving {
    if d.primary_model().is_some() {
        return Serving::Yes;
    }
    match cx.obs.vllm.get() {
        Some(v) if v.models.is_empty() => Serving::No,
        Some(_) => Serving::Yes,
        None => Serving::Unknown(cx.obs.vllm.why().unwrap_or("not observed yet").to_string()),
    }
}

#[cfg(test)]
mod tests;

/// vLLM's own default `--gpu-memory-utilization`.
pub const VLLM_DEFAULT_GPU_MEMORY: f64 = 0.9;

fn default_free_share() -> f64 {
    VLLM_DEFAULT_GPU_MEMORY
}
