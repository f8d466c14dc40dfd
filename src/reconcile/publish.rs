//! Planning, starting operations and publishing the status snapshot. Part of the loop:
//! same state, same single task; the plan it publishes is the plan it starts.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::machine::{Input, Work};
use super::{is_launcher_change, op, Loop, Running};
use crate::logs::Stream;
use crate::model::desired::UpdatePolicy;
use crate::plan::{plan, render, Action, Plan, Step};
use crate::status::{resources, Backoff, OpStep, Operation, Outcome, Status};

impl Loop {
    pub(super) fn replan(&mut self) {
        let Some(d) = &self.desired else {
            self.plan = Arc::new(Plan::default());
            self.feed(Input::Planned { steps: false });
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
        let steps = !p.steps.is_empty();
        self.plan = Arc::new(p);
        // The core may start this plan now: the plan published is the plan run.
        self.feed(Input::Planned { steps });
    }

    /// Starts operation `id` as the core decided: the plan published now, or queued work.
    pub(super) fn start_operation(&mut self, id: u64, work: Work<Vec<Step>>, failures: u32) {
        let Some(d) = self.desired.clone() else {
            return;
        };
        let from_plan = work == Work::Plan;
        tracing::debug!(id, "operation starts");
        let steps = match work {
            Work::Plan => {
                if failures > 0 {
                    self.logs.push(
                        None,
                        None,
                        Stream::Control,
                        format!("retrying after {failures} failure(s)"),
                    );
                }
                self.plan.steps.clone()
            }
            Work::Queued(steps) => steps,
        };
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
            failure_kind: None,
            timeline: steps.iter().cloned().map(OpStep::pending).collect(),
            download: None,
        };
        self.logs.push(
            Some(id),
            None,
            Stream::Control,
            format!("operation {id}:\n{}", plan_text.trim_end()),
        );
        if steps.iter().any(|s| is_launcher_change(&s.action)) {
            if from_plan
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
            deployment: Default::default(),
            demand: Some(self.demand.clone()),
        };
        let tx = self.msg_tx.clone();
        self.tasks.spawn(op::run(exec, steps.clone(), tx));
        self.running = Some(Running {
            id,
            steps,
            cancel,
            op,
            started: Instant::now(),
            cancelled_by: None,
        });
    }

    /// Requests still in flight on the deployment whose model the running step stops
    /// (the drain before the stop waits for them).
    fn draining(&self, r: &Running) -> Option<usize> {
        let Some(crate::plan::Step {
            action: Action::StopModel { deployment, .. },
            ..
        }) = r.steps.get(r.op.step)
        else {
            return None;
        };
        let name = match deployment.as_str() {
            "" => self.desired.as_ref()?.first_deployment()?.name,
            d => d.to_string(),
        };
        Some(self.demand.in_flight(&name)).filter(|n| *n > 0)
    }

    pub(super) fn publish(&self) {
        let d = self.desired.clone();
        let op = self
            .running
            .as_ref()
            .map(|r| {
                let mut op = r.op.clone();
                op.progress = self.downloads.op_progress(r.id);
                op.download = self.downloads.op_download(r.id);
                if let Some(n) = self.draining(r) {
                    op.phase = format!(
                        "{} — draining {n} request{}",
                        op.phase,
                        if n == 1 { "" } else { "s" }
                    );
                }
                op
            })
            .or_else(|| self.last_op.clone());
        let resources = d
            .as_ref()
            .map(|d| resources(d, &self.observed, &self.plan, op.as_ref()))
            .unwrap_or_default();
        let now = self.now();
        let backoff = self.core.backoff().map(|b| Backoff {
            failures: b.failures,
            next_attempt: b.next.map(|t| {
                Utc::now() + chrono::Duration::from_std(t.saturating_sub(now)).unwrap_or_default()
            }),
            error: self.last_failure.clone().unwrap_or_default(),
        });
        let status = Status {
            desired_file: self.cfg.desired_path.clone(),
            desired: d,
            desired_diagnostics: self.diagnostics.clone(),
            observed: self.observed.clone(),
            plan: self.plan.clone(),
            plan_text: render(&self.plan),
            resources,
            operation: op,
            ended_operation: self.last_op.clone(),
            recent_operations: self.recent_ops.iter().cloned().collect(),
            backoff,
            held: self.core.held().and(self.held_text.clone()),
            last_error: self.last_error.clone(),
            started_at: self.started_at,
            updated_at: Utc::now(),
        };
        self.status_tx.send_replace(Arc::new(status));
    }
}
