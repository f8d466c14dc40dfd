//! Download jobs as data: their states, the per-host progress, the rate/ETA meter, the
//! "add to catalog" suggestion. Pure: no IO, no clock (times are passed in).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::desired::Mode;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting to start (host not reachable yet, backoff before a retry).
    Queued,
    /// Bytes are arriving.
    Running,
    /// No bytes arrived for a while; it is retried.
    Stalled,
    /// Gave up; `error` says why.
    Failed,
    /// Every file is in the cache.
    Done,
    /// Cancelled by a person (or by the operation that wanted it).
    Cancelled,
}

impl JobState {
    /// The state's name as the API spells it (`done`, `failed`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Stalled => "stalled",
            JobState::Failed => "failed",
            JobState::Done => "done",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether the job has ended.
    pub fn finished(self) -> bool {
        matches!(
            self,
            JobState::Failed | JobState::Done | JobState::Cancelled
        )
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who asked for the download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Origin {
    /// An API call ("paste an HF repo").
    AdHoc,
    /// A plan step: the active model is missing on a host.
    Declared {
        /// The operation that runs the step.
        op: u64,
    },
}

/// One host's part of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostJob {
    /// Host name.
    pub host: String,
    /// Its state.
    pub state: JobState,
    /// Bytes in the repo's cache folder on the host.
    pub bytes: u64,
    /// The repo's size on the Hub (None: size unknown).
    pub total: Option<u64>,
    /// Percent of `total`, when known.
    pub percent: Option<f64>,
    /// Bytes per second over the last few samples.
    pub rate_bps: Option<f64>,
    /// Seconds left at that rate, when the size is known.
    pub eta_secs: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
    /// A warning that does not stop it (stall, retrying).
    pub warning: Option<String>,
    /// Attempts started.
    pub attempts: u32,
    /// It failed in a way a retry repeats (the download tool is not installed, the repo
    /// does not exist or is gated): no retry is made, the host's setup must change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fatal: bool,
}

impl HostJob {
    /// A host part that has not started.
    pub fn new(host: &str, total: Option<u64>) -> Self {
        HostJob {
            host: host.to_string(),
            state: JobState::Queued,
            bytes: 0,
            total,
            percent: None,
            rate_bps: None,
            eta_secs: None,
            error: None,
            warning: None,
            attempts: 0,
            fatal: false,
        }
    }
}

/// The "add to catalog" prefill offered when a job is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    /// A catalog name derived from the repo.
    pub name: String,
    /// The repo.
    pub repo: String,
    /// Solo or cluster, as downloaded.
    pub mode: Mode,
}

/// A download of one repo onto one or more hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Id (also the file name in `<data>/downloads/`).
    pub id: String,
    /// The repo.
    pub repo: String,
    /// Solo (head) or cluster (every cluster host).
    pub mode: Mode,
    /// Who asked.
    pub origin: Origin,
    /// Per host.
    pub hosts: Vec<HostJob>,
    /// The job's state (from its hosts).
    pub state: JobState,
    /// The repo's size on the Hub, when known.
    pub total: Option<u64>,
    /// Why the size is unknown, when it is ("size unknown: …").
    pub note: Option<String>,
    /// When it was asked for.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Offered when done.
    pub suggestion: Option<Suggestion>,
}

impl Job {
    /// Recomputes `state` (and the suggestion) from the hosts.
    pub fn settle(&mut self, now: DateTime<Utc>) {
        self.state = aggregate(self.hosts.iter().map(|h| h.state));
        if self.state.finished() && self.finished_at.is_none() {
            self.finished_at = Some(now);
        }
        self.suggestion = (self.state == JobState::Done).then(|| suggestion(&self.repo, self.mode));
    }

    /// Overall fraction done (0..=1), when every host's size is known.
    pub fn fraction(&self) -> Option<f64> {
        let mut have = 0u64;
        let mut want = 0u64;
        for h in &self.hosts {
            want = want.saturating_add(h.total?);
            have = have.saturating_add(h.bytes.min(h.total?));
        }
        (want > 0).then(|| have as f64 / want as f64)
    }
}

/// The state of a job from its hosts' states: any failure fails it, all done is done,
/// all ended with a cancel is cancelled, a stall shows, else running or queued.
pub fn aggregate(states: impl Iterator<Item = JobState>) -> JobState {
    let v: Vec<JobState> = states.collect();
    let any = |s: JobState| v.contains(&s);
    if v.is_empty() {
        JobState::Queued
    } else if v.iter().all(|s| *s == JobState::Done) {
        JobState::Done
    } else if v.iter().all(|s| s.finished()) {
        if any(JobState::Failed) {
            JobState::Failed
        } else {
            JobState::Cancelled
        }
    } else if any(JobState::Failed) {
        JobState::Failed
    } else if any(JobState::Stalled) {
        JobState::Stalled
    } else if any(JobState::Running) {
        JobState::Running
    } else {
        JobState::Queued
    }
}

/// A catalog name for a repo: its name part, lower-cased, other characters as `-`,
/// at most 63 characters (a valid model name).
pub fn suggestion(repo: &str, mode: Mode) -> Suggestion {
    let tail = repo.rsplit('/').next().unwrap_or(repo);
    let mut name: String = tail
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name = name.trim_start_matches(['-', '.']).to_string();
    name.truncate(63);
    if name.is_empty() {
        name = "model".into();
    }
    Suggestion {
        name,
        repo: repo.to_string(),
        mode,
    }
}

/// Rate and ETA from recent (seconds, bytes) samples.
#[derive(Debug, Clone, Default)]
pub struct Meter {
    samples: Vec<(f64, u64)>,
}

/// Seconds of samples the rate is averaged over.
pub const RATE_WINDOW_SECS: f64 = 10.0;

impl Meter {
    /// Adds a sample taken at `t` seconds (any monotonic origin).
    pub fn add(&mut self, t: f64, bytes: u64) {
        // A drop in bytes (files cleaned up, cache replaced) starts the window afresh.
        if self.samples.last().is_some_and(|(_, b)| bytes < *b) {
            self.samples.clear();
        }
        self.samples.push((t, bytes));
        let newest = t;
        while self.samples.len() > 2 && newest - self.samples[0].0 > RATE_WINDOW_SECS {
            self.samples.remove(0);
        }
    }

    /// Bytes per second over the window, once two samples are at least 0.5 s apart.
    pub fn rate(&self) -> Option<f64> {
        let (t0, b0) = *self.samples.first()?;
        let (t1, b1) = *self.samples.last()?;
        let dt = t1 - t0;
        (dt >= 0.5).then(|| (b1.saturating_sub(b0)) as f64 / dt)
    }

    /// Seconds left to reach `total` at the current rate (None: unknown or no progress).
    pub fn eta(&self, total: Option<u64>) -> Option<u64> {
        let total = total?;
        let (_, bytes) = *self.samples.last()?;
        let left = total.saturating_sub(bytes);
        if left == 0 {
            return Some(0);
        }
        let r = self.rate().filter(|r| *r > 0.0)?;
        Some((left as f64 / r).ceil() as u64)
    }

    /// Forgets everything (a new attempt).
    pub fn reset(&mut self) {
        self.samples.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobState::*;

    #[test]
    fn state_names_are_the_wire_names() {
        for s in [Queued, Running, Stalled, Failed, Done, Cancelled] {
            assert_eq!(
                serde_json::to_value(s).expect("serializes"),
                serde_json::json!(s.to_string())
            );
        }
    }

    #[test]
    fn aggregate_cases() {
        for (hosts, want) in [
            (vec![], Queued),
            (vec![Done, Done], Done),
            (vec![Done, Running], Running),
            (vec![Stalled, Running], Stalled),
            (vec![Failed, Running], Failed),
            (vec![Cancelled, Done], Cancelled),
            (vec![Cancelled, Failed], Failed),
            (vec![Queued, Done], Queued),
        ] {
            assert_eq!(aggregate(hosts.clone().into_iter()), want, "{hosts:?}");
        }
    }

    #[test]
    fn suggestions() {
        for (repo, want) in [
            ("RedHatAI/Qwen3.6-35B-A3B-NVFP4", "qwen3.6-35b-a3b-nvfp4"),
            ("org/Some_Model", "some-model"),
            ("org/-x", "x"),
            ("org/___", "model"),
        ] {
            let s = suggestion(repo, Mode::Solo);
            assert_eq!(s.name, want, "{repo}");
            assert!(
                crate::model::valid_name(&s.name) || s.name == "model",
                "{}",
                s.name
            );
        }
    }

    #[test]
    fn meter_rate_and_eta() {
        let mut m = Meter::default();
        assert_eq!(m.rate(), None);
        m.add(0.0, 0);
        m.add(0.2, 100);
        assert_eq!(m.rate(), None, "too short a window");
        m.add(1.0, 1000);
        assert_eq!(m.rate(), Some(1000.0));
        assert_eq!(m.eta(Some(5000)), Some(4));
        assert_eq!(m.eta(None), None);
        // A long window keeps only the last ten seconds.
        for i in 2..30 {
            m.add(i as f64, 1000 + (i as u64 - 1) * 10);
        }
        let r = m.rate().expect("rate");
        assert!((r - 10.0).abs() < 1e-9, "{r}");
        // No progress: no ETA; done: 0.
        let mut still = Meter::default();
        still.add(0.0, 5);
        still.add(2.0, 5);
        assert_eq!(still.eta(Some(10)), None);
        assert_eq!(still.eta(Some(5)), Some(0));
        // Bytes falling restart the window.
        still.add(3.0, 1);
        assert_eq!(still.rate(), None);
    }

    #[test]
    fn fraction_needs_every_size() {
        let mut j = Job {
            id: "x".into(),
            repo: "o/r".into(),
            mode: Mode::Cluster,
            origin: Origin::AdHoc,
            hosts: vec![HostJob::new("a", Some(100)), HostJob::new("b", Some(100))],
            state: Queued,
            total: Some(100),
            note: None,
            started_at: Utc::now(),
            finished_at: None,
            suggestion: None,
        };
        j.hosts[0].bytes = 100;
        j.hosts[1].bytes = 50;
        assert_eq!(j.fraction(), Some(0.75));
        j.hosts[1].total = None;
        assert_eq!(j.fraction(), None);
        j.hosts[1].state = Done;
        j.hosts[0].state = Done;
        j.settle(Utc::now());
        assert_eq!(j.state, Done);
        assert!(j.finished_at.is_some());
        assert_eq!(j.suggestion.as_ref().map(|s| s.mode), Some(Mode::Cluster));
    }
}
