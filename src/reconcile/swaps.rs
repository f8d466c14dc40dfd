//! Model swaps for `/metrics`: which operations are swaps, why they ran, how long they took.
//!
//! An operation is a swap when it launches a model; its cause is read from the plan's
//! steps ([`swap_cause`], pure). Owns the `spark_control_swap_duration_seconds` histogram
//! per (cause, result). Must not decide anything: the loop only reports finished
//! operations here.

use std::time::Duration;

use crate::plan::{Action, Step, StopReason};
use crate::prom::{family, Histogram, SWAP_BUCKETS};

/// Why a swap ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapCause {
    /// Nothing ran (first start, or after a stop).
    Start,
    /// Another model was desired.
    Swap,
    /// The same model with changed launch settings.
    Relaunch,
    /// The model had crashed.
    Crash,
    /// Something unidentified ran and was replaced.
    Unidentified,
}

impl SwapCause {
    /// Every cause, in the order rendered.
    pub const ALL: [SwapCause; 5] = [
        SwapCause::Start,
        SwapCause::Swap,
        SwapCause::Relaunch,
        SwapCause::Crash,
        SwapCause::Unidentified,
    ];

    /// The `cause` label.
    pub fn label(self) -> &'static str {
        match self {
            SwapCause::Start => "start",
            SwapCause::Swap => "swap",
            SwapCause::Relaunch => "relaunch",
            SwapCause::Crash => "crash",
            SwapCause::Unidentified => "unidentified",
        }
    }
}

/// How an operation ended, as the `result` label.
pub const RESULTS: [&str; 3] = ["succeeded", "failed", "cancelled"];

/// The cause of an operation that launches a model; None when it launches none.
pub fn swap_cause(steps: &[Step]) -> Option<SwapCause> {
    if !steps
        .iter()
        .any(|s| matches!(s.action, Action::LaunchModel { .. }))
    {
        return None;
    }
    let stop = steps.iter().find_map(|s| match &s.action {
        Action::StopModel { reason, .. } => Some(reason),
        _ => None,
    });
    Some(match stop {
        Some(StopReason::Swap { .. }) => SwapCause::Swap,
        Some(StopReason::Relaunch { .. }) => SwapCause::Relaunch,
        Some(StopReason::Crashed { .. }) => SwapCause::Crash,
        Some(StopReason::Unidentified) => SwapCause::Unidentified,
        Some(StopReason::NoneDesired | StopReason::Cleanup) | None => SwapCause::Start,
    })
}

/// Swap durations per cause and result.
pub struct SwapMetrics {
    by: Vec<Histogram>,
}

impl Default for SwapMetrics {
    fn default() -> Self {
        SwapMetrics {
            by: (0..SwapCause::ALL.len() * RESULTS.len())
                .map(|_| Histogram::new(SWAP_BUCKETS))
                .collect(),
        }
    }
}

impl std::fmt::Debug for SwapMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwapMetrics").finish_non_exhaustive()
    }
}

impl SwapMetrics {
    fn slot(cause: SwapCause, result: &str) -> Option<usize> {
        let c = SwapCause::ALL.iter().position(|x| *x == cause)?;
        let r = RESULTS.iter().position(|x| *x == result)?;
        Some(c * RESULTS.len() + r)
    }

    /// Counts a finished swap; `result` is one of [`RESULTS`].
    pub fn record(&self, cause: SwapCause, result: &str, took: Duration) {
        if let Some(i) = Self::slot(cause, result) {
            self.by[i].record(took);
        }
    }

    /// Swaps counted for (cause, result).
    pub fn count(&self, cause: SwapCause, result: &str) -> u64 {
        Self::slot(cause, result).map_or(0, |i| self.by[i].count())
    }

    /// Appends `spark_control_swap_duration_seconds`, every (cause, result) present.
    pub fn render(&self, out: &mut String) {
        let name = "spark_control_swap_duration_seconds";
        family(
            out,
            name,
            "histogram",
            "Operations that launch a model, from start to end, by cause and result.",
        );
        for cause in SwapCause::ALL {
            for result in RESULTS {
                if let Some(i) = Self::slot(cause, result) {
                    self.by[i].render(out, name, &[("cause", cause.label()), ("result", result)]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop(reason: StopReason) -> Step {
        Step {
            action: Action::StopModel {
                host: "spark1".into(),
                deployment: String::new(),
                model: None,
                reason,
            },
            why: String::new(),
        }
    }

    fn wait() -> Step {
        Step {
            action: Action::WaitReady {
                model: "m".into(),
                repo: "r".into(),
                host: "spark1".into(),
                deployment: String::new(),
                served: vec![],
                port: 8888,
                timeout_secs: 1,
            },
            why: String::new(),
        }
    }

    fn launch() -> Step {
        let spec = crate::model::catalog::LaunchSpec {
            model: "m".into(),
            repo: "r".into(),
            mode: crate::model::desired::Mode::Solo,
            hosts: vec!["spark1".into()],
            nodes: vec!["127.0.0.2".into()],
            port: 8888,
            flags: vec![],
            env: Default::default(),
            served: vec![],
            settings: Default::default(),
            start_timeout_secs: 1,
            fingerprint: "f".into(),
        };
        Step {
            action: Action::LaunchModel {
                spec,
                host: "spark1".into(),
                deployment: String::new(),
                generation: crate::launcher::Generation::B,
                argv: vec![],
            },
            why: String::new(),
        }
    }

    fn check(steps: Vec<Step>, expected: Option<SwapCause>) {
        assert_eq!(swap_cause(&steps), expected, "{steps:?}");
    }

    #[test]
    fn causes_come_from_the_stop_before_the_launch() {
        check(vec![], None);
        check(vec![stop(StopReason::NoneDesired)], None);
        check(vec![wait()], None);
        check(vec![launch(), wait()], Some(SwapCause::Start));
        check(
            vec![stop(StopReason::Swap { to: "b".into() }), launch(), wait()],
            Some(SwapCause::Swap),
        );
        check(
            vec![stop(StopReason::Relaunch { changes: vec![] }), launch()],
            Some(SwapCause::Relaunch),
        );
        check(
            vec![stop(StopReason::Crashed { why: "x".into() }), launch()],
            Some(SwapCause::Crash),
        );
        check(
            vec![stop(StopReason::Unidentified), launch()],
            Some(SwapCause::Unidentified),
        );
        check(
            vec![stop(StopReason::Cleanup), launch()],
            Some(SwapCause::Start),
        );
    }

    #[test]
    fn durations_land_in_their_cause_and_result() {
        let m = SwapMetrics::default();
        m.record(SwapCause::Swap, "succeeded", Duration::from_secs(7));
        m.record(SwapCause::Swap, "bogus", Duration::from_secs(7));
        assert_eq!(m.count(SwapCause::Swap, "succeeded"), 1);
        assert_eq!(m.count(SwapCause::Swap, "failed"), 0);
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains(
            "spark_control_swap_duration_seconds_bucket{cause=\"swap\",result=\"succeeded\",le=\"10\"} 1\n"
        ));
        assert!(out.contains(
            "spark_control_swap_duration_seconds_count{cause=\"crash\",result=\"failed\"} 0\n"
        ));
    }
}
