//! The one poll-until-deadline loop of the executor: probe, and until the probe says
//! done, pause and probe again; past the deadline the step fails with
//! [`ExecError::Timeout`] naming what it waited for and what was still not so.
//!
//! A wait is cancellable (the operation's token ends it at once) or runs to its end,
//! which is what the stop's own verification needs: a stop runs to completion even in a
//! cancelled operation, so the hosts are left in a known state.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use tokio_util::sync::CancellationToken;

use super::{ExecError, Executor};

/// What one probe found.
pub(crate) enum Probe<T> {
    /// The wait is over.
    Done(T),
    /// Not yet: what is still not so, in a sentence (the timeout's message if the deadline
    /// passes now).
    NotYet(String),
}

/// Whether a cancelled operation ends a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnCancel {
    /// Stop waiting at once: [`ExecError::Cancelled`].
    Stop,
    /// Wait on (the step is a safe point's clean-up, such as the stop's verification).
    Finish,
}

/// A wait: what for, how long at most, how often to probe.
#[derive(Debug, Clone)]
pub(crate) struct Wait {
    /// What is waited for, for people ("vLLM ready", "magpie running on spark2").
    pub what: String,
    /// The deadline, from the first probe.
    pub within: Duration,
    /// The pause between probes.
    pub every: Duration,
    /// Whether cancellation ends the wait.
    pub on_cancel: OnCancel,
}

impl Wait {
    /// A cancellable wait for `what`, at most `within`, probing every `every`.
    pub fn new(what: impl Into<String>, within: Duration, every: Duration) -> Self {
        Wait {
            what: what.into(),
            within,
            every,
            on_cancel: OnCancel::Stop,
        }
    }

    /// The same wait, not ended by cancellation.
    pub fn finishing(mut self) -> Self {
        self.on_cancel = OnCancel::Finish;
        self
    }
}

impl Executor {
    /// [`poll_until`] with this operation's cancellation.
    pub(crate) async fn poll_until<T, F>(
        &self,
        step: &str,
        wait: &Wait,
        probe: impl FnMut() -> F,
    ) -> Result<T, ExecError>
    where
        F: Future<Output = Result<Probe<T>, ExecError>>,
    {
        poll_until(&self.cancel, step, wait, probe).await
    }
}

/// Probes until `probe` says [`Probe::Done`], an error, cancellation of `cancel` (if the
/// wait is cancellable) or the deadline ([`ExecError::Timeout`] with the last
/// [`Probe::NotYet`] text). The first probe runs at once.
///
/// The probe is a closure returning a future (`|| async move { … }`) rather than an async
/// closure: the executor's futures must be `Send`, which async closures that borrow do
/// not prove yet (rustc's "implementation of `Send` is not general enough"). State kept
/// between probes lives in a `Mutex` the probe locks briefly.
pub(crate) async fn poll_until<T, F>(
    cancel: &CancellationToken,
    step: &str,
    wait: &Wait,
    mut probe: impl FnMut() -> F,
) -> Result<T, ExecError>
where
    F: Future<Output = Result<Probe<T>, ExecError>>,
{
    let deadline = Instant::now() + wait.within;
    let cancellable = wait.on_cancel == OnCancel::Stop;
    loop {
        if cancellable && cancel.is_cancelled() {
            return Err(cancelled(step, wait));
        }
        let not_yet = match probe().await? {
            Probe::Done(value) => return Ok(value),
            Probe::NotYet(why) => why,
        };
        if Instant::now() >= deadline {
            return Err(ExecError::Timeout {
                step: step.into(),
                waited_for: wait.what.clone(),
                after: wait.within,
                message: not_yet,
            });
        }
        if cancellable {
            tokio::select! {
                _ = tokio::time::sleep(wait.every) => {}
                _ = cancel.cancelled() => return Err(cancelled(step, wait)),
            }
        } else {
            tokio::time::sleep(wait.every).await;
        }
    }
}

fn cancelled(step: &str, wait: &Wait) -> ExecError {
    ExecError::cancelled(step, format!("interrupted while waiting for {}", wait.what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::execute::ExecErrorKind;

    const STEP: &str = "wait for qwen36";

    fn wait() -> Wait {
        Wait::new(
            "qwen36 ready",
            Duration::from_secs(2),
            Duration::from_millis(100),
        )
    }

    /// Probes `n` times "not yet", then "done"; returns the result and the probes made.
    async fn run(
        cancel: &CancellationToken,
        wait: &Wait,
        n: usize,
    ) -> (Result<u32, ExecError>, usize) {
        let count = AtomicUsize::new(0);
        let r = poll_until(cancel, STEP, wait, || {
            let probes = count.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                Ok(if probes > n {
                    Probe::Done(7)
                } else {
                    Probe::NotYet(format!("probe {probes}: not ready"))
                })
            }
        })
        .await;
        (r, count.into_inner())
    }

    #[tokio::test(start_paused = true)]
    async fn done_at_once_or_after_a_few_probes() {
        let cancel = CancellationToken::new();
        let (r, probes) = run(&cancel, &wait(), 0).await;
        assert_eq!((r.ok(), probes), (Some(7), 1));
        let (r, probes) = run(&cancel, &wait(), 3).await;
        assert_eq!((r.ok(), probes), (Some(7), 4));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_is_a_timeout_with_the_last_probe() {
        let cancel = CancellationToken::new();
        let started = tokio::time::Instant::now();
        let (r, probes) = run(&cancel, &wait(), usize::MAX).await;
        let e = r.expect_err("never done");
        assert_eq!(e.kind(), ExecErrorKind::Timeout);
        let ExecError::Timeout {
            waited_for,
            after,
            message,
            ..
        } = &e
        else {
            unreachable!("kind is timeout")
        };
        assert_eq!(waited_for, "qwen36 ready");
        assert_eq!(*after, Duration::from_secs(2));
        assert_eq!(message, &format!("probe {probes}: not ready"));
        assert_eq!(e.to_string(), format!("{STEP}: probe {probes}: not ready"));
        // 0, 0.1, … 2.0 s: the probe at the deadline is the last.
        assert_eq!(probes, 21);
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_ends_a_cancellable_wait_at_once() {
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            c2.cancel();
        });
        let started = tokio::time::Instant::now();
        let (r, probes) = run(&cancel, &wait(), usize::MAX).await;
        let e = r.expect_err("cancelled");
        assert_eq!(e.kind(), ExecErrorKind::Cancelled, "{e}");
        assert_eq!(
            e.to_string(),
            "cancelled: wait for qwen36: interrupted while waiting for qwen36 ready"
        );
        assert_eq!(probes, 3);
        assert_eq!(started.elapsed(), Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_finishing_ignores_cancellation() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let (r, probes) = run(&cancel, &wait().finishing(), 3).await;
        assert_eq!((r.ok(), probes), (Some(7), 4));
        let (r, _) = run(&cancel, &wait().finishing(), usize::MAX).await;
        assert_eq!(r.map_err(|e| e.kind()).err(), Some(ExecErrorKind::Timeout));
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_error_ends_the_wait() {
        let cancel = CancellationToken::new();
        let r: Result<(), _> = poll_until(&cancel, STEP, &wait(), || async {
            Err(ExecError::check(STEP, "the container exited"))
        })
        .await;
        assert_eq!(r.map_err(|e| e.kind()).err(), Some(ExecErrorKind::Check));
    }
}
