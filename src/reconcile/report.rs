//! What the loop learns from its tasks: poller transitions into the event log, and the
//! progress and end of operations (metrics, backoff, the observation the next operation
//! must wait for). Part of the loop: same state, same single task.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::machine::{backoff_delay, End, Input};
use super::{is_launcher_change, op, Loop};
use crate::events::{Event, EventKind};
use crate::model::observed::Observed;
use crate::status::Outcome;

/// How many ended operations `Status::recent_operations` keeps. Operations run one at a
/// time and each waits for an observation after the last: more than two ending within
/// one merged snapshot (200 ms) does not happen; four is a margin.
const RECENT_OPS: usize = 4;

impl Loop {
    pub(super) fn transitions(&self, new: &Observed) {
        let old = &self.observed;
        let emit = |service: &str, ok: bool, error: Option<String>| {
            self.events.append(Event {
                at: Utc::now(),
                kind: EventKind::Transition,
                service: service.into(),
                ok,
                source: "poller".into(),
                error,
                ms: None,
            });
        };
        for (name, h) in &new.hosts {
            let now = h.reachable.get().copied();
            let before = old.hosts.get(name).and_then(|h| h.reachable.get().copied());
            if now.is_some() && now != before {
                emit(
                    name,
                    now == Some(true),
                    h.containers.why().map(String::from),
                );
            }
        }
        if let Some(d) = &self.desired {
            let crash = crate::plan::crash_reason(d, new);
            if crash.is_some() && crate::plan::crash_reason(d, old).is_none() {
                emit("vllm", false, crash);
            }
            // Each deployment's vLLM: `vllm` for the first (as before), `vllm:<name>` for
            // the others.
            let cat = crate::model::catalog::catalog(d);
            for (i, dep) in d.deployments().iter().enumerate() {
                let repo = dep
                    .active_model
                    .as_ref()
                    .and_then(|m| cat.get(m).map(|e| e.spec.repo.clone()));
                let ready = |o: &Observed| {
                    o.vllm_of(&dep.name, i == 0)
                        .get()
                        .map(|v| repo.as_ref().is_some_and(|r| v.models.contains(r)))
                };
                let (a, b) = (ready(old), ready(new));
                if b.is_some() && a != b {
                    let service = if i == 0 {
                        "vllm".to_string()
                    } else {
                        format!("vllm:{}", dep.name)
                    };
                    emit(&service, b == Some(true), None);
                }
            }
        }
        for (name, f) in &new.services {
            let now = f.get().copied();
            let before = old.services.get(name).and_then(|f| f.get().copied());
            if now.is_some() && now != before {
                emit(name, now == Some(true), None);
            }
        }
    }

    /// Bookkeeping of an operation's progress; the core's input it makes, if any.
    pub(super) fn op_event(&mut self, ev: op::OpEvent) -> Option<Input<Vec<crate::plan::Step>>> {
        match ev {
            op::OpEvent::Step { id, index, phase } => {
                let r = self.running.as_mut().filter(|r| r.id == id)?;
                r.op.step = index;
                r.op.phase = phase.clone();
                if let Some(t) = r.op.timeline.get_mut(index) {
                    t.started_at = Some(Utc::now());
                }
                self.events.append(Event {
                    at: Utc::now(),
                    kind: EventKind::Action,
                    service: "controller".into(),
                    ok: true,
                    source: "controller".into(),
                    error: Some(phase),
                    ms: None,
                });
                None
            }
            op::OpEvent::StepDone { id } => {
                if let Some(r) = self.running.as_mut().filter(|r| r.id == id) {
                    if let Some(t) = r.op.timeline.get_mut(r.op.step) {
                        t.finished_at = Some(Utc::now());
                    }
                }
                Some(Input::StepDone { id })
            }
            op::OpEvent::Done { id, outcome, kind } => {
                let mut r = self.running.take_if(|r| r.id == id)?;
                let took = r.started.elapsed();
                self.metrics
                    .op_ms_total
                    .fetch_add(took.as_millis() as u64, Ordering::Relaxed);
                r.op.finished_at = Some(Utc::now());
                let outcome = match (outcome, &r.cancelled_by) {
                    (Outcome::Cancelled(why), Some(who)) => {
                        self.held_text = Some(format!(
                            "operation {id} was cancelled by {who}: the plan waits for a change of the desired state, a retry or a reconcile"
                        ));
                        Outcome::Cancelled(format!("cancelled by {who} ({why})"))
                    }
                    (outcome, _) => outcome,
                };
                let (ok, err, end) = match &outcome {
                    Outcome::Succeeded => {
                        self.metrics.ops_succeeded.fetch_add(1, Ordering::Relaxed);
                        (true, None, End::Succeeded)
                    }
                    Outcome::Failed(e) => {
                        self.metrics.ops_failed.fetch_add(1, Ordering::Relaxed);
                        self.last_failure = Some(e.clone());
                        self.last_error = Some(e.clone());
                        // A configuration error happens again on a retry: none is
                        // scheduled (the plan waits for a change or a person's retry).
                        let end = if kind == Some(crate::execute::ExecErrorKind::Config) {
                            End::Refused
                        } else {
                            End::Failed
                        };
                        (false, Some(e.clone()), end)
                    }
                    Outcome::Cancelled(why) => {
                        self.metrics.ops_cancelled.fetch_add(1, Ordering::Relaxed);
                        (true, Some(format!("cancelled: {why}")), End::Cancelled)
                    }
                    // An operation never ends "running"; counted as stopped, no backoff.
                    Outcome::Running => (true, None, End::Cancelled),
                };
                if r.steps.iter().any(|s| is_launcher_change(&s.action)) {
                    let error = match &outcome {
                        Outcome::Failed(e) => Some(e.clone()),
                        _ => None,
                    };
                    self.updates_tx.send_modify(|u| {
                        u.applying = false;
                        u.last_apply = Some(Utc::now());
                        u.last_apply_error = error;
                    });
                }
                // A failed update check (host not reachable yet) is tried again after
                // the failure backoff, not a whole check interval later.
                let fetch = r
                    .steps
                    .iter()
                    .all(|s| matches!(s.action, crate::plan::Action::FetchLauncher { .. }));
                if let (End::Failed | End::Refused, true, Some(d)) = (end, fetch, &self.desired) {
                    let n = self.core.backoff().map_or(0, |b| b.failures) + 1;
                    let every = Duration::from_secs(d.updates.check_interval_secs);
                    let retry = backoff_delay(n).min(every);
                    self.last_update_check = Instant::now().checked_sub(every - retry);
                }
                r.op.failure_kind = kind.filter(|_| matches!(outcome, Outcome::Failed(_)));
                if let Some(cause) = super::swaps::swap_cause(&r.steps) {
                    let result = match &outcome {
                        Outcome::Failed(_) => "failed",
                        Outcome::Cancelled(_) | Outcome::Running => "cancelled",
                        Outcome::Succeeded => "succeeded",
                    };
                    self.metrics.swaps.record(cause, result, took);
                }
                r.op.outcome = outcome;
                self.events.append(Event {
                    at: Utc::now(),
                    kind: EventKind::Result,
                    service: "controller".into(),
                    ok,
                    source: "controller".into(),
                    error: err,
                    ms: Some(took.as_secs_f64() * 1000.0),
                });
                if self.recent_ops.len() >= RECENT_OPS {
                    self.recent_ops.pop_front();
                }
                self.recent_ops.push_back(r.op.clone());
                self.last_op = Some(r.op);
                Some(Input::OpDone { id, end })
            }
        }
    }
}
