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
pub mod message;
pub mod repo;

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

    /// The file at `id`, checked: the commit exists and has the file.
    async fn version(&self, repo: &Repo, id: &str) -> Result<(String, String), GitOpsError> {
        let not_found = || {
            GitOpsError::NotFound(format!(
                "there is no commit `{}` with {} in {}",
                crate::model::limits::clip(id),
                repo.path,
                repo.top.display()
            ))
        };
        let full = repo.rev(id).await?.ok_or_else(not_found)?;
        let text = repo.show(&full).await?.ok_or_else(not_found)?;
        Ok((full, text))
    }

    fn check(text: &str, what: &str) -> Result<Desired, GitOpsError> {
        let v = validate_text("desired.yaml", text);
        match v.desired {
            Some(d) if v.is_ok() => Ok(d),
            _ => {
                let first = v.errors().next().map(|d| d.to_string()).unwrap_or_default();
                Err(GitOpsError::Invalid {
                    message: format!(
                        "{what} is not a valid desired state; nothing was changed. First error: {first}"
                    ),
                    diagnostics: v.diagnostics,
                })
            }
        }
    }

    /// What restoring `id` would do: the changes in words and the plan it would cause
    /// against the latest observation.
    pub async fn preview(&self, id: &str) -> Result<Value, GitOpsError> {
        let (repo, _) = self.on().await?;
        let (full, text) = self.version(&repo, id).await?;
        let short: String = full.chars().take(12).collect();
        let desired = Self::check(&text, &format!("the version of {short}"))?;
        let (current, _) = self.inner.store.read().await?;
        let changes = message::describe(parse(&current).as_ref(), Some(&desired));
        let observed = self.inner.status.borrow().observed.clone();
        let plan = crate::plan::plan(&desired, &observed);
        let text_plan = crate::plan::render(&plan);
        Ok(json!({
            "commit": full,
            "changes": changes,
            "plan": { "steps": plan.steps, "complete": plan.complete,
                      "incomplete_because": plan.unknown, "text": text_plan },
            "same_as_now": current == text,
        }))
    }

    /// Rollback: a new commit whose file is the version of `id` (never a history
    /// rewrite). With `expected`, a file changed since that ETag is a conflict.
    pub async fn rollback(
        &self,
        id: &str,
        expected: Option<&Etag>,
        actor: Actor,
    ) -> Result<Value, GitOpsError> {
        let _held = self.edit_lock().await;
        let (repo, g) = self.on().await?;
        let (full, text) = self.version(&repo, id).await?;
        let short: String = full.chars().take(12).collect();
        let target = Self::check(&text, &format!("the version of {short}"))?;
        let (current, etag) = self.inner.store.read().await?;
        if let Some(e) = expected {
            if *e != etag {
                return Err(StoreError::Conflict {
                    current_text: current,
                    current_etag: etag,
                }
                .into());
            }
        }
        if current == text {
            return Ok(json!({ "commit": null, "changed": false, "etag": etag.as_str() }));
        }
        let who = Self::who(g.as_ref());
        let hand = Self::commit_hand_edit(&repo, &who, &current, None).await?;
        let new_etag = self.inner.store.write_if(&etag, &text, |_| Ok(())).await?;
        let subject_of = repo
            .log(1, &full)
            .await
            .ok()
            .and_then(|l| l.into_iter().next())
            .map(|c| c.subject)
            .unwrap_or_default();
        let changes = message::describe(parse(&current).as_ref(), Some(&target));
        let short7: String = full.chars().take(7).collect();
        let subject = format!(
            "rollback to {short7} ({}): {}",
            crate::model::limits::clip_to(&subject_of, 60),
            message::subject(&changes)
        );
        let msg = message::message(&subject, &changes, &actor);
        let commit = repo.commit_text(&text, &msg, &who).await?;
        if g.as_ref().is_some_and(|g| g.remote.is_some()) {
            self.nudge();
        }
        Ok(
            json!({ "commit": commit, "hand_edit_commit": hand, "changed": true,
                   "etag": new_etag.as_str(), "subject": subject }),
        )
    }

    /// Resolves a divergence with a merge of the remote (both histories kept; where both
    /// changed the same lines, `prefer` wins). A merge result that is not a valid desired
    /// state is abandoned: nothing changes.
    pub async fn resolve(&self, prefer: Prefer, actor: Actor) -> Result<Value, GitOpsError> {
        let _held = self.edit_lock().await;
        let (repo, g) = self.on().await?;
        let Some(g) = g.filter(|g| g.remote.is_some()) else {
            return Err(GitOpsError::State(
                "there is no `git.remote`, so there is nothing to resolve".into(),
            ));
        };
        let who = Self::who(Some(&g));
        let (current, _) = self.inner.store.read().await?;
        Self::commit_hand_edit(&repo, &who, &current, Some(actor.clone())).await?;
        let tracking = format!("{TRACKING_PREFIX}{}", g.branch);
        let Some(theirs) = repo.rev(&tracking).await? else {
            return Err(GitOpsError::State(
                "the remote branch has not been fetched yet; press Sync first".into(),
            ));
        };
        let (_, behind) = repo.ahead_behind(&tracking).await?;
        if behind == 0 {
            self.nudge();
            return Err(GitOpsError::State(
                "the branch has every commit of the remote already; nothing to resolve (a push is on its way)".into(),
            ));
        }
        if let Err(e) = repo.merge_no_commit(&tracking, prefer, &who).await {
            let _ = repo.abort_merge().await;
            return Err(GitOpsError::State(format!(
                "the merge of the remote could not be made, nothing changed: {e}"
            )));
        }
        let merged = std::fs::read_to_string(self.inner.store.path()).unwrap_or_default();
        if let Err(e) = Self::check(&merged, "the merge of the remote") {
            let _ = repo.abort_merge().await;
            return Err(e);
        }
        let side = match prefer {
            Prefer::Mine => "mine",
            Prefer::Theirs => "the remote's",
        };
        let short: String = theirs.chars().take(7).collect();
        let subject = format!(
            "merge {} {short}, keeping {side} where both changed the same lines",
            g.branch
        );
        let msg = message::message(&subject, &[], &actor);
        let commit = repo.commit_merge(&msg, &who).await?;
        self.nudge();
        Ok(json!({ "commit": commit, "subject": subject }))
    }

    /// The History view: commits with diffs, the uncommitted change, which version is in
    /// force and which one the hosts converged to, and the sync state.
    pub async fn history(&self) -> Result<Value, GitOpsError> {
        let (repo, g) = match self.mode().await? {
            Mode::On(on) => *on,
            Mode::Off(why) => {
                return Ok(json!({ "mode": "off", "reason": why, "commits": [],
                                   "uncommitted": null, "sync": self.sync_state() }))
            }
        };
        let branch = repo.branch().await.ok();
        let head = repo.rev("HEAD").await?;
        let commits = repo.log(HISTORY_LIMIT, "HEAD").await?;
        let ids: Vec<String> = commits.iter().map(|c| c.id.clone()).collect();
        let texts = repo.texts(&ids).await?;
        let (current, _) = self.inner.store.read().await?;
        let head_text = head.as_deref().and(texts.first().cloned().flatten());
        let head_text = match head_text {
            Some(t) => Some(t),
            None => repo.show("HEAD").await?,
        };
        let dirty = head_text.as_deref() != Some(current.as_str());
        let in_force = self.inner.status.borrow().desired.clone();
        let converged = lock(&self.inner.converged).clone();
        let versions: Vec<Option<Desired>> =
            texts.iter().map(|t| t.as_deref().and_then(parse)).collect();
        let current_parsed = parse(&current);
        let pick = |target: &Option<Arc<Desired>>| -> Value {
            let Some(t) = target.as_deref() else {
                return Value::Null;
            };
            if dirty && current_parsed.as_ref() == Some(t) {
                return json!("uncommitted");
            }
            versions
                .iter()
                .position(|v| v.as_ref() == Some(t))
                .map(|i| json!(ids[i]))
                .unwrap_or(Value::Null)
        };
        let in_force_id = pick(&in_force);
        let converged_id = pick(&converged);
        let uncommitted = if dirty {
            let diff = repo.uncommitted_diff().await?;
            let changes = message::describe(
                head_text.as_deref().and_then(parse).as_ref(),
                current_parsed.as_ref(),
            );
            json!({ "diff": diff, "changes": changes })
        } else {
            Value::Null
        };
        let sync = self.sync_state();
        let list: Vec<Value> = commits
            .iter()
            .map(|c| {
                let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
                v["in_force"] = json!(in_force_id == json!(c.id));
                v["converged"] = json!(converged_id == json!(c.id));
                v
            })
            .collect();
        Ok(json!({
            "mode": if g.as_ref().is_some_and(|g| g.remote.is_some()) { "pull" } else { "local" },
            "reason": sync.reason,
            "repo": repo.top.display().to_string(),
            "path": repo.path,
            "branch": branch,
            "head": head,
            "in_force": in_force_id,
            "converged": converged_id,
            "uncommitted": uncommitted,
            "commits": list,
            "sync": sync,
        }))
    }

    async fn sync_loop(&self, shutdown: CancellationToken) {
        loop {
            let interval = self.sync_once().await;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.inner.nudge.notified() => {}
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// One round: fetch, fast-forward or push, note divergence. Returns when to run again.
    pub async fn sync_once(&self) -> Duration {
        // Off or local: look again soon (a `git init`, a new `git:` section), cheaply.
        let idle = Duration::from_secs(5);
        let mut st = lock(&self.inner.sync).clone();
        let held = self.edit_lock().await;
        let mode = self.mode().await;
        drop(held);
        let (repo, g) = match mode {
            Ok(Mode::On(on)) => *on,
            Ok(Mode::Off(why)) => {
                *lock(&self.inner.sync) = SyncState {
                    mode: "off".into(),
                    reason: Some(why),
                    ..SyncState::default()
                };
                return idle;
            }
            Err(e) => {
                st.reason = Some(e.to_string());
                *lock(&self.inner.sync) = st;
                return idle;
            }
        };
        let Some((g, url)) = g.and_then(|g| g.remote.clone().map(|u| (g, u))) else {
            *lock(&self.inner.sync) = SyncState {
                mode: "local".into(),
                ..SyncState::default()
            };
            return idle;
        };
        let interval = Duration::from_secs(g.interval_secs.max(5));
        st.mode = "pull".into();
        st.remote = Some(git::redact_url_passwords(&url));
        st.branch = Some(g.branch.clone());
        st.interval_secs = Some(g.interval_secs);
        st.reason = None;
        match self.pull_push(&repo, &g, &url, &mut st).await {
            Ok(()) => {}
            Err(e) => st.reason = Some(e.to_string()),
        }
        *lock(&self.inner.sync) = st;
        interval
    }

    async fn pull_push(
        &self,
        repo: &Repo,
        g: &GitSettings,
        url: &str,
        st: &mut SyncState,
    ) -> Result<(), GitOpsError> {
        let branch = repo.branch().await?;
        if branch != g.branch {
            return Err(GitOpsError::State(format!(
                "the work tree {} has `{branch}` checked out, but `git.branch` is `{}`; check out `{}` there (`git -C {} switch {}`) or change `git.branch`",
                repo.top.display(),
                g.branch,
                g.branch,
                repo.top.display(),
                g.branch
            )));
        }
        let access = self.access(g);
        let tracking = format!("{TRACKING_PREFIX}{}", g.branch);
        st.last_fetch = Some(Utc::now());
        let fetched = match repo.fetch(url, &g.branch, &access).await {
            Ok(f) => {
                st.fetch_error = None;
                f
            }
            Err(e) => {
                st.fetch_error = Some(access.secrets.redact(&e.to_string()));
                return Ok(());
            }
        };
        let has_head = repo.rev("HEAD").await?.is_some();
        let (ahead, behind) = match &fetched {
            Fetched::Branch(c) => {
                st.remote_head = Some(c.clone());
                if has_head {
                    repo.ahead_behind(&tracking).await?
                } else {
                    (0, 1)
                }
            }
            Fetched::NoBranch => {
                st.remote_head = None;
                (u32::from(has_head), 0)
            }
        };
        st.diverged = None;
        // The fetch ran unlocked (it only moves the tracking ref); what changes the branch
        // or the file waits for edits through the API to finish.
        let held = self.edit_lock().await;
        let (ahead, behind) = match (&fetched, has_head) {
            (Fetched::Branch(_), true) => repo.ahead_behind(&tracking).await?,
            _ => (ahead, behind),
        };
        if behind > 0 && ahead == 0 {
            match repo.fast_forward(&tracking).await {
                Ok(()) => {
                    let to = repo.rev("HEAD").await?.unwrap_or_default();
                    tracing::info!("git-ops: fast-forwarded {} to {to}", g.branch);
                    st.last_pull = Some((Utc::now(), to));
                }
                Err(e) => {
                    let (current, _) = self.inner.store.read().await?;
                    let dirty = repo.show("HEAD").await?.as_deref() != Some(current.as_str());
                    st.diverged = Some(
                        self.divergence(
                            repo,
                            &tracking,
                            if dirty {
                                "the remote has new commits, and the file has an uncommitted change here: commit it, then resolve".to_string()
                            } else {
                                format!("the fast-forward to the remote failed: {e}")
                            },
                            dirty,
                        )
                        .await?,
                    );
                }
            }
        } else if ahead > 0 && behind > 0 {
            st.diverged = Some(
                self.divergence(
                    repo,
                    &tracking,
                    format!("{ahead} commit(s) here are not on the remote, and the remote has {behind} commit(s) not here"),
                    false,
                )
                .await?,
            );
        } else if ahead > 0 && g.push {
            drop(held);
            match repo.push(url, &g.branch, &access).await {
                Ok(()) => {
                    st.push_error = None;
                    st.push_failures = 0;
                    st.last_push = Some(Utc::now());
                    let _ = repo.fetch(url, &g.branch, &access).await;
                }
                Err(e) => {
                    // Rejected because the remote moved on: that is a divergence, not a
                    // failure to retry blindly.
                    let refetched = repo.fetch(url, &g.branch, &access).await;
                    let moved = matches!(refetched, Ok(Fetched::Branch(_)))
                        && repo.ahead_behind(&tracking).await?.1 > 0;
                    if moved {
                        st.diverged = Some(
                            self.divergence(
                                repo,
                                &tracking,
                                "the push was rejected: the remote has commits this branch does not have".into(),
                                false,
                            )
                            .await?,
                        );
                        st.push_error = None;
                    } else {
                        st.push_failures += 1;
                        let msg = access.secrets.redact(&e.to_string());
                        tracing::warn!(
                            "git-ops: push to {} failed ({} in a row), retried every {} s: {msg}",
                            git::redact_url_passwords(url),
                            st.push_failures,
                            g.interval_secs
                        );
                        st.push_error = Some(msg);
                    }
                }
            }
        }
        let (a, b) = if has_head && repo.rev(&tracking).await?.is_some() {
            repo.ahead_behind(&tracking).await?
        } else {
            (
                u32::from(has_head && repo.rev(&tracking).await?.is_none()),
                0,
            )
        };
        st.ahead = a;
        st.behind = b;
        Ok(())
    }

    async fn divergence(
        &self,
        repo: &Repo,
        tracking: &str,
        reason: String,
        uncommitted: bool,
    ) -> Result<Diverged, GitOpsError> {
        let theirs = format!("HEAD...{tracking}");
        let mine = format!("{tracking}...HEAD");
        Ok(Diverged {
            reason,
            remote_commits: repo.oneline(&format!("HEAD..{tracking}")).await?,
            local_commits: repo.oneline(&format!("{tracking}..HEAD")).await?,
            remote_diff: repo.diff(&[&theirs]).await?,
            local_diff: repo.diff(&[&mine]).await?,
            uncommitted,
        })
    }

    /// Notes the desired state in force each time the hosts are converged to it (no step
    /// left, a complete plan, nothing running).
    async fn watch_converged(&self, shutdown: CancellationToken) {
        let mut rx = self.inner.status.clone();
        loop {
            let converged = {
                let s = rx.borrow_and_update();
                let idle = s.operation.as_ref().is_none_or(|o| o.finished_at.is_some());
                (s.observed.generation > 0 && s.plan.is_empty() && s.plan.complete && idle)
                    .then(|| s.desired.clone())
                    .flatten()
            };
            if let Some(d) = converged {
                *lock(&self.inner.converged) = Some(d);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = rx.changed() => if r.is_err() { return },
            }
        }
    }
}

/// The user of an `https://user@host/…` URL.
fn url_user(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    Some(userinfo.split(':').next()?.to_string())
}
