//! Operation logs: a bounded backlog plus a live broadcast.
//!
//! The executor writes lines (one per remote output line or step message); the HTTP layer
//! reads the backlog and subscribes to the broadcast for SSE. A slow reader lags and is
//! told how many lines it skipped (tokio broadcast semantics); the writer never blocks.
//! Owns no IO.

use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// A remote command's stdout.
    Stdout,
    /// A remote command's stderr.
    Stderr,
    /// spark-control's own message (step started, done, failed).
    Control,
}

/// One log line.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// Increasing sequence number (for resuming and for "skipped N").
    pub seq: u64,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// The operation it belongs to, if any.
    pub op: Option<u64>,
    /// The host it came from, if any.
    pub host: Option<String>,
    /// Stream.
    pub stream: Stream,
    /// The text (one line, without newline).
    pub text: String,
}

struct Inner {
    next: u64,
    backlog: VecDeque<LogLine>,
}

/// The log hub: bounded backlog + broadcast.
pub struct LogHub {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<LogLine>,
    capacity: usize,
}

impl LogHub {
    /// A hub keeping the last `capacity` lines.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(1024);
        LogHub {
            inner: Mutex::new(Inner {
                next: 1,
                backlog: VecDeque::with_capacity(capacity.min(4096)),
            }),
            tx,
            capacity,
        }
    }

    /// Appends a line. Never blocks on readers.
    pub fn push(
        &self,
        op: Option<u64>,
        host: Option<&str>,
        stream: Stream,
        text: impl Into<String>,
    ) {
        let mut text: String = text.into();
        if text.len() > 4096 {
            let mut cut = 4096;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        let line = {
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let line = LogLine {
                seq: g.next,
                at: Utc::now(),
                op,
                host: host.map(String::from),
                stream,
                text,
            };
            g.next += 1;
            if g.backlog.len() >= self.capacity {
                g.backlog.pop_front();
            }
            g.backlog.push_back(line.clone());
            line
        };
        let _ = self.tx.send(line);
    }

    /// The backlog (optionally one operation's lines only) and a receiver for what follows.
    /// Subscribing under the lock means no line falls between the two.
    pub fn subscribe(&self, op: Option<u64>) -> (Vec<LogLine>, broadcast::Receiver<LogLine>) {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.tx.subscribe();
        let lines = g
            .backlog
            .iter()
            .filter(|l| op.is_none() || l.op == op)
            .cloned()
            .collect();
        (lines, rx)
    }

    /// The backlog lines of one operation.
    pub fn of_operation(&self, op: u64) -> Vec<LogLine> {
        self.subscribe(Some(op)).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_is_bounded_and_ordered() {
        let hub = LogHub::new(3);
        for i in 0..5 {
            hub.push(Some(1), None, Stream::Stdout, format!("l{i}"));
        }
        let (lines, _) = hub.subscribe(None);
        let texts: Vec<_> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["l2", "l3", "l4"]);
        assert_eq!(lines[0].seq + 2, lines[2].seq);
    }

    #[tokio::test]
    async fn slow_reader_lags_writer_does_not_block() {
        let hub = LogHub::new(10);
        let (_, mut rx) = hub.subscribe(None);
        for i in 0..3000 {
            hub.push(None, None, Stream::Stdout, format!("{i}"));
        }
        match rx.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert!(n >= 3000 - 1024),
            other => panic!("expected a lag, got {other:?}"),
        }
    }
}
