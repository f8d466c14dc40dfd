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

mod op;
mod publish;
mod report;
pub mod watch;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{mpsc, watch as tw};
use tokio_util::sync::CancellationToken;

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
}

enum Msg {
    Observed(u64, Box<Observed>, Duration),
    Op(op::OpEvent),
}

struct Running {
    id: u64,
    steps: Vec<Step>,
    cancel: CancellationToken,
    op: Operation,
    desired: Arc<Desired>,
    started: Instant,
    /// Seq of the first observation started after the latest completed step.
    after_step_seq: Option<u64>,
    /// Who cancelled it through the API, if someone did.
    cancelled_by: Option<String>,
}

struct Loop {
    cfg: LoopConfig,
    status_tx: tw::Sender<Arc<Status>>,
    hosts_tx: tw::Sender<Hosts>,
    logs: Arc<LogHub>,
    events: Arc<EventLog>,
    metrics: Arc<LoopMetrics>,
    observer: Observer,
    pool: HostPool,
    hosts: Hosts,
    desired: Option<Arc<Desired>>,
    desired_bytes: Option<Vec<u8>>,
    /// A changed file waiting to settle: its bytes and when to read it again.
    settling: Option<(Option<Vec<u8>>, tokio::time::Instant)>,
    /// The store the HTTP side writes through (to tell its whole writes apart).
    store: DesiredStore,
    diagnostics: Vec<Diagnostic>,
    observed: Arc<Observed>,
    generation: u64,
    obs_seq: u64,
    obs_in_flight: bool,
    /// An observation was asked for while one was in flight: start one when it lands.
    obs_again: bool,
    /// Seq of the newest observation that has arrived.
    obs_arrived: u64,
    /// An operation ended: nothing starts until an observation requested after it arrives.
    need_seq: u64,
    plan: Arc<Plan>,
    running: Option<Running>,
    last_op: Option<Operation>,
    next_op: u64,
    backoff: Option<(u32, Option<Instant>, String)>,
    /// A person cancelled an operation: plan steps wait until the desired state changes or
    /// a retry/reconcile is asked for (why, for people).
    held: Option<String>,
    queued: VecDeque<Vec<Step>>,
    last_error: Option<String>,
    last_update_check: Option<Instant>,
    /// When `auto` last started an update (at most one per check interval).
    last_auto_apply: Option<Instant>,
    updates_tx: tw::Sender<UpdateInfo>,
    downloads: crate::downloads::DownloadManager,
    msg_tx: mpsc::Sender<Msg>,
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
    };
    let pool = HostPool::new(cfg.connector.clone());
    let lp = Loop {
        cfg,
        status_tx,
        hosts_tx,
        logs,
        events,
        metrics,
        observer: Observer::new(),
        pool,
        hosts: Hosts::default(),
        desired: None,
        desired_bytes: None,
        settling: None,
        store,
        diagnostics: Vec::new(),
        observed: Arc::new(Observed::default()),
        generation: 0,
        obs_seq: 0,
        obs_in_flight: false,
        obs_again: false,
        obs_arrived: 0,
        need_seq: 1,
        plan: Arc::new(Plan::default()),
        running: None,
        last_op: None,
        next_op: 1,
        backoff: None,
        held: None,
        queued: VecDeque::new(),
        last_error: None,
        last_update_check: None,
        last_auto_apply: None,
        updates_tx,
        downloads,
        msg_tx,
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

fn backoff_delay(failures: u32) -> Duration {
    let secs = 10u64.saturating_mul(1 << failures.saturating_sub(1).min(5));
    Duration::from_secs(secs.min(300))
}

/// Failures after which the loop stops retrying on its own.
pub const MAX_FAILURES: u32 = 5;

impl Loop {
    async fn run(
        mut self,
        mut cmd_rx: mpsc::Receiver<Command>,
        mut msg_rx: mpsc::Receiver<Msg>,
        shutdown: CancellationToken,
    ) {
        let (file_tx, mut file_rx) = mpsc::channel(1);
        let _watch = match watch::watch(&self.cfg.desired_path, file_tx) {
            Ok(w) => Some(w),
            Err(e) => {
                self.last_error = Some(format!(
                    "cannot watch {}: {e}; changes are picked up at each poll",
                    self.cfg.desired_path.display()
                ));
                None
            }
        };
        let first = self.read_desired();
        self.reload_desired(first);
        self.observe();
        self.publish();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut last_poll = Instant::now();
        loop {
            // A tick that starts no poll changes no input of the plan: it only lets a
            // backoff expire (maybe_start) and refreshes a running operation's progress.
            let mut idle_tick = false;
            let settle_at = self.settling.as_ref().map(|(_, at)| *at);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(()) = file_rx.recv() => {
                    while file_rx.try_recv().is_ok() {}
                    self.file_changed();
                }
                _ = settle_deadline(settle_at) => self.settle_expired(),
                Some(c) = cmd_rx.recv() => self.command(c),
                Some(m) = msg_rx.recv() => self.message(m),
                _ = tick.tick() => {
                    let every = self.poll_interval();
                    if last_poll.elapsed() >= every {
                        last_poll = Instant::now();
                        // The file watch can miss events (network filesystems): re-read.
                        self.file_changed();
                        self.observe();
                        self.periodic_update_check();
                    } else {
                        idle_tick = true;
                    }
                }
            }
            if !idle_tick {
                self.replan();
            }
            let was_running = self.running.is_some();
            self.maybe_start();
            if !idle_tick || self.running.is_some() || was_running {
                self.publish();
            }
        }
        // Shutdown: cancel and await the running operation's safe point.
        if let Some(r) = &self.running {
            r.cancel.cancel();
            self.logs.push(
                Some(r.id),
                None,
                Stream::Control,
                "shutting down: stopping at the next safe point",
            );
            let deadline = tokio::time::Instant::now() + Duration::from_secs(170);
            while self.running.is_some() {
                match tokio::time::timeout_at(deadline, msg_rx.recv()).await {
                    Ok(Some(m)) => self.message(m),
                    _ => break,
                }
            }
            self.publish();
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

    fn read_desired(&self) -> Option<Vec<u8>> {
        std::fs::read(&self.cfg.desired_path).ok()
    }

    /// The file may have changed: a change is acted on once it has stayed the same for the
    /// settle window (a half-written file never acts), except a whole write of our own.
    fn file_changed(&mut self) {
        let bytes = self.read_desired();
        if bytes.is_some() && bytes == self.desired_bytes {
            self.settling = None;
            return;
        }
        let window = self.cfg.settle.unwrap_or(DEFAULT_SETTLE);
        let own = bytes.as_deref().is_some_and(|b| self.store.wrote(b));
        tracing::debug!(
            own,
            window_ms = window.as_millis() as u64,
            "desired file changed"
        );
        if window.is_zero() || own {
            self.settling = None;
            self.reload_desired(bytes);
            return;
        }
        match &self.settling {
            Some((pending, _)) if *pending == bytes => {}
            _ => self.settling = Some((bytes, tokio::time::Instant::now() + window)),
        }
    }

    /// The settle window of a changed file ended: act on it if it is still the same,
    /// else wait a whole window again.
    fn settle_expired(&mut self) {
        let Some((pending, _)) = self.settling.take() else {
            return;
        };
        let now = self.read_desired();
        if now == pending {
            self.reload_desired(now);
        } else {
            let window = self.cfg.settle.unwrap_or(DEFAULT_SETTLE);
            self.settling = Some((now, tokio::time::Instant::now() + window));
        }
    }

    fn reload_desired(&mut self, bytes: Option<Vec<u8>>) {
        if bytes.is_some() && bytes == self.desired_bytes {
            return;
        }
        let v = match &bytes {
            Some(b) => {
                crate::model::validate_bytes(&self.cfg.desired_path.display().to_string(), b)
            }
            None => validate_file(&self.cfg.desired_path),
        };
        self.desired_bytes = bytes;
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
            return;
        };
        if self.desired.as_deref() == Some(&new) {
            return;
        }
        let new = Arc::new(new);
        self.desired = Some(new.clone());
        self.last_error = None;
        self.backoff = None;
        self.held = None;
        self.hosts = self.pool.sync(&new);
        let _ = self.hosts_tx.send(self.hosts.clone());
        self.logs
            .push(None, None, Stream::Control, "desired state changed");
        // Cancel a stale operation: one whose steps the new desired state no longer wants.
        if let Some(r) = &self.running {
            let fresh = plan(&new, &self.observed);
            let remaining: Vec<&Step> = r.steps.iter().skip(r.op.step).collect();
            let same = fresh.steps.iter().collect::<Vec<_>>() == remaining;
            if !same && !r.cancel.is_cancelled() {
                self.logs.push(
                    Some(r.id),
                    None,
                    Stream::Control,
                    "the desired state changed: cancelling this operation at its next safe point",
                );
                r.cancel.cancel();
            }
        }
    }

    /// Starts an observation, or, when one is in flight, another right after it (so a
    /// request always gets an observation that *started* after it).
    fn observe(&mut self) {
        if self.obs_in_flight {
            self.obs_again = true;
            return;
        }
        self.obs_again = false;
        let Some(d) = self.desired.clone() else {
            return;
        };
        self.obs_in_flight = true;
        self.obs_seq += 1;
        let seq = self.obs_seq;
        self.generation += 1;
        let generation = self.generation;
        let observer = self.observer.clone();
        let hosts = self.hosts.clone();
        let tx = self.msg_tx.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let o = observer.observe(&d, &hosts, generation).await;
            let _ = tx.send(Msg::Observed(seq, Box::new(o), t.elapsed())).await;
        });
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Reconcile => {
                self.backoff = None;
                self.held = None;
                self.observe();
            }
            Command::Retry => {
                self.backoff = None;
                self.held = None;
                self.logs
                    .push(None, None, Stream::Control, "retry requested");
                self.observe();
            }
            Command::RestartService(name) => {
                let Some(d) = &self.desired else { return };
                let Some(s) = d.services.get(&name) else {
                    return;
                };
                self.queued.push_back(vec![Step {
                    action: Action::RestartService {
                        service: name.clone(),
                        host: s.host.clone(),
                        container: s.container_name(&name).to_string(),
                    },
                    why: "restart requested".into(),
                }]);
            }
            Command::CancelOperation { id, by, reply } => {
                let answer = self.cancel_operation(id, &by);
                let _ = reply.send(answer);
            }
            Command::CheckUpdates => self.queue_fetch(),
            Command::ApplyUpdate => {
                let Some(c) = self.desired.as_ref().and_then(|d| d.cluster.clone()) else {
                    return;
                };
                let behind = self
                    .observed
                    .hosts
                    .get(&c.head)
                    .and_then(|h| h.launcher.get())
                    .and_then(|l| l.behind)
                    .unwrap_or(0);
                self.queued.push_back(vec![Step {
                    action: Action::UpdateLauncher {
                        host: c.head,
                        behind,
                    },
                    why: "update requested".into(),
                }]);
            }
        }
    }

    /// Cancels the running operation `id` on a person's request.
    fn cancel_operation(&mut self, id: u64, by: &str) -> CancelReply {
        let Some(r) = self.running.as_mut().filter(|r| r.id == id) else {
            if id == 0 || id >= self.next_op {
                return CancelReply::Unknown;
            }
            let outcome = self
                .last_op
                .as_ref()
                .filter(|o| o.id == id)
                .map(|o| o.outcome.clone());
            return CancelReply::Ended(outcome);
        };
        if r.cancelled_by.is_none() {
            r.cancelled_by = Some(by.to_string());
        }
        r.cancel.cancel();
        let text = format!("operation {id} cancelled by {by}");
        self.logs.push(
            Some(id),
            None,
            Stream::Control,
            format!("{text}: stopping at once"),
        );
        self.events.append(Event {
            at: Utc::now(),
            kind: EventKind::Action,
            service: "controller".into(),
            ok: true,
            source: by.to_string(),
            error: Some(text),
            ms: None,
        });
        CancelReply::Cancelling
    }

    fn queue_fetch(&mut self) {
        let Some(c) = self.desired.as_ref().and_then(|d| d.cluster.clone()) else {
            return;
        };
        self.last_update_check = Some(Instant::now());
        self.updates_tx
            .send_modify(|u| u.last_check = Some(Utc::now()));
        self.queued.push_back(vec![Step {
            action: Action::FetchLauncher { host: c.head },
            why: "check for launcher updates".into(),
        }]);
    }

    fn periodic_update_check(&mut self) {
        let Some(d) = &self.desired else { return };
        if matches!(d.updates.launcher, UpdatePolicy::Manual) || d.cluster.is_none() {
            return;
        }
        let every = Duration::from_secs(d.updates.check_interval_secs);
        if self.last_update_check.is_none_or(|t| t.elapsed() >= every) {
            self.queue_fetch();
        }
    }

    fn message(&mut self, m: Msg) {
        match m {
            Msg::Observed(seq, o, took) => {
                self.obs_in_flight = false;
                self.metrics.polls.fetch_add(1, Ordering::Relaxed);
                self.metrics
                    .poll_ms_total
                    .fetch_add(took.as_millis() as u64, Ordering::Relaxed);
                self.transitions(&o);
                self.observed = Arc::new(*o);
                self.obs_arrived = self.obs_arrived.max(seq);
                if seq >= self.need_seq {
                    self.need_seq = 0;
                }
                if self.obs_again {
                    self.observe();
                }
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
