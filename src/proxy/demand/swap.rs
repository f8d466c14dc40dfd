//! The request-triggered swap: a bounded queue per model, one swap per deployment at a
//! time (FIFO, so waiting requests go on in arrival order) and per `min_interval`, and
//! the wait until the control loop has converged to the recorded edit.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{entry, Demand, ModelCounters, SwapCause};
use crate::proxy::error::ProxyError;
use crate::proxy::models::ModelEntry;
use crate::proxy::{Policy, Routes, Upstream};

/// The deployment with `on_request: swap` a request for `entry` may swap: the first of
/// the deployments it could run on that has the policy.
pub fn swap_target(policy: &Policy, entry: &ModelEntry) -> Option<String> {
    entry
        .could_run
        .iter()
        .find(|d| policy.swap_on_request.contains(*d))
        .cloned()
}

/// Where the model is now: its upstream when ready; `Loading` on `deployment`; or
/// elsewhere/nowhere.
enum Seen {
    Ready(Upstream),
    LoadingHere,
    OtherHere,
    NotHere,
}

fn look(routes: &Routes, model: &str, deployment: &str) -> Seen {
    let table = &routes.models;
    let Some(e) = table.by_name.get(model).and_then(|&i| table.entries.get(i)) else {
        return Seen::NotHere;
    };
    match (&e.deployment, &e.upstream) {
        (Some(d), up @ Upstream::Ready { .. }) if d == deployment => Seen::Ready(up.clone()),
        (Some(d), _) if d == deployment => Seen::LoadingHere,
        _ => {
            let other = table
                .entries
                .iter()
                .any(|x| x.deployment.as_deref() == Some(deployment));
            if other {
                Seen::OtherHere
            } else {
                Seen::NotHere
            }
        }
    }
}

/// Leaves the model's waiting count when dropped.
struct Waiting(Arc<ModelCounters>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Demand {
    /// A request for `model` (its catalog name) that `deployment` (`on_request: swap`) does
    /// not serve yet: joins the model's bounded queue, asks for the swap once (a recorded
    /// edit; one swap per deployment at a time and per `min_interval`), and waits, in
    /// arrival order, until the model is ready there. Past the queue's bounds: 503 with
    /// `Retry-After`; an edit meanwhile that chose another model: 409 saying so.
    pub async fn swap_and_wait(
        &self,
        mut routes: watch::Receiver<Routes>,
        deployment: &str,
        model: &str,
        cause: SwapCause,
    ) -> Result<Upstream, ProxyError> {
        let policy = Arc::clone(&routes.borrow().policy);
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + policy.queue_wait;
        let counters = entry(&self.models, model);
        let before = counters.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(Arc::clone(&counters));
        if before >= policy.queue {
            self.totals.queue_refused.fetch_add(1, Ordering::Relaxed);
            return Err(ProxyError::SwapBusy {
                why: format!(
                    "{before} requests already wait for `{model}` to be swapped in on deployment `{deployment}` (proxy.swap_queue)"
                ),
                retry_after: 10,
            });
        }
        let busy = |why: String| {
            self.totals.queue_refused.fetch_add(1, Ordering::Relaxed);
            ProxyError::SwapBusy {
                why,
                retry_after: 10,
            }
        };
        let timed_out = || {
            busy(format!(
                "`{model}` was not ready on deployment `{deployment}` within {} s (proxy.swap_wait_secs)",
                policy.queue_wait.as_secs()
            ))
        };
        let dep = self.deployment(deployment);
        let Ok(_turn) = tokio::time::timeout_at(deadline, dep.swap.lock()).await else {
            return Err(timed_out());
        };
        let mut asked = false;
        let mut asked_at = Instant::now();
        let mut seen_ours = false;
        loop {
            let seen = look(&routes.borrow_and_update(), model, deployment);
            match seen {
                Seen::Ready(up) => {
                    self.waited(started.elapsed());
                    return Ok(up);
                }
                Seen::LoadingHere => seen_ours = true,
                Seen::OtherHere | Seen::NotHere
                    if asked && (seen_ours || asked_at.elapsed() > Duration::from_secs(5)) =>
                {
                    return Err(ProxyError::SwapRefused(format!(
                        "the desired file was changed while `{model}` was being swapped in on deployment `{deployment}`, and no longer names it there (an edit by hand or in the UI wins); send the request again to ask for it"
                    )));
                }
                Seen::OtherHere | Seen::NotHere if !asked => {
                    // Thrash guard: one request-triggered swap per deployment per interval.
                    let last = dep.last_swap.lock().ok().and_then(|l| *l);
                    if let Some(wait) = last
                        .map(|l| policy.min_interval.saturating_sub(l.elapsed()))
                        .filter(|w| !w.is_zero())
                    {
                        let until = tokio::time::Instant::now() + wait;
                        if until > deadline {
                            return Err(busy(format!(
                                "deployment `{deployment}` was swapped by a request {} s ago; the next request-triggered swap may come {} s later (proxy.swap_min_interval_secs)",
                                last.map_or(0, |l| l.elapsed().as_secs()),
                                policy.min_interval.as_secs()
                            )));
                        }
                        tokio::time::sleep_until(until).await;
                        continue;
                    }
                    let swapper = self.swapper().ok_or_else(|| {
                        ProxyError::SwapRefused(
                            "on_request: swap needs the server's desired-file writer, which this proxy has not".into(),
                        )
                    })?;
                    if let Ok(mut l) = dep.last_swap.lock() {
                        *l = Some(Instant::now());
                    }
                    swapper
                        .set_model(
                            deployment.to_string(),
                            Some(model.to_string()),
                            cause.clone(),
                        )
                        .await
                        .map_err(ProxyError::SwapRefused)?;
                    self.totals.swaps_request.fetch_add(1, Ordering::Relaxed);
                    asked = true;
                    asked_at = Instant::now();
                    continue;
                }
                Seen::OtherHere | Seen::NotHere => {}
            }
            // Re-look at least every second (the 5 s rule above needs a clock).
            let wake = deadline.min(tokio::time::Instant::now() + Duration::from_secs(1));
            match tokio::time::timeout_at(wake, routes.changed()).await {
                Ok(Err(_)) => return Err(timed_out()),
                _ if tokio::time::Instant::now() >= deadline => return Err(timed_out()),
                _ => {}
            }
        }
    }
}
