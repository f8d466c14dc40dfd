//! The event log: connectivity transitions, pushed health reports, actions and results.
//!
//! Kept in memory (bounded) and persisted as JSON lines in `<data dir>/events.jsonl`,
//! trimmed to the bound when it grows past twice that. Readers filter by service/host and
//! time. The only IO is appending to / rewriting that one file.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The poller saw a host or service change between up and down.
    Transition,
    /// A LAN app reported success or failure (`POST /api/health-event`).
    Report,
    /// The control loop ran an action.
    Action,
    /// An operation ended.
    Result,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When.
    pub at: DateTime<Utc>,
    /// Kind.
    pub kind: EventKind,
    /// The service or host concerned (`vllm`, `parakeet`, `spark2`, ...).
    pub service: String,
    /// Up/success or down/failure.
    pub ok: bool,
    /// Who reported it (`poller`, `controller`, or the app's own name).
    pub source: String,
    /// What went wrong, or what happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Latency the reporter measured, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<f64>,
}

/// Filter for reading events.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventFilter {
    /// Only this service/host.
    pub service: Option<String>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only this kind.
    pub kind: Option<EventKind>,
    /// At most this many (newest), default 500.
    pub limit: Option<usize>,
}

struct Inner {
    events: VecDeque<Event>,
    lines_in_file: usize,
}

/// The event log.
pub struct EventLog {
    inner: Mutex<Inner>,
    path: Option<PathBuf>,
    capacity: usize,
}

impl EventLog {
    /// An event log keeping `capacity` events, persisted at `path` (None: memory only).
    /// Existing events in the file are loaded; unreadable lines are skipped.
    pub fn open(path: Option<PathBuf>, capacity: usize) -> Self {
        let mut events = VecDeque::new();
        let mut lines = 0;
        if let Some(p) = &path {
            if let Ok(text) = std::fs::read_to_string(p) {
                for line in text.lines() {
                    lines += 1;
                    if let Ok(e) = serde_json::from_str::<Event>(line) {
                        if events.len() >= capacity {
                            events.pop_front();
                        }
                        events.push_back(e);
                    }
                }
            }
        }
        EventLog {
            inner: Mutex::new(Inner {
                events,
                lines_in_file: lines,
            }),
            path,
            capacity,
        }
    }

    /// Appends an event (memory and file). File errors are logged, never fatal.
    pub fn append(&self, e: Event) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.events.len() >= self.capacity {
            g.events.pop_front();
        }
        g.events.push_back(e.clone());
        let Some(path) = &self.path else { return };
        g.lines_in_file += 1;
        let result = if g.lines_in_file > self.capacity * 2 {
            // Rewrite with only what is kept, atomically.
            let tmp = path.with_extension("jsonl.tmp");
            let body: String = g
                .events
                .iter()
                .filter_map(|e| serde_json::to_string(e).ok())
                .map(|l| l + "\n")
                .collect();
            g.lines_in_file = g.events.len();
            std::fs::write(&tmp, body).and_then(|_| std::fs::rename(&tmp, path))
        } else {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| {
                    let mut line = serde_json::to_string(&e).unwrap_or_default();
                    line.push('\n');
                    f.write_all(line.as_bytes())
                })
        };
        if let Err(err) = result {
            tracing::warn!("cannot write the event log {}: {err}", path.display());
        }
    }

    /// Events matching the filter, oldest first.
    pub fn query(&self, f: &EventFilter) -> Vec<Event> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let limit = f.limit.unwrap_or(500).min(self.capacity);
        let mut out: Vec<Event> = g
            .events
            .iter()
            .rev()
            .filter(|e| f.service.as_ref().is_none_or(|s| *s == e.service))
            .filter(|e| f.since.is_none_or(|t| e.at >= t))
            .filter(|e| f.until.is_none_or(|t| e.at < t))
            .filter(|e| f.kind.is_none_or(|k| k == e.kind))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(service: &str, ok: bool) -> Event {
        Event {
            at: Utc::now(),
            kind: EventKind::Report,
            service: service.into(),
            ok,
            source: "test".into(),
            error: None,
            ms: None,
        }
    }

    #[test]
    fn bounded_persisted_filtered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        let log = EventLog::open(Some(path.clone()), 10);
        for i in 0..35 {
            log.append(ev(if i % 2 == 0 { "vllm" } else { "parakeet" }, i % 3 == 0));
        }
        assert_eq!(log.query(&EventFilter::default()).len(), 10);
        let only = log.query(&EventFilter {
            service: Some("vllm".into()),
            ..Default::default()
        });
        assert!(only.iter().all(|e| e.service == "vllm") && !only.is_empty());
        // The file stays bounded and reloads.
        let lines = std::fs::read_to_string(&path)
            .expect("file")
            .lines()
            .count();
        assert!(lines <= 20, "{lines}");
        let again = EventLog::open(Some(path), 10);
        assert_eq!(
            again.query(&EventFilter::default()),
            log.query(&EventFilter::default())
        );
    }
}
