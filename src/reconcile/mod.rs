//! The control loop: one task that owns the desired state, the latest observation, the
//! plan and the running operation, and publishes a `Status` snapshot for readers.
//!
//! Triggers are merged: a change of the desired file (directory watch, debounced), the
//! periodic poll, a manual command. Observation and operations run in their own tasks and
//! report back over channels, so the loop always answers quickly (a file edit reaches the
//! executor within milliseconds when nothing runs). Rules it keeps (ARCHITECTURE.md):
//! one operation at a time; an invalid file is never acted on (the last good one stays in
//! force); a desired change that alters the plan cancels the running operation at its next
//! safe point; after an operation, nothing new starts until a fresh observation arrives;
//! a failing plan backs off 10 s → 5 min and after 5 failures waits for a change or a
//! retry. It never parses HTTP and never renders HTML.

pub mod machine;
mod op;
mod publish;
mod report;
mod stale;
pub mod swaps;
pub mod watch;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{mpsc, watch as tw};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::edit::DesiredStore;
use crate::events::{Event, EventKind, EventLog};
use crate::hosts::{Connector, HostPool, Hosts};
use crate::logs::{LogHub, Stream};
use crate::model::desired::{Desired, UpdatePolicy};
use crate::model::observed::Observed;
use crate::model::{validate_file, Diagnostic};
use crate::observe::Observer;
use crate::plan::{plan, Action, Plan, Step};
use crate::status::{Operation, Status};
use machine::{CancelWhy, Core, Effect, Input, Loaded};

pub use machine::MAX_FAILURES;

/// An imperative request; none of them changes the desired state.
#[derive(Debug)]
pub enum Command {
    /// Observe now and run the plan if there is one.
    Reconcile,
    /// Forget the failure backoff and try again now.
    Retry,
    /// Restart a service's container where it is placed.
    RestartService(String),
    /// `git fetch` the launcher checkout now.
    CheckUpdates,
    /// Apply launcher updates now (`git pull && ./build-and-copy.sh -c <workers>`), whatever the
    /// policy; runs when no plan step is pending.
    ApplyUpdate,
    /// Cancel the running operation `id` now (its token: it stops at its next safe point,
    /// which every wait is). The plan then waits for a change of the desired state, a
    /// retry or a reconcile request, so the same steps do not simply start again.
    CancelOperation {
        /// The operation.
        id: u64,
        /// Who asks, for the log and the event (`the UI (10.0.0.5)`).
        by: String,
        /// The loop's answer.
        reply: tokio::sync::oneshot::Sender<CancelReply>,
    },
}

/// What the loop did with [`Command::CancelOperation`].
#[derive(Debug, Clone, PartialEq)]
pub enum CancelReply {
    /// It was running; it is being cancelled.
    Cancelling,
    /// It ran and has ended (its outcome, when it is the last one the loop keeps).
    Ended(Option<crate::status::Outcome>),
    /// No operation with that id ever ran.
    Unknown,
}

/// Parts the loop hands to others, with their settings: the download manager (`hub`,
/// `downloads`) and telemetry. Tests shorten the timings and point `hub` at a fake Hub.
#[derive(Debug, Clone)]
pub struct Addons {
    /// The Hugging Face Hub asked for repo sizes.
    pub hub: crate::hub::HubConfig,
    /// Download timings.
    pub downloads: crate::downloads::DownloadSettings,
    /// Telemetry timings.
    pub telemetry: crate::telemetry::TelemetrySettings,
}

impl Default for Addons {
    /// The Hub from `HF_ENDPOINT`/`HF_TOKEN` (default: the public Hub), default timings.
    fn default() -> Self {
        Addons {
            hub: crate::hub::HubConfig::from_env(),
            downloads: Default::default(),
            telemetry: Default::default(),
        }
    }
}

/// What the loop knows about launcher updates beyond the observation (`GET /api/updates`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct UpdateInfo {
    /// When the last `git fetch` was queued.
    pub last_check: Option<chrono::DateTime<Utc>>,
    /// An update or checkout of the launcher runs now.
    pub applying: bool,
    /// When the last apply (update or checkout) ended.
    pub last_apply: Option<chrono::DateTime<Utc>>,
    /// Why it failed, when it did (the old checkout stays in place).
    pub last_apply_error: Option<String>,
}

/// Counters for `/metrics`.
#[derive(Default, Debug)]
pub struct LoopMetrics {
    /// Completed observations.
    pub polls: AtomicU64,
    /// Total observation time, ms.
    pub poll_ms_total: AtomicU64,
    /// Operations that succeeded.
    pub ops_succeeded: AtomicU64,
    /// Operations that failed.
    pub ops_failed: AtomicU64,
    /// Operations cancelled.
    pub ops_cancelled: AtomicU64,
    /// Total operation time, ms.
    pub op_ms_total: AtomicU64,
    /// Plans computed.
    pub plans: AtomicU64,
    /// Durations of operations that launch a model.
    pub swaps: swaps::SwapMetrics,
}

/// How the loop is set up.
pub struct LoopConfig {
    /// The desired file to watch.
    pub desired_path: PathBuf,
    /// Data dir (events, keys).
    pub data_dir: PathBuf,
    /// How hosts are reached.
    pub connector: Connector,
    /// Overrides `ssh.poll_interval_secs` (tests, demo).
    pub poll_interval: Option<Duration>,
    /// How long a changed desired file must stay byte-for-byte the same before it is
    /// acted on (None: [`DEFAULT_SETTLE`]). Writes of our own store are whole and skip it.
    pub settle: Option<Duration>,
}

/// The default settle window of a changed desired file: long enough for an editor or a
/// script that writes in pieces, short enough to feel immediate.
pub const DEFAULT_SETTLE: Duration = Duration::from_millis(300);

/// What other parts of the program hold.
#[derive(Clone)]
pub struct Handle {
    /// The latest status.
    pub status: tw::Receiver<Arc<Status>>,
    /// Send commands to the loop.
    pub commands: mpsc::Sender<Command>,
    /// Operation logs.
    pub logs: Arc<LogHub>,
    /// Connectivity/event log.
    pub events: Arc<EventLog>,
    /// The desired file (reads, conflict-checked writes).
    pub store: DesiredStore,
    /// Counters.
    pub metrics: Arc<LoopMetrics>,
    /// The transports (for SSH connection counts).
    pub hosts: tw::Receiver<Hosts>,
    /// Model downloads (ad hoc and declared).
    pub downloads: crate::downloads::DownloadManager,
    /// GPU and throughput time series.
    pub telemetry: crate::telemetry::Telemetry,
    /// Launcher update bookkeeping.
    pub updates: tw::Receiver<UpdateInfo>,
    /// Requests in flight and request-triggered swaps (shared with the proxy; the
    /// executor drains a deployment through it before stopping its model).
    pub demand: Arc<crate::proxy::Demand>,
}

enum Msg {
    Observed(u64, Box<Observed>, Duration),
    Op(op::OpEvent),
}

/// The work queued one-shots run: their steps.
type Work = Vec<Step>;

/// The running operation, as the driver keeps it (the core knows its id and rules).
struct Running {
    id: u64,
    steps: Vec<Step>,
    cancel: CancellationToken,
    op: Operation,
    started: Instant,
    /// Who cancelled it through the API, if someone did.
    cancelled_by: Option<String>,
}

/// The driver: channels, timers and the file watch in; effects of [`machine::Core`] out.
struct Loop {
    cfg: LoopConfig,
    core: Core<Work>,
    /// Inputs waiting to be fed to the core in this turn (answers to effects).
    inbox: VecDeque<Input<Work>>,
    /// The loop's clock: `core` gets time as "since `t0`".
    t0: tokio::time::Instant,
    status_tx: tw::Sender<Arc<Status>>,
    hosts_tx: tw::Sender<Hosts>,
    logs: Arc<LogHub>,
    events: Arc<EventLog>,
    metrics: Arc<LoopMetrics>,
    observer: Observer,
    pool: HostPool,
    hosts: Hosts,
    desired: Option<Arc<Desired>>,
    /// The store the HTTP side writes through (to tell its whole writes apart).
    store: DesiredStore,
    diagnostics: Vec<Diagnostic>,
    observed: Arc<Observed>,
    plan: Arc<Plan>,
    running: Option<Running>,
    last_op: Option<Operation>,
    /// The last `RECENT_OPS` ended operations, oldest first (`Status::recent_operations`).
    recent_ops: std::collections::VecDeque<Operation>,
    /// The last failure's message (shown with the core's backoff).
    last_failure: Option<String>,
    /// Why plan steps are held (shown while the core holds them).
    held_text: Option<String>,
    /// Who asks for the cancel being fed to the core.
    cancel_by: Option<String>,
    cancel_answer: Option<machine::CancelAnswer>,
    last_error: Option<String>,
    last_update_check: Option<Instant>,
    /// When `auto` last started an update (at most one per check interval).
    last_auto_apply: Option<Instant>,
    updates_tx: tw::Sender<UpdateInfo>,
    downloads: crate::downloads::DownloadManager,
    demand: Arc<crate::proxy::Demand>,
    msg_tx: mpsc::Sender<Msg>,
    /// The observation in flight (its seq), to abandon it.
    obs_task: Option<(u64, tokio::task::AbortHandle)>,
    /// Observation and operation tasks (awaited, bounded, at shutdown).
    tasks: TaskTracker,
    started_at: chrono::DateTime<Utc>,
}

/// Starts the control loop. It runs until `shutdown` is cancelled; then the running
/// operation is cancelled and awaited to its safe point.
pub fn spawn(
    cfg: LoopConfig,
    shutdown: CancellationToken,
) -> (Handle, tokio::task::JoinHandle<()>) {
    spawn_with(cfg, Addons::default(), shutdown)
}

/// [`spawn`] with explicit add-on settings (tests, the demo's fake Hub).
pub fn spawn_with(
    cfg: LoopConfig,
    addons: Addons,
    shutdown: CancellationToken,
) -> (Handle, tokio::task::JoinHandle<()>) {
    let logs = Arc::new(LogHub::new(5000));
    let events = Arc::new(EventLog::open(
        Some(cfg.data_dir.join("events.jsonl")),
        2000,
    ));
    let metrics = Arc::new(LoopMetrics::default());
    let (status_tx, status_rx) = tw::channel(Arc::new(Status::initial(cfg.desired_path.clone())));
    let (hosts_tx, hosts_rx) = tw::channel(Hosts::default());
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (msg_tx, msg_rx) = mpsc::channel(256);
    let store = DesiredStore::new(cfg.desired_path.clone());
    let (updates_tx, updates_rx) = tw::channel(UpdateInfo::default());
    let downloads = crate::downloads::DownloadManager::new(
        &cfg.data_dir,
        crate::hub::Hub::new(addons.hub),
        addons.downloads,
        hosts_rx.clone(),
        status_rx.clone(),
        logs.clone(),
        shutdown.clone(),
    );
    downloads.resume();
    let telemetry =
        crate::telemetry::Telemetry::spawn(addons.telemetry, status_rx.clone(), shutdown.clone());
    let handle = Handle {
        status: status_rx,
        commands: cmd_tx,
        logs: logs.clone(),
        events: events.clone(),
        store: store.clone(),
        metrics: metrics.clone(),
        hosts: hosts_rx,
        downloads: downloads.clone(),
        telemetry,
        updates: updates_rx,
        demand: crate::proxy::Demand::new(),
    };
    let pool = HostPool::new(cfg.connector.clone());
    let settle = cfg.settle.unwrap_or(DEFAULT_SETTLE);
    let poll = cfg.poll_interval.unwrap_or(Duration::from_secs(5));
    let lp = Loop {
        cfg,
        core: Core::new(settle, poll),
        inbox: VecDeque::new(),
        t0: tokio::time::Instant::now(),
        status_tx,
        hosts_tx,
        logs,
        events,
        metrics,
        observer: Observer::new(),
        pool,
        hosts: Hosts::default(),
        desired: None,
        store,
        diagnostics: Vec::new(),
        observed: Arc::new(Observed::default()),
        plan: Arc::new(Plan::default()),
        running: None,
        last_op: None,
        recent_ops: std::collections::VecDeque::new(),
        last_failure: None,
        held_text: None,
        cancel_by: None,
        cancel_answer: None,
        last_error: None,
        last_update_check: None,
        last_auto_apply: None,
        updates_tx,
        downloads,
        demand: handle.demand.clone(),
        msg_tx,
        obs_task: None,
        tasks: TaskTracker::new(),
        started_at: Utc::now(),
    };
    let task = tokio::spawn(lp.run(cmd_rx, msg_rx, shutdown));
    (handle, task)
}

/// Resolves when the settle window of a pending file change ends (never without one).
async fn settle_deadline(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How long shutdown waits for the running operation to reach its safe point (a stop
/// command runs to completion; the launcher's cleanup takes up to a minute).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(170);

impl Loop {
    async fn run(
        mut self,
        mut cmd_rx: mpsc::Receiver<Command>,
        mut msg_rx: mpsc::Receiver<Msg>,
        shutdown: CancellationToken,
    ) {
        let (file_tx, mut file_rx) = mpsc::channel(1);
        let watch = match watch::watch(&self.cfg.desired_path, file_tx) {
            Ok(w) => Some(w),
            Err(e) => {
                self.last_error = Some(format!(
                    "cannot watch {}: {e}; changes are picked up at each poll",
                    self.cfg.desired_path.display()
                ));
                None
            }
        };
        self.feed(self.file_read());
        self.replan();
        self.publish();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            let settle_at = self.core.settle_deadline().map(|d| self.t0 + d);
            let input = tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(()) = file_rx.recv() => {
                    while file_rx.try_recv().is_ok() {}
                    // Renamed over the file and nothing else since: an atomic save is
                    // whole, no settle window needed (asked before and after the read,
                    // so a write that began meanwhile counts).
                    let renamed = watch.as_ref().is_some_and(|w| w.take_whole());
                    match self.file_read() {
                        Input::FileRead { bytes, whole } => Input::FileRead {
                            whole: whole
                                || (renamed && watch.as_ref().is_some_and(|w| w.still_whole())),
                            bytes,
                        },
                        other => other,
                    }
                }
                _ = settle_deadline(settle_at) => self.file_read(),
                Some(c) = cmd_rx.recv() => match self.command(c) {
                    Some(i) => i,
                    None => continue,
                },
                Some(m) = msg_rx.recv() => match self.message(m) {
                    Some(i) => i,
                    None => {
                        self.publish();
                        continue;
                    }
                },
                _ = tick.tick() => Input::Tick,
            };
            let tick_only = input == Input::Tick;
            let acted = self.feed(input);
            // A tick that did nothing changed no input of the plan: it only refreshes a
            // running operation's progress.
            if acted || !tick_only {
                self.replan();
            }
            if acted || !tick_only || self.running.is_some() {
                self.publish();
            }
        }
        self.shut_down(&mut msg_rx).await;
    }

    /// Cancels the running operation and awaits its safe point, then every task the
    /// loop started, within [`SHUTDOWN_GRACE`].
    async fn shut_down(&mut self, msg_rx: &mut mpsc::Receiver<Msg>) {
        let t = Instant::now();
        self.feed(Input::Shutdown);
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while self.running.is_some() {
            match tokio::time::timeout_at(deadline, msg_rx.recv()).await {
                Ok(Some(m)) => {
                    if let Some(i) = self.message(m) {
                        self.feed(i);
                    }
                }
                _ => break,
            }
        }
        self.publish();
        self.tasks.close();
        let left = self.tasks.len();
        let drained = tokio::time::timeout_at(deadline, self.tasks.wait())
            .await
            .is_ok();
        if drained {
            tracing::info!(ms = t.elapsed().as_millis() as u64, "control loop stopped");
        } else {
            tracing::warn!(
                ms = t.elapsed().as_millis() as u64,
                tasks = left,
                "control loop stopped with tasks still running (shutdown grace ended)"
            );
        }
    }

    fn now(&self) -> machine::Now {
        self.t0.elapsed()
    }

    /// Feeds `input` and every input its effects answer to the core, carrying out the
    /// effects in order. Returns whether anything was done.
    fn feed(&mut self, input: Input<Work>) -> bool {
        self.inbox.push_back(input);
        let mut acted = false;
        while let Some(i) = self.inbox.pop_front() {
            let effects = self.core.step(i, self.now());
            acted |= !effects.is_empty();
            for e in effects {
                self.effect(e);
            }
        }
        acted
    }

    fn effect(&mut self, e: Effect<Work>) {
        match e {
            Effect::Load(bytes) => {
                let l = self.load(bytes);
                self.inbox.push_back(Input::Loaded(l));
            }
            Effect::Observe { seq } => self.start_observation(seq),
            Effect::Abandon { seq } => {
                if let Some((s, task)) = self.obs_task.take() {
                    if s == seq {
                        task.abort();
                    }
                }
            }
            Effect::Start { id, work, failures } => self.start_operation(id, work, failures),
            Effect::Cancel { id, why } => self.cancel_operation(id, why),
            Effect::PollDue => {
                // The file watch can miss events (network filesystems): re-read.
                let read = self.file_read();
                self.inbox.push_back(read);
                self.periodic_update_check();
            }
            Effect::CancelAnswer(a) => self.cancel_answer = Some(a),
        }
    }

    fn poll_interval(&self) -> Duration {
        self.cfg.poll_interval.unwrap_or_else(|| {
            Duration::from_secs(
                self.desired
                    .as_ref()
                    .map_or(5, |d| d.ssh.poll_interval_secs.max(1)),
            )
        })
    }

    /// Reads the desired file for the core (which decides when it acts).
    fn file_read(&self) -> Input<Work> {
        let bytes = std::fs::read(&self.cfg.desired_path).ok();
        // Our own store writes whole files (atomically).
        let whole = bytes.as_deref().is_some_and(|b| self.store.wrote(b));
        tracing::debug!(own = whole, "desired file read");
        Input::FileRead { bytes, whole }
    }

    /// Validates bytes the core decided to load; a valid, different desired state comes
    /// into force here (the core then cancels a stale operation).
    fn load(&mut self, bytes: Option<Vec<u8>>) -> Loaded {
        let v = match &bytes {
            Some(b) => {
                crate::model::validate_bytes(&self.cfg.desired_path.display().to_string(), b)
            }
            None => validate_file(&self.cfg.desired_path),
        };
        self.diagnostics = v.diagnostics.clone();
        let Some(new) = v.desired else {
            let first = v.errors().next().map(|d| d.to_string()).unwrap_or_default();
            self.last_error = Some(format!(
                "the desired file is invalid; the last valid one stays in force: {first}"
            ));
            self.logs.push(
                None,
                None,
                Stream::Control,
                format!("desired file rejected: {first}"),
            );
            return Loaded::Invalid;
        };
        if self.desired.as_deref() == Some(&new) {
            return Loaded::Unchanged;
        }
        let new = Arc::new(new);
        let before = self.desired.replace(new.clone());
        // A hand edit's model changes (our own store's writes are counted where they
        // are made).
        let own = bytes.as_deref().is_some_and(|b| self.store.wrote(b));
        if let (Some(old), false) = (before.as_deref(), own) {
            self.demand.note_swaps("file", old.model_changes(&new));
        }
        self.last_error = None;
        self.hosts = self.pool.sync(&new);
        let _ = self.hosts_tx.send(self.hosts.clone());
        self.logs
            .push(None, None, Stream::Control, "desired state changed");
        // Stale: the running operation's remaining steps are not what the new desired
        // state would do now — unless the change is to other deployments only.
        let stale = self.running.as_ref().is_some_and(|r| {
            let remaining = r.steps.get(r.op.step..).unwrap_or_default();
            let elsewhere = before
                .as_deref()
                .is_some_and(|old| stale::only_other_deployments_changed(old, &new, remaining));
            let fresh = plan(&new, &self.observed);
            !elsewhere && fresh.steps.iter().ne(remaining.iter())
        });
        Loaded::Changed {
            stale,
            poll_every: self.poll_interval(),
        }
    }

    fn start_observation(&mut self, seq: u64) {
        let Some(d) = self.desired.clone() else {
            return;
        };
        let observer = self.observer.clone();
        let hosts = self.hosts.clone();
        let tx = self.msg_tx.clone();
        let task = self.tasks.spawn(async move {
            let t = Instant::now();
            let o = observer.observe(&d, &hosts, seq).await;
            let _ = tx.send(Msg::Observed(seq, Box::new(o), t.elapsed())).await;
        });
        self.obs_task = Some((seq, task.abort_handle()));
    }

    /// Turns a command into the core's input (`None`: handled here, nothing for the core).
    fn command(&mut self, c: Command) -> Option<Input<Work>> {
        match c {
            Command::Reconcile => Some(Input::Reconcile),
            Command::Retry => {
                self.logs
                    .push(None, None, Stream::Control, "retry requested");
                Some(Input::Retry)
            }
            Command::RestartService(name) => {
                let d = self.desired.as_ref()?;
                let s = d.services.get(&name)?;
                Some(Input::Enqueue(vec![Step {
                    action: Action::RestartService {
                        service: name.clone(),
                        host: s.host.clone(),
                        container: s.container_name(&name).to_string(),
                    },
                    why: "restart requested".into(),
                }]))
            }
            Command::CancelOperation { id, by, reply } => {
                self.cancel_by = Some(by);
                self.feed(Input::CancelRequest { id });
                let answer = match self.cancel_answer.take() {
                    Some(machine::CancelAnswer::Cancelling) => CancelReply::Cancelling,
                    Some(machine::CancelAnswer::Ended) => CancelReply::Ended(
                        self.last_op
                            .as_ref()
                            .filter(|o| o.id == id)
                            .map(|o| o.outcome.clone()),
                    ),
                    Some(machine::CancelAnswer::Unknown) | None => CancelReply::Unknown,
                };
                let _ = reply.send(answer);
                self.publish();
                None
            }
            Command::CheckUpdates => self.queue_fetch(),
            Command::ApplyUpdate => {
                let c = self
                    .desired
                    .as_ref()
                    .and_then(|d| d.primary_cluster().cloned())?;
                let behind = self
                    .observed
                    .hosts
                    .get(&c.head)
                    .and_then(|h| h.launcher.get())
                    .and_then(|l| l.behind)
                    .unwrap_or(0);
                Some(Input::Enqueue(vec![Step {
                    action: Action::UpdateLauncher {
                        host: c.head,
                        behind,
                    },
                    why: "update requested".into(),
                }]))
            }
        }
    }

    /// Carries out the core's cancel: the token, the log line, the event.
    fn cancel_operation(&mut self, id: u64, why: CancelWhy) {
        let by = self.cancel_by.take();
        let Some(r) = self.running.as_mut().filter(|r| r.id == id) else {
            return;
        };
        r.cancel.cancel();
        let (line, event) = match why {
            CancelWhy::Superseded => (
                "the desired state changed: cancelling this operation at its next safe point"
                    .to_string(),
                Some((
                    "controller".to_string(),
                    format!("operation {id} cancelled: the desired state changed"),
                )),
            ),
            CancelWhy::Person => {
                let who = by.unwrap_or_else(|| "a person".into());
                if r.cancelled_by.is_none() {
                    r.cancelled_by = Some(who.clone());
                }
                let text = format!("operation {id} cancelled by {who}");
                (format!("{text}: stopping at once"), Some((who, text)))
            }
            CancelWhy::Shutdown => (
                "shutting down: stopping at the next safe point".into(),
                None,
            ),
        };
        self.logs.push(Some(id), None, Stream::Control, line);
        if let Some((source, text)) = event {
            self.events.append(Event {
                at: Utc::now(),
                kind: EventKind::Action,
                service: "controller".into(),
                ok: true,
                source,
                error: Some(text),
                ms: None,
            });
        }
    }

    fn queue_fetch(&mut self) -> Option<Input<Work>> {
        let c = self
            .desired
            .as_ref()
            .and_then(|d| d.primary_cluster().cloned())?;
        self.last_update_check = Some(Instant::now());
        self.updates_tx
            .send_modify(|u| u.last_check = Some(Utc::now()));
        Some(Input::Enqueue(vec![Step {
            action: Action::FetchLauncher { host: c.head },
            why: "check for launcher updates".into(),
        }]))
    }

    fn periodic_update_check(&mut self) {
        let Some(d) = &self.desired else { return };
        if matches!(d.updates.launcher, UpdatePolicy::Manual) || d.primary_cluster().is_none() {
            return;
        }
        let every = Duration::from_secs(d.updates.check_interval_secs);
        if self.last_update_check.is_none_or(|t| t.elapsed() >= every) {
            if let Some(i) = self.queue_fetch() {
                self.inbox.push_back(i);
            }
        }
    }

    /// Turns a task's message into the core's input (`None`: progress only).
    fn message(&mut self, m: Msg) -> Option<Input<Work>> {
        match m {
            Msg::Observed(seq, o, took) => {
                // An abandoned observation's result (sent before it was stopped).
                if self.core.observing() != Some(seq) {
                    return None;
                }
                self.obs_task = None;
                self.metrics.polls.fetch_add(1, Ordering::Relaxed);
                self.metrics
                    .poll_ms_total
                    .fetch_add(took.as_millis() as u64, Ordering::Relaxed);
                self.transitions(&o);
                self.observed = Arc::new(*o);
                Some(Input::Observed { seq })
            }
            Msg::Op(ev) => self.op_event(ev),
        }
    }
}

fn is_launcher_change(a: &Action) -> bool {
    matches!(
        a,
        Action::UpdateLauncher { .. }
            | Action::CheckoutLauncher { .. }
            | Action::ReturnLauncher { .. }
    )
}
