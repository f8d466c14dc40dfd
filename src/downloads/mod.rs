//! Model downloads onto the hosts, with progress: the job list, its persistence, and the
//! workers that run `hf download` over SSH and measure bytes on disk.
//!
//! Two ways in: **ad hoc** ([`DownloadManager::start`], the API's "paste an HF repo") and
//! **declared** ([`DownloadManager::ensure`], the executor's `download` step when the
//! active model is missing on a host). Both are jobs in one list, persisted in
//! `<data dir>/downloads/`, resumed when the controller starts (the CLI continues partial
//! files). Progress is the repo's cache folder size on the host against the total the Hub
//! reports (`hub`); rate and ETA from recent samples; no progress for a while → a
//! warning, the attempt is stopped and retried with backoff.
//!
//! Must not: decide what to download (the planner and people do), change the desired
//! file, or hold its lock across `.await`.

pub mod job;
pub mod store;
mod worker;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch as tw;
use tokio_util::sync::CancellationToken;

use crate::hosts::Hosts;
use crate::hub::{Hub, HubError};
use crate::logs::LogHub;
use crate::model::desired::Mode;
use crate::status::Status;
pub use job::{HostJob, Job, JobState, Origin, Suggestion};
use store::JobStore;
pub use worker::not_installed;

/// Timing of downloads (tests shorten these).
#[derive(Debug, Clone)]
pub struct DownloadSettings {
    /// How often bytes on disk are measured.
    pub poll_interval: Duration,
    /// No new bytes for this long → stalled: the attempt is stopped and retried.
    pub stall_after: Duration,
    /// First retry delay; doubles per attempt up to `retry_max`.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Attempts before a host's download fails.
    pub max_attempts: u32,
}

impl Default for DownloadSettings {
    fn default() -> Self {
        DownloadSettings {
            poll_interval: Duration::from_secs(2),
            stall_after: Duration::from_secs(180),
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            max_attempts: 8,
        }
    }
}

/// Why a download could not be started or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The Hub says no (not found, needs a token, not a repo id).
    #[error(transparent)]
    Hub(#[from] HubError),
    /// There is no cluster (or no such host) to download onto.
    #[error("{0}")]
    NoTarget(String),
    /// No such job.
    #[error("there is no download `{0}`")]
    NotFound(String),
    /// The job already ended.
    #[error("download `{id}` already ended ({state})")]
    Finished {
        /// The job.
        id: String,
        /// How it ended.
        state: JobState,
    },
    /// The download failed on a host.
    #[error("download of {repo} to {host} failed: {detail}")]
    Failed {
        /// The repo.
        repo: String,
        /// The host.
        host: String,
        /// Why.
        detail: String,
        /// A retry would fail the same way (see [`HostJob::fatal`]).
        fatal: bool,
    },
    /// Cancelled (by a person, by the operation, or by shutdown).
    #[error("download cancelled: {0}")]
    Cancelled(String),
    /// The job file could not be written.
    #[error("cannot write download jobs in {path}: {detail}")]
    Store {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

struct Entry {
    job: Job,
    cancel: CancellationToken,
    /// Operations waiting on this job (their progress is this job's).
    ops: BTreeSet<u64>,
}

struct Inner {
    store: JobStore,
    hub: Hub,
    settings: DownloadSettings,
    jobs: Mutex<BTreeMap<String, Entry>>,
    hosts: tw::Receiver<Hosts>,
    status: tw::Receiver<Arc<Status>>,
    logs: Arc<LogHub>,
    shutdown: CancellationToken,
    seq: AtomicU64,
}

/// The download jobs and their workers. Cheap to clone.
#[derive(Clone)]
pub struct DownloadManager {
    inner: Arc<Inner>,
}

impl DownloadManager {
    /// Loads the jobs in `<data_dir>/downloads/` (call [`resume`](Self::resume) to restart
    /// the unfinished ones). `hosts` and `status` are the control loop's channels.
    pub fn new(
        data_dir: &Path,
        hub: Hub,
        settings: DownloadSettings,
        hosts: tw::Receiver<Hosts>,
        status: tw::Receiver<Arc<Status>>,
        logs: Arc<LogHub>,
        shutdown: CancellationToken,
    ) -> Self {
        let store = JobStore::new(data_dir);
        let jobs = store
            .load()
            .into_iter()
            .map(|job| {
                let ops = match job.origin {
                    Origin::Declared { op } => BTreeSet::from([op]),
                    Origin::AdHoc => BTreeSet::new(),
                };
                (
                    job.id.clone(),
                    Entry {
                        job,
                        cancel: CancellationToken::new(),
                        ops,
                    },
                )
            })
            .collect();
        DownloadManager {
            inner: Arc::new(Inner {
                store,
                hub,
                settings,
                jobs: Mutex::new(jobs),
                hosts,
                status,
                logs,
                shutdown,
                seq: AtomicU64::new(0),
            }),
        }
    }

    /// Restarts every unfinished job (after a controller restart). Needs a tokio runtime.
    pub fn resume(&self) {
        let ids: Vec<String> = self
            .lock()
            .values()
            .filter(|e| !e.job.state.finished())
            .map(|e| e.job.id.clone())
            .collect();
        for id in ids {
            self.inner.logs.push(
                None,
                None,
                crate::logs::Stream::Control,
                format!("resuming download {id} after a restart"),
            );
            self.spawn_job(&id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        // A poisoned lock only means a panic elsewhere; the map itself stays usable.
        self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every job, newest first.
    pub fn list(&self) -> Vec<Job> {
        let mut v: Vec<Job> = self.lock().values().map(|e| e.job.clone()).collect();
        v.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        v
    }

    /// One job.
    pub fn get(&self, id: &str) -> Option<Job> {
        self.lock().get(id).map(|e| e.job.clone())
    }

    /// The Hub client.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// Progress (0..=1) of the unfinished download an operation waits on, when known.
    pub fn op_progress(&self, op: u64) -> Option<f64> {
        self.lock()
            .values()
            .filter(|e| e.ops.contains(&op) && !e.job.state.finished())
            .find_map(|e| e.job.fraction())
    }

    /// The unfinished download an operation waits on: bytes, size, rate and time left,
    /// summed over its hosts.
    pub fn op_download(&self, op: u64) -> Option<crate::status::OpDownload> {
        self.lock()
            .values()
            .find(|e| e.ops.contains(&op) && !e.job.state.finished())
            .map(|e| {
                let hosts = &e.job.hosts;
                let total: Option<u64> = hosts.iter().map(|h| h.total).sum();
                let rates: Vec<f64> = hosts.iter().filter_map(|h| h.rate_bps).collect();
                crate::status::OpDownload {
                    repo: e.job.repo.clone(),
                    bytes: hosts.iter().map(|h| h.bytes).sum(),
                    total,
                    rate_bps: (!rates.is_empty()).then(|| rates.iter().sum()),
                    eta_secs: hosts.iter().filter_map(|h| h.eta_secs).max(),
                }
            })
    }

    /// Starts an ad hoc download of `repo` onto the head (solo) or every cluster host
    /// (cluster). Asks the Hub first: a repo that does not exist or needs a token is an
    /// error here, before anything runs; a Hub that does not answer only means "size
    /// unknown". Returns the job id.
    pub async fn start(&self, repo: &str, mode: Mode) -> Result<String, DownloadError> {
        let hosts = self.target_hosts(mode)?;
        let (total, note) = self.size(repo).await?;
        let id = self.create(repo, mode, Origin::AdHoc, &hosts, total, note);
        self.spawn_job(&id);
        Ok(id)
    }

    /// Ensures `repo` is downloaded on `host` for operation `op`: joins an unfinished job
    /// that covers it or starts one, and waits for it. `cancel` (the operation's token)
    /// stops the wait, and the job too when this operation started it.
    pub async fn ensure(
        &self,
        host: &str,
        repo: &str,
        op: u64,
        cancel: &CancellationToken,
    ) -> Result<(), DownloadError> {
        let existing = self.lock().iter_mut().find_map(|(id, e)| {
            let covers = e.job.repo == repo
                && !e.job.state.finished()
                && e.job.hosts.iter().any(|h| h.host == host);
            covers.then(|| {
                e.ops.insert(op);
                id.clone()
            })
        });
        let (id, ours) = match existing {
            Some(id) => (id, false),
            None => {
                let (total, note) = self.size(repo).await?;
                let id = self.create(
                    repo,
                    Mode::Solo,
                    Origin::Declared { op },
                    &[host.to_string()],
                    total,
                    note,
                );
                self.spawn_job(&id);
                (id, true)
            }
        };
        loop {
            let h = self.get(&id).and_then(|j| {
                let h = j.hosts.into_iter().find(|h| h.host == host)?;
                Some(h)
            });
            let Some(h) = h else {
                return Err(DownloadError::NotFound(id));
            };
            match h.state {
                JobState::Done => return Ok(()),
                JobState::Failed => {
                    return Err(DownloadError::Failed {
                        repo: repo.into(),
                        host: host.into(),
                        detail: h.error.unwrap_or_else(|| "unknown error".into()),
                        fatal: h.fatal,
                    })
                }
                JobState::Cancelled => {
                    return Err(DownloadError::Failed {
                        repo: repo.into(),
                        host: host.into(),
                        detail: format!("download {id} was cancelled"),
                        fatal: false,
                    })
                }
                _ => {}
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = cancel.cancelled() => {
                    if ours {
                        let _ = self.cancel(&id);
                    }
                    return Err(DownloadError::Cancelled(format!("waiting for download {id} interrupted")));
                }
            }
        }
    }

    /// Cancels a job: its `hf` processes are stopped; partial files stay (a later
    /// download continues them).
    pub fn cancel(&self, id: &str) -> Result<(), DownloadError> {
        let g = self.lock();
        let e = g
            .get(id)
            .ok_or_else(|| DownloadError::NotFound(id.to_string()))?;
        if e.job.state.finished() {
            return Err(DownloadError::Finished {
                id: id.to_string(),
                state: e.job.state,
            });
        }
        e.cancel.cancel();
        Ok(())
    }

    fn target_hosts(&self, mode: Mode) -> Result<Vec<String>, DownloadError> {
        let d = self.inner.status.borrow().desired.clone();
        let c = d
            .as_ref()
            .and_then(|d| d.primary_cluster().cloned())
            .ok_or_else(|| {
                DownloadError::NoTarget(
                    "no cluster is configured: set `cluster.head` before downloading".into(),
                )
            })?;
        let mut hosts = vec![c.head.clone()];
        if mode == Mode::Cluster {
            if c.workers.is_empty() {
                return Err(DownloadError::NoTarget(
                    "cluster mode needs workers; the cluster has none (use solo)".into(),
                ));
            }
            hosts.extend(c.workers.iter().cloned());
        }
        Ok(hosts)
    }

    /// The repo's size, or why it is unknown. Refusals by the Hub are errors.
    async fn size(&self, repo: &str) -> Result<(Option<u64>, Option<String>), DownloadError> {
        match self.inner.hub.repo_info(repo).await {
            Ok(info) => {
                let mut note = match info.total_bytes {
                    Some(_) => None,
                    None => Some("size unknown: the Hub listed no file sizes".to_string()),
                };
                if info.gated {
                    note = Some(format!(
                        "{}gated repo: the hosts need a token with access (`hf auth login`)",
                        note.map(|n| format!("{n}; ")).unwrap_or_default()
                    ));
                }
                Ok((info.total_bytes, note))
            }
            Err(e @ HubError::Unavailable { .. }) => Ok((None, Some(format!("size unknown: {e}")))),
            Err(e) => Err(e.into()),
        }
    }

    fn create(
        &self,
        repo: &str,
        mode: Mode,
        origin: Origin,
        hosts: &[String],
        total: Option<u64>,
        note: Option<String>,
    ) -> String {
        let now = Utc::now();
        let n = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        let id = format!("dl-{}-{n}", now.format("%Y%m%d%H%M%S%3f"));
        let ops = match origin {
            Origin::Declared { op } => BTreeSet::from([op]),
            Origin::AdHoc => BTreeSet::new(),
        };
        let job = Job {
            id: id.clone(),
            repo: repo.to_string(),
            mode,
            origin,
            hosts: hosts.iter().map(|h| HostJob::new(h, total)).collect(),
            state: JobState::Queued,
            total,
            note,
            started_at: now,
            finished_at: None,
            suggestion: None,
        };
        if let Err(e) = self.inner.store.save(&job) {
            tracing::warn!("{e}");
        }
        self.lock().insert(
            id.clone(),
            Entry {
                job,
                cancel: CancellationToken::new(),
                ops,
            },
        );
        id
    }

    fn spawn_job(&self, id: &str) {
        let Some((job, cancel)) = self
            .lock()
            .get(id)
            .map(|e| (e.job.clone(), e.cancel.clone()))
        else {
            return;
        };
        let m = self.clone();
        tokio::spawn(async move {
            let hosts: Vec<String> = job.hosts.iter().map(|h| h.host.clone()).collect();
            let op = match job.origin {
                Origin::Declared { op } => Some(op),
                Origin::AdHoc => None,
            };
            let workers = hosts.into_iter().map(|h| {
                worker::run_host(
                    m.clone(),
                    job.id.clone(),
                    h,
                    job.repo.clone(),
                    op,
                    cancel.clone(),
                )
            });
            futures::future::join_all(workers).await;
            m.save(&job.id);
        });
    }

    /// Changes one host's part of a job (and the job's state), then persists it.
    fn update_host(&self, id: &str, host: &str, f: impl FnOnce(&mut HostJob)) {
        {
            let mut g = self.lock();
            let Some(e) = g.get_mut(id) else { return };
            if let Some(h) = e.job.hosts.iter_mut().find(|h| h.host == host) {
                f(h);
            }
            e.job.settle(Utc::now());
        }
        self.save(id);
    }

    fn save(&self, id: &str) {
        let job = self.get(id);
        if let Some(job) = job {
            if let Err(e) = self.inner.store.save(&job) {
                tracing::warn!("{e}");
            }
        }
    }
}
