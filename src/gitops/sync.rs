//! Git-ops sync: the pull-mode loop (fetch, fast-forward, push; "diverged" when both
//! sides moved) and the "converged" mark.

use super::*;

impl GitOps {
    pub(super) async fn sync_loop(&self, shutdown: CancellationToken) {
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
    pub(super) async fn watch_converged(&self, shutdown: CancellationToken) {
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
