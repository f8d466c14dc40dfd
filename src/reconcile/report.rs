//! What the loop learns from its tasks: poller transitions into the event log, and the
//! progress and end of operations (metrics, backoff, the observation the next operation
//! must wait for). Part of the loop: same state, same single task.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::{backoff_delay, is_launcher_change, op, Loop, MAX_FAILURES};
use crate::events::{Event, EventKind};
use crate::model::observed::Observed;
use crate::status::Outcome;

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
            let repo = d.active_model.as_ref().and_then(|m| {
                crate::model::catalog::catalog(d)
                    .get(m)
                    .map(|e| e.spec.repo.clone())
            });
            let ready = |o: &Observed| {
                o.vllm
                    .get()
                    .map(|v| repo.as_ref().is_some_and(|r| v.models.contains(r)))
            };
            let (a, b) = (ready(old), ready(new));
            if b.is_some() && a != b {
                emit("vllm", b == Some(true), None);
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

    pub(super) fn op_event(&mut self, ev: op::OpEvent) {
        match ev {
            op::OpEvent::Step { id, index, phase } => {
                if let Some(r) = self.running.as_mut().filter(|r| r.id == id) {
                    r.op.step = index;
                    r.op.phase = phase.clone();
                    self.events.append(Event {
                        at: Utc::now(),
                        kind: EventKind::Action,
                        service: "controller".into(),
                        ok: true,
                        source: "controller".into(),
                        error: Some(phase),
                        ms: None,
                    });
                }
            }
            op::OpEvent::StepDone { id } => {
                if self.running.as_ref().is_some_and(|r| r.id == id) {
                    self.observe();
                    // The observation that starts after this step (now, or right after the
                    // one in flight).
                    let next = if self.obs_again {
                        self.obs_seq + 1
                    } else {
                        self.obs_seq
                    };
                    if let Some(r) = self.running.as_mut() {
                        r.after_step_seq = Some(next);
                    }
                }
            }
            op::OpEvent::Done { id, outcome } => {
                let Some(mut r) = self.running.take().filter(|r| r.id == id) else {
                    return;
                };
                let took = r.started.elapsed();
                self.metrics
                    .op_ms_total
                    .fetch_add(took.as_millis() as u64, Ordering::Relaxed);
                r.op.finished_at = Some(Utc::now());
                let outcome = match (outcome, &r.cancelled_by) {
                    (Outcome::Cancelled(why), Some(who)) => {
                        self.held = Some(format!(
                            "operation {id} was cancelled by {who}: the plan waits for a change of the desired state, a retry or a reconcile"
                        ));
                        Outcome::Cancelled(format!("cancelled by {who} ({why})"))
                    }
                    (outcome, _) => outcome,
                };
                let (ok, err) = match &outcome {
                    Outcome::Succeeded => {
                        self.metrics.ops_succeeded.fetch_add(1, Ordering::Relaxed);
                        self.backoff = None;
                        (true, None)
                    }
                    Outcome::Failed(e) => {
                        self.metrics.ops_failed.fetch_add(1, Ordering::Relaxed);
                        let n = self.backoff.as_ref().map_or(0, |b| b.0) + 1;
                        let next = (n < MAX_FAILURES).then(|| Instant::now() + backoff_delay(n));
                        self.backoff = Some((n, next, e.clone()));
                        self.last_error = Some(e.clone());
                        // A failed update check (host not reachable yet) is tried again
                        // after the failure backoff, not a whole check interval later.
                        let fetch = r
                            .steps
                            .iter()
                            .all(|s| matches!(s.action, crate::plan::Action::FetchLauncher { .. }));
                        if let (true, Some(d)) = (fetch, &self.desired) {
                            let every = Duration::from_secs(d.updates.check_interval_secs);
                            let retry = backoff_delay(n).min(every);
                            self.last_update_check = Instant::now().checked_sub(every - retry);
                        }
                        (false, Some(e.clone()))
                    }
                    Outcome::Cancelled(why) => {
                        self.metrics.ops_cancelled.fetch_add(1, Ordering::Relaxed);
                        (true, Some(why.clone()))
                    }
                    Outcome::Running => (true, None),
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
                let succeeded = r.op.outcome == Outcome::Succeeded;
                self.last_op = Some(r.op);
                // Nothing new starts from an observation made before this operation's last
                // step ended. After a success that is the one requested at the final step
                // (often already here); otherwise one requested now.
                self.observe();
                self.need_seq = match r.after_step_seq {
                    Some(seq) if succeeded => seq,
                    _ => {
                        if self.obs_again {
                            self.obs_seq + 1
                        } else {
                            self.obs_seq
                        }
                    }
                };
                if self.need_seq <= self.obs_arrived {
                    self.need_seq = 0;
                }
            }
        }
    }
}
