//! Git-ops: every edit made through the UI/API is a commit of the desired file; its
//! history with diffs; rollback as a new commit; pull mode (fetch, fast-forward, push)
//! against a remote, with "diverged" when both sides moved.
//!
//! Owns: the git side of the desired file, through the `git` CLI (`git.rs`: argv, no
//! prompts, timeouts, secrets redacted). One async lock serialises every git operation and
//! every edit through the API, so a pull never lands between an edit's write and its
//! commit. The loop is not involved: a fast-forward changes the file, which the loop sees
//! like any hand edit (it watches the file's directory).
//!
//! Rules (README "Git-ops"):
//! - A hand edit stays an **uncommitted change** (shown with its diff) until someone
//!   presses Commit in the History view, or until the next edit through the UI/API, which
//!   first commits it as its own commit ("hand edit: …") so the two never mix.
//! - Nothing is lost: a rejected push keeps the commit here and shows "diverged" with the
//!   remote's diff; resolving is a merge (both histories kept); a fast-forward git refuses
//!   because of an uncommitted change leaves the change alone. Nothing here resets a
//!   branch or force-pushes.
//!
//! Must not: write the desired file except through `DesiredStore` (rollback) or git's own
//! merge (pull, resolve), act on hosts, log a token.

pub mod git;
mod history;
pub mod message;
pub mod repo;
mod sync;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{watch, Mutex, Notify, OwnedMutexGuard};
use tokio_util::sync::CancellationToken;

use crate::edit::{DesiredStore, Etag, StoreError};
use crate::model::desired::GitSettings;
use crate::model::{validate_text, Desired, Diagnostic};
use crate::status::Status;

pub use git::GitError;
use git::{Access, Who};
pub use message::Actor;
pub use repo::{CommitInfo, Prefer};
use repo::{Fetched, Repo, TRACKING_PREFIX};

/// How many commits the history shows.
pub const HISTORY_LIMIT: usize = 100;

/// Why a git-ops request could not be done. Messages say what and what to do.
#[derive(Debug, thiserror::Error)]
pub enum GitOpsError {
    /// Git-ops is off for this file (the reason says why and how to turn it on).
    #[error("git-ops is off: {0}")]
    Off(String),
    /// No such commit (or the file is not in it).
    #[error("{0}")]
    NotFound(String),
    /// That version (or the merge result) is not a valid desired state; nothing changed.
    #[error("{message}")]
    Invalid {
        /// Summary.
        message: String,
        /// Every problem with its line and column.
        diagnostics: Vec<Diagnostic>,
    },
    /// The request does not fit the state (nothing diverged, no remote).
    #[error("{0}")]
    State(String),
    /// Git failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The desired file could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where the branch stands against the remote (pull mode).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncState {
    /// `off`, `local` (history only) or `pull`.
    pub mode: String,
    /// Why git-ops is off, or what is wrong with the setup.
    pub reason: Option<String>,
    /// The remote (passwords redacted).
    pub remote: Option<String>,
    /// The followed branch.
    pub branch: Option<String>,
    /// Seconds between fetches.
    pub interval_secs: Option<u64>,
    /// When the last fetch was tried.
    pub last_fetch: Option<DateTime<Utc>>,
    /// Why it failed, when it did.
    pub fetch_error: Option<String>,
    /// When the branch was last fast-forwarded to the remote, and to which commit.
    pub last_pull: Option<(DateTime<Utc>, String)>,
    /// When a push last succeeded.
    pub last_push: Option<DateTime<Utc>>,
    /// Why the last push failed (it is retried every interval).
    pub push_error: Option<String>,
    /// Push failures in a row.
    pub push_failures: u32,
    /// Commits here not on the remote / there not here.
    pub ahead: u32,
    /// Commits on the remote not here.
    pub behind: u32,
    /// The remote branch's commit.
    pub remote_head: Option<String>,
    /// Both sides moved (or an uncommitted change blocks the pull): what each side has.
    pub diverged: Option<Diverged>,
}

/// Both the remote and this controller changed the branch.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Diverged {
    /// In words.
    pub reason: String,
    /// Commits only on the remote.
    pub remote_commits: Vec<String>,
    /// Commits only here.
    pub local_commits: Vec<String>,
    /// What the remote changed in the file since the common commit.
    pub remote_diff: String,
    /// What this side changed in the file since the common commit.
    pub local_diff: String,
    /// The uncommitted change blocks the pull (commit it, then resolve).
    pub uncommitted: bool,
}

/// The git-ops service: cheap to clone.
#[derive(Clone)]
pub struct GitOps {
    inner: Arc<Inner>,
}

struct Inner {
    store: DesiredStore,
    data_dir: PathBuf,
    status: watch::Receiver<Arc<Status>>,
    lock: Arc<Mutex<()>>,
    /// Making the repository (`git: {}` without a work tree) happens once.
    init: Mutex<()>,
    nudge: Notify,
    sync: std::sync::Mutex<SyncState>,
    converged: std::sync::Mutex<Option<Arc<Desired>>>,
    last_good: std::sync::Mutex<Option<Option<GitSettings>>>,
}

/// Whether git-ops is on for the file, and on what.
enum Mode {
    Off(String),
    On(Box<(Repo, Option<GitSettings>)>),
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn parse(text: &str) -> Option<Desired> {
    validate_text("desired.yaml", text).desired
}

impl GitOps {
    /// The service over `store`'s file; `data_dir` holds the SSH key and known hosts.
    pub fn new(
        store: DesiredStore,
        data_dir: PathBuf,
        status: watch::Receiver<Arc<Status>>,
    ) -> GitOps {
        GitOps {
            inner: Arc::new(Inner {
                store,
                data_dir,
                status,
                lock: Arc::new(Mutex::new(())),
                init: Mutex::new(()),
                nudge: Notify::new(),
                sync: std::sync::Mutex::new(SyncState::default()),
                converged: std::sync::Mutex::new(None),
                last_good: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Starts the sync task (fetch/pull/push every interval or when nudged) and the task
    /// that notes which desired state the hosts converged to. Both end with `shutdown`.
    pub fn spawn(&self, shutdown: CancellationToken) {
        let me = self.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move { me.sync_loop(stop).await });
        let me = self.clone();
        tokio::spawn(async move { me.watch_converged(shutdown).await });
    }

    /// Fetch (and pull, push) now: the webhook, the Sync button, after a commit.
    pub fn nudge(&self) {
        self.inner.nudge.notify_one();
    }

    /// Held by an edit through the API from before its write until its commit.
    pub async fn edit_lock(&self) -> OwnedMutexGuard<()> {
        Arc::clone(&self.inner.lock).lock_owned().await
    }

    /// The sync state.
    pub fn sync_state(&self) -> SyncState {
        lock(&self.inner.sync).clone()
    }

    /// The `git:` settings of the file (the last valid ones while it is invalid).
    async fn settings(&self) -> Option<GitSettings> {
        let text = self.inner.store.read().await.ok().map(|(t, _)| t);
        let parsed = text.as_deref().and_then(parse);
        let mut last = lock(&self.inner.last_good);
        match parsed {
            Some(d) => {
                *last = Some(d.git.clone());
                d.git
            }
            None => last.clone().flatten(),
        }
    }

    /// A path from the settings: absolute, or relative to the data dir.
    fn data_path(&self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            self.inner.data_dir.join(p)
        }
    }

    /// The webhook's shared secret, when `git.webhook_secret_file` is set and readable.
    pub async fn webhook_secret(&self) -> Result<String, GitOpsError> {
        let Some(file) = self.settings().await.and_then(|g| g.webhook_secret_file) else {
            return Err(GitOpsError::Off(
                "no `git.webhook_secret_file` is set, so the webhook is refused".into(),
            ));
        };
        let path = self.data_path(&file);
        match std::fs::read_to_string(&path) {
            Ok(s) if s.trim().len() >= 16 => Ok(s.trim().to_string()),
            Ok(_) => Err(GitOpsError::Off(format!(
                "the webhook secret in {} is shorter than 16 characters",
                path.display()
            ))),
            Err(e) => Err(GitOpsError::Off(format!(
                "cannot read the webhook secret {}: {e}",
                path.display()
            ))),
        }
    }

    fn who(settings: Option<&GitSettings>) -> Who {
        let author = settings
            .and_then(|g| g.author.as_ref())
            .map(|a| (a.name.clone(), a.email.clone()))
            .unwrap_or_else(|| ("spark-control".into(), "spark-control@localhost".into()));
        let committer = settings
            .and_then(|g| g.committer.as_ref())
            .map(|a| (a.name.clone(), a.email.clone()))
            .unwrap_or_else(|| author.clone());
        Who { author, committer }
    }

    fn access(&self, g: &GitSettings) -> Access {
        let key = g
            .ssh_key
            .as_deref()
            .map(|k| self.data_path(k))
            .unwrap_or_else(|| self.inner.data_dir.join("id_ed25519"));
        let mut access = Access {
            ssh_key: key.exists().then_some(key),
            known_hosts: Some(self.inner.data_dir.join("git_known_hosts")),
            ..Access::default()
        };
        if let Some(tf) = &g.token_file {
            if let Ok(t) = std::fs::read_to_string(self.data_path(tf)) {
                let user = g.remote.as_deref().and_then(url_user);
                access = access.with_token(&t, user.as_deref());
            }
        }
        access
    }

    /// Is git-ops on, and where. With `git:` set and no work tree (and no remote), a
    /// repository is made in the file's directory and the file committed.
    async fn mode(&self) -> Result<Mode, GitOpsError> {
        let settings = self.settings().await;
        let file = self.inner.store.path().to_path_buf();
        let repo = match Repo::discover(&file).await? {
            Some(r) => r,
            None => {
                let Some(g) = &settings else {
                    return Ok(Mode::Off(format!(
                        "{} is not in a git work tree; put it in one (`git init`) or add `git: {{}}` to it",
                        file.display()
                    )));
                };
                if let Some(remote) = &g.remote {
                    return Ok(Mode::Off(format!(
                        "{} is not in a git work tree, and pull mode needs a clone of the remote: `git clone {} <dir>` and start spark-control with `--desired <dir>/{}`",
                        file.display(),
                        git::redact_url_passwords(remote),
                        g.path.as_deref().unwrap_or("desired.yaml")
                    )));
                }
                // Another caller may be making it right now: look again under the lock.
                let _once = self.inner.init.lock().await;
                match Repo::discover(&file).await? {
                    Some(r) => r,
                    None => {
                        let repo = Repo::init(&file, &g.branch).await?;
                        let (text, _) = self.inner.store.read().await?;
                        let msg = message::message(
                            "start tracking the desired file",
                            &[],
                            &Actor::Controller,
                        );
                        repo.commit_text(&text, &msg, &Self::who(Some(g))).await?;
                        repo
                    }
                }
            }
        };
        if settings.is_none() && !repo.tracked().await? {
            return Ok(Mode::Off(format!(
                "{} is in the work tree {} but not tracked; `git add` and commit it, or add `git: {{}}` to it",
                repo.path,
                repo.top.display()
            )));
        }
        if let Some(p) = settings.as_ref().and_then(|g| g.path.as_ref()) {
            if *p != repo.path {
                return Ok(Mode::Off(format!(
                    "`git.path` says {p}, but the desired file is {} in the repository {}; correct `git.path` or start spark-control with the file at that path",
                    repo.path,
                    repo.top.display()
                )));
            }
        }
        Ok(Mode::On(Box::new((repo, settings))))
    }

    async fn on(&self) -> Result<(Repo, Option<GitSettings>), GitOpsError> {
        match self.mode().await? {
            Mode::On(on) => Ok(*on),
            Mode::Off(why) => Err(GitOpsError::Off(why)),
        }
    }

    /// Commits `current` as a hand edit when it is not what HEAD has. Returns the commit.
    async fn commit_hand_edit(
        repo: &Repo,
        who: &Who,
        current: &str,
        committed_by: Option<Actor>,
    ) -> Result<Option<String>, GitOpsError> {
        let head_text = repo.show("HEAD").await?;
        if head_text.as_deref() == Some(current) {
            return Ok(None);
        }
        let changes = message::describe(
            head_text.as_deref().and_then(parse).as_ref(),
            parse(current).as_ref(),
        );
        let subject = format!("hand edit: {}", message::subject(&changes));
        let actor = Actor::Hand {
            by: committed_by.map(Box::new),
        };
        let msg = message::message(&subject, &changes, &actor);
        Ok(repo.commit_text(current, &msg, who).await?)
    }

    /// Records an edit made through the API (`old` → `new`, already written) as a commit;
    /// an uncommitted hand edit in `old` is committed first, on its own. Called with the
    /// edit lock held. The edit stays written whatever happens here; the answer says
    /// what was committed (or why not).
    pub async fn record_edit(
        &self,
        _held: &OwnedMutexGuard<()>,
        old: &str,
        new: &str,
        actor: Actor,
    ) -> Value {
        let result: Result<Value, GitOpsError> = async {
            let (repo, g) = match self.mode().await? {
                Mode::On(on) => *on,
                Mode::Off(_) => return Ok(Value::Null),
            };
            let who = Self::who(g.as_ref());
            let hand = Self::commit_hand_edit(&repo, &who, old, None).await?;
            let changes = message::describe(parse(old).as_ref(), parse(new).as_ref());
            let msg = message::message(&message::subject(&changes), &changes, &actor);
            let commit = repo.commit_text(new, &msg, &who).await?;
            if g.as_ref().is_some_and(|g| g.remote.is_some()) {
                self.nudge();
            }
            Ok(json!({ "commit": commit, "hand_edit_commit": hand, "subject": message::subject(&changes) }))
        }
        .await;
        result.unwrap_or_else(|e| {
            tracing::warn!("git-ops: the edit was written but not committed: {e}");
            json!({ "error": format!("the edit was written but not committed: {e}") })
        })
    }

    /// The History view's Commit button: the uncommitted change becomes a commit.
    pub async fn commit_uncommitted(&self, actor: Actor) -> Result<Value, GitOpsError> {
        let _held = self.edit_lock().await;
        let (repo, g) = self.on().await?;
        let (text, _) = self.inner.store.read().await?;
        let commit =
            Self::commit_hand_edit(&repo, &Self::who(g.as_ref()), &text, Some(actor)).await?;
        if commit.is_some() && g.as_ref().is_some_and(|g| g.remote.is_some()) {
            self.nudge();
        }
        Ok(json!({ "commit": commit, "changed": commit.is_some() }))
    }
}

/// The user of an `https://user@host/…` URL.
fn url_user(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    Some(userinfo.split(':').next()?.to_string())
}
