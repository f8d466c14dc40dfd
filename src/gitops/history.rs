//! Git-ops history: the log with diffs, a version's preview, rollback as a new commit,
//! and resolving a divergence by a merge.

use serde_json::{json, Value};

use super::*;

impl GitOps {
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
}
