//! Planning, starting operations and publishing the status snapshot. Part of the loop:
//! same state, same single task; the plan it publishes is the plan it starts.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::{is_launcher_change, op, Loop, Running};
use crate::logs::Stream;
use crate::model::desired::UpdatePolicy;
use crate::plan::{plan, render, Action, Plan};
use crate::status::{resources, Backoff, Operation, Outcome, Status};

impl Loop {
    pub(super) fn replan(&mut self) {
        let Some(d) = &self.desired else {
            self.plan = Arc::new(Plan::default());
            return;
        };
        self.metrics.plans.fetch_add(1, Ordering::Relaxed);
        let mut p = plan(d, &self.observed);
        // `auto` applies at most once per check interval (a failing build is not retried
        // in a loop); the plan shown is the plan run, so the step leaves the plan.
        let every = Duration::from_secs(d.updates.check_interval_secs);
        if matches!(d.updates.launcher, UpdatePolicy::Auto)
            && self.last_auto_apply.is_some_and(|t| t.elapsed() < every)
        {
            p.steps
                .retain(|s| !matches!(s.action, Action::UpdateLauncher { .. }));
        }
        self.plan = Arc::new(p);
    }

    pub(super) fn maybe_start(&mut self) {
        if self.running.is_some()
            || self.need_seq != 0
            || self.obs_in_flight && self.observed.generation == 0
        {
            return;
        }
        let Some(d) = self.desired.clone() else {
            return;
        };
        if self.observed.generation == 0 {
            return;
        }
        let steps = if !self.plan.steps.is_empty() {
            if self.held.is_some() {
                return;
            }
            if let Some((n, next, _)) = &self.backoff {
                match next {
                    None => return,
                    Some(t) if Instant::now() < *t => return,
                    Some(_) => self.logs.push(
                        None,
                        None,
                        Stream::Control,
                        format!("retrying after {n} failure(s)"),
                    ),
                }
            }
            self.plan.steps.clone()
        } else if let Some(q) = self.queued.pop_front() {
            q
        } else {
            return;
        };
        let id = self.next_op;
        self.next_op += 1;
        let plan_text = render(&Plan {
            steps: steps.clone(),
            complete: true,
            ..Plan::default()
        });
        let op = Operation {
            id,
            plan_text: plan_text.clone(),
            step: 0,
            steps: steps.len(),
            phase: "starting".into(),
            progress: None,
            started_at: Utc::now(),
            finished_at: None,
            outcome: Outcome::Running,
        };
        self.logs.push(
            Some(id),
            None,
            Stream::Control,
            format!("operation {id}:\n{}", plan_text.trim_end()),
        );
        if steps.iter().any(|s| is_launcher_change(&s.action)) {
            if !self.plan.steps.is_empty()
                && steps
                    .iter()
                    .any(|s| matches!(s.action, Action::UpdateLauncher { .. }))
            {
                self.last_auto_apply = Some(Instant::now());
            }
            self.updates_tx.send_modify(|u| u.applying = true);
        }
        let cancel = CancellationToken::new();
        let exec = crate::execute::Executor {
            hosts: self.hosts.clone(),
            desired: d.clone(),
            logs: self.logs.clone(),
            observer: self.observer.clone(),
            op: id,
            cancel: cancel.clone(),
            downloads: Some(self.downloads.clone()),
            follower: Default::default(),
        };
        let tx = self.msg_tx.clone();
        tokio::spawn(op::run(exec, steps.clone(), tx));
        self.running = Some(Running {
            id,
            steps,
            cancel,
            op,
            desired: d,
            started: Instant::now(),
            after_step_seq: None,
            cancelled_by: None,
        });
    }

    pub(super) fn publish(&self) {
        let d = self.desired.clone();
        let op = self
            .running
            .as_ref()
            .map(|r| {
                let mut op = r.op.clone();
                op.progress = self.downloads.op_progress(r.id);
                op
            })
            .or_else(|| self.last_op.clone());
        let resources = d
            .as_ref()
            .map(|d| resources(d, &self.observed, &self.plan, op.as_ref()))
            .unwrap_or_default();
        let backoff = self.backoff.as_ref().map(|(n, next, e)| Backoff {
            failures: *n,
            next_attempt: next.map(|t| {
                Utc::now()
                    + chrono::Duration::from_std(t.saturating_duration_since(Instant::now()))
                        .unwrap_or_default()
            }),
            error: e.clone(),
        });
        let _ = self.running.as_ref().map(|r| &r.desired);
        let status = Status {
            desired_file: self.cfg.desired_path.clone(),
            desired: d,
            desired_diagnostics: self.diagnostics.clone(),
            observed: self.observed.clone(),
            plan: self.plan.clone(),
            plan_text: render(&self.plan),
            resources,
            operation: op,
            backoff,
            held: self.held.clone(),
            last_error: self.last_error.clone(),
            started_at: self.started_at,
            updated_at: Utc::now(),
        };
        self.status_tx.send_replace(Arc::new(status));
    }
}
