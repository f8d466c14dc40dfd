//! The status snapshot: what the control loop publishes for every reader.
//!
//! One writer (the reconcile loop) replaces an `Arc<Status>` in a `tokio::sync::watch`;
//! many readers (HTTP, UI, proxy routes) borrow it briefly and never hold the borrow
//! across `.await`. Also the pure per-resource sync/health computation. No IO.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;

use crate::model::desired::{Desired, Mode};
use crate::model::observed::Observed;
use crate::model::Diagnostic;
use crate::plan::Plan;

/// Whether a resource matches the desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum Sync {
    /// Matches.
    InSync,
    /// Differs; the plan has steps for it.
    OutOfSync,
    /// Cannot tell (host unreachable, not polled yet).
    Unknown,
}

/// How a resource is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum Health {
    /// Up and answering.
    Healthy,
    /// Being changed (an operation is working on it, or a model is loading).
    Progressing,
    /// Should be up and is not, or failed.
    Degraded,
    /// Not present (and not desired, or not seen).
    Missing,
}

/// One resource's status.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Resource {
    /// `model`, `service`, `host`, `launcher`.
    pub kind: String,
    /// Its name (`qwen36`, `parakeet`, `spark1`, `launcher`).
    pub name: String,
    /// Sync status.
    pub sync: Sync,
    /// Health status.
    pub health: Health,
    /// A short explanation for people.
    pub detail: String,
}

/// The state of one operation (a plan being run).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Operation {
    /// Id (also the log's `op`).
    pub id: u64,
    /// The plan's text rendering when it started.
    pub plan_text: String,
    /// Index of the step running now.
    pub step: usize,
    /// Number of steps.
    pub steps: usize,
    /// What it is doing now, for people (`launch qwen36 on spark1`).
    pub phase: String,
    /// Progress within the step, 0..=1, when known (downloads).
    pub progress: Option<f64>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Outcome.
    pub outcome: Outcome,
    /// For a failed operation, what kind of failure ended it (`config`: a setting or
    /// the host's setup is wrong and a retry does the same, so none is scheduled;
    /// `check`, `remote`, `timeout`: retried after the backoff).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_kind: Option<crate::execute::ExecErrorKind>,
    /// Its steps in order, typed, each with when it started and ended (what the UI names
    /// and times: stopping, freeing memory, downloading, starting, ready).
    pub timeline: Vec<OpStep>,
    /// While a step waits on a download: its bytes, size, rate and time left.
    pub download: Option<OpDownload>,
}

/// One step of an operation and when it ran.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct OpStep {
    /// The step (its `action` names the kind).
    pub step: crate::plan::Step,
    /// When it started; `None`: not yet.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended; `None`: not yet, or the operation ended inside it.
    pub finished_at: Option<DateTime<Utc>>,
}

impl OpStep {
    /// A step that has not started.
    pub fn pending(step: crate::plan::Step) -> Self {
        OpStep {
            step,
            started_at: None,
            finished_at: None,
        }
    }
}

/// The download an operation waits on, summed over its hosts.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct OpDownload {
    /// The repo.
    pub repo: String,
    /// Bytes in the hosts' caches.
    pub bytes: u64,
    /// The size on every host together; `None`: the Hub gave no size.
    pub total: Option<u64>,
    /// Bytes per second over the last few samples, all hosts together.
    pub rate_bps: Option<f64>,
    /// Seconds left at that rate (the slowest host), when the size is known.
    pub eta_secs: Option<u64>,
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum Outcome {
    /// Still running.
    Running,
    /// Every step done and verified.
    Succeeded,
    /// A step failed (message says which and why).
    Failed(String),
    /// Superseded by a newer desired state or shutdown.
    Cancelled(String),
}

impl std::fmt::Display for Outcome {
    /// For people: `running`, `succeeded`, `failed: <why>`, `cancelled: <why>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Running => f.write_str("running"),
            Outcome::Succeeded => f.write_str("succeeded"),
            Outcome::Failed(why) => write!(f, "failed: {why}"),
            Outcome::Cancelled(why) => write!(f, "cancelled: {why}"),
        }
    }
}

/// Failure backoff: after repeated failures the loop stops trying until the desired state
/// changes or a retry is asked for.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Backoff {
    /// Consecutive failures of the same plan.
    pub failures: u32,
    /// When the next attempt is due (None: given up, waiting for a change or retry).
    pub next_attempt: Option<DateTime<Utc>>,
    /// The last error.
    pub error: String,
}

/// Everything readers see. Not a wire type: `/api/state` writes `http::wire::StateView`,
/// which borrows these fields.
#[derive(Debug, Clone)]
pub struct Status {
    /// The desired file being watched.
    pub desired_file: PathBuf,
    /// The desired state in force (the last valid file), if any.
    pub desired: Option<Arc<Desired>>,
    /// Problems of the file as it is on disk now (errors mean the last good one is in force).
    pub desired_diagnostics: Vec<Diagnostic>,
    /// Latest observation.
    pub observed: Arc<Observed>,
    /// The plan the loop would run now.
    pub plan: Arc<Plan>,
    /// Its text rendering.
    pub plan_text: String,
    /// Per-resource sync and health.
    pub resources: Vec<Resource>,
    /// The operation running now, or the last one.
    pub operation: Option<Operation>,
    /// The last operation that ended (while another runs, the one before it): a reader
    /// that missed a snapshot still learns how the previous operation ended.
    pub ended_operation: Option<Operation>,
    /// The last few operations that ended, oldest first (`ended_operation` is the last):
    /// a reader that gets merged snapshots (the state stream sends at most one per
    /// 200 ms) can miss two ends in a row — a swap's, then at once a launcher check's.
    pub recent_operations: Vec<Operation>,
    /// Failure backoff, when the last operation failed.
    pub backoff: Option<Backoff>,
    /// Why plan steps wait although nothing failed: a person cancelled an operation (they
    /// wait for a change of the desired state, a retry or a reconcile request).
    pub held: Option<String>,
    /// The last error anywhere in the loop.
    pub last_error: Option<String>,
    /// When the loop started.
    pub started_at: DateTime<Utc>,
    /// When this snapshot was made.
    pub updated_at: DateTime<Utc>,
}

impl Status {
    /// The snapshot before anything is known.
    pub fn initial(desired_file: PathBuf) -> Self {
        let now = Utc::now();
        Status {
            desired_file,
            desired: None,
            desired_diagnostics: Vec::new(),
            observed: Arc::new(Observed::default()),
            plan: Arc::new(Plan::default()),
            plan_text: String::new(),
            resources: Vec::new(),
            operation: None,
            ended_operation: None,
            recent_operations: Vec::new(),
            backoff: None,
            held: None,
            last_error: None,
            started_at: now,
            updated_at: now,
        }
    }

    /// Whether an operation runs now.
    pub fn busy(&self) -> bool {
        self.operation
            .as_ref()
            .is_some_and(|o| o.outcome == Outcome::Running)
    }
}

/// Per-resource sync and health from desired, observed, the plan and the operation.
pub fn resources(d: &Desired, o: &Observed, plan: &Plan, op: Option<&Operation>) -> Vec<Resource> {
    let running_op = op.is_some_and(|o| o.outcome == Outcome::Running);
    let mut out = Vec::new();
    // Hosts.
    for name in d.hosts.keys() {
        let h = o.hosts.get(name);
        let (sync, health, detail) = match h.map(|h| &h.reachable) {
            Some(f) => match f.get() {
                Some(true) => (
                    Sync::InSync,
                    Health::Healthy,
                    match h.and_then(|h| h.rtt_ms) {
                        Some(ms) => format!("reachable, SSH round trip {ms:.1} ms"),
                        None => "reachable".into(),
                    },
                ),
                Some(false) => (
                    Sync::Unknown,
                    Health::Degraded,
                    format!(
                        "unreachable: {}",
                        h.and_then(|h| h.containers.why()).unwrap_or("no answer")
                    ),
                ),
                None => (
                    Sync::Unknown,
                    Health::Missing,
                    f.why().unwrap_or("not polled yet").to_string(),
                ),
            },
            None => (Sync::Unknown, Health::Missing, "not polled yet".into()),
        };
        out.push(Resource {
            kind: "host".into(),
            name: name.clone(),
            sync,
            health,
            detail,
        });
    }
    // The model of each deployment.
    let deployments = d.deployments();
    let several = deployments.len() > 1;
    for (i, dep) in deployments.iter().enumerate() {
        let c = &dep.cluster;
        let ours = |a: &crate::plan::Action| {
            a.for_deployment(&dep.name, i == 0)
                .unwrap_or_else(|| a.is_model_action())
        };
        let model_steps = plan
            .steps
            .iter()
            .any(|s| s.action.is_model_action() && (!several || ours(&s.action)));
        let head_seen = o
            .hosts
            .get(&c.head)
            .is_some_and(|h| h.containers.get().is_some());
        let model = dep.active_model.clone().unwrap_or_else(|| "(none)".into());
        // Without a model of its own, what answers at its address is another deployment's
        // (one on the same head and port), unless the head's launch record is its own.
        let record_ours = o
            .hosts
            .get(&c.head)
            .and_then(|h| h.launch.get())
            .and_then(Option::as_ref)
            .is_some_and(|r| r.deployment.as_deref().is_none_or(|n| n == dep.name));
        let served = o
            .vllm_of(&dep.name, i == 0)
            .get()
            .filter(|_| !several || dep.active_model.is_some() || record_ours)
            .map(|v| v.models.clone())
            .unwrap_or_default();
        let sync = if !head_seen {
            Sync::Unknown
        } else if model_steps {
            Sync::OutOfSync
        } else {
            Sync::InSync
        };
        let health = match &dep.active_model {
            None if served.is_empty() => Health::Missing,
            None => Health::Progressing,
            Some(_) if !served.is_empty() && !model_steps => Health::Healthy,
            Some(_) if running_op || model_steps => Health::Progressing,
            Some(_) => Health::Degraded,
        };
        let mode = dep.active_model.as_ref().and_then(|m| {
            crate::model::catalog::catalog(d)
                .get(m)
                .map(|e| e.spec.mode)
        });
        let detail = if served.is_empty() {
            "nothing is serving".to_string()
        } else {
            format!(
                "serving {} on {}:{}{}",
                served.join(", "),
                c.head,
                c.port,
                if mode == Some(Mode::Cluster) {
                    " (cluster)"
                } else {
                    ""
                }
            )
        };
        out.push(Resource {
            kind: "model".into(),
            // The older file's one deployment is not named.
            name: if d.uses_deployments() {
                format!("{}: {model}", dep.name)
            } else {
                model
            },
            sync,
            health,
            detail,
        });
    }
    // Services.
    for (name, svc) in &d.services {
        let container = svc.container_name(name);
        let steps = plan.steps.iter().any(|s| match &s.action {
            crate::plan::Action::StartService { service, .. }
            | crate::plan::Action::StopService { service, .. } => service == name,
            _ => false,
        });
        let seen = o.hosts.get(&svc.host).and_then(|h| h.containers.get());
        let running = seen
            .and_then(|c| c.get(container))
            .is_some_and(|c| c.running);
        let healthy = o.services.get(name).and_then(|f| f.get()).copied();
        let sync = if seen.is_none() {
            Sync::Unknown
        } else if steps {
            Sync::OutOfSync
        } else {
            Sync::InSync
        };
        let health = match (svc.running, running, healthy) {
            (false, false, _) => Health::Missing,
            (_, true, Some(true)) => Health::Healthy,
            (true, _, _) if steps && running_op => Health::Progressing,
            (true, true, None) => Health::Progressing,
            _ => Health::Degraded,
        };
        let detail = format!(
            "{} on {}:{}{}",
            if running { "running" } else { "stopped" },
            svc.host,
            svc.port,
            match healthy {
                Some(true) => ", health check ok",
                Some(false) => ", health check failing",
                None => "",
            }
        );
        out.push(Resource {
            kind: "service".into(),
            name: name.clone(),
            sync,
            health,
            detail,
        });
    }
    // The launcher.
    if let Some(c) = d.primary_cluster() {
        let l = o.hosts.get(&c.head).map(|h| &h.launcher);
        let steps = plan.steps.iter().any(|s| {
            matches!(
                s.action,
                crate::plan::Action::UpdateLauncher { .. }
                    | crate::plan::Action::CheckoutLauncher { .. }
                    | crate::plan::Action::ReturnLauncher { .. }
            )
        });
        let (sync, health, detail) = match l.and_then(|f| f.get()) {
            Some(info) => (
                if steps { Sync::OutOfSync } else { Sync::InSync },
                Health::Healthy,
                match info.behind {
                    Some(0) => format!("at {}, up to date", short(&info.head)),
                    Some(n) => format!("at {}, {n} commits behind upstream", short(&info.head)),
                    None if info.branch.is_none() => {
                        format!("at {}, detached (follows no branch)", short(&info.head))
                    }
                    None => format!("at {}", short(&info.head)),
                },
            ),
            None => (
                Sync::Unknown,
                Health::Missing,
                l.and_then(|f| f.why())
                    .unwrap_or("not polled yet")
                    .to_string(),
            ),
        };
        out.push(Resource {
            kind: "launcher".into(),
            name: "launcher".into(),
            sync,
            health,
            detail,
        });
    }
    out
}

fn short(s: &str) -> &str {
    s.get(..12).unwrap_or(s)
}
