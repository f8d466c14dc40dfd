//! Command output: line splitting, streaming to a listener, and bounded buffers.
//!
//! Both transports feed raw byte chunks into a [`Collector`]. It splits them into lines
//! (`\n`, a trailing `\r` dropped, invalid UTF-8 replaced), sends each line to the
//! listener as it completes, and keeps only the **last [`TAIL_BYTES`] bytes** of stdout
//! and of stderr for [`Output`], so a chatty command cannot eat memory. A line longer
//! than [`MAX_LINE`] is cut into pieces. This module does no IO besides the channel send.

use std::time::Duration;

use tokio::sync::mpsc::Sender;

/// How much of stdout and of stderr [`Output`] keeps: the last 256 KiB of each.
pub const TAIL_BYTES: usize = 256 * 1024;
/// A line longer than this is emitted in pieces of this size.
const MAX_LINE: usize = 64 * 1024;

/// One output line, without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Out(String),
    Err(String),
}

/// The result of a finished command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Exit status; `None` if the process died from a signal or the server sent none.
    pub status: Option<u32>,
    /// The last [`TAIL_BYTES`] of stdout (whole lines, `\n`-joined).
    pub stdout: String,
    /// The last [`TAIL_BYTES`] of stderr.
    pub stderr: String,
    /// True if older output was dropped from `stdout` or `stderr`.
    pub truncated: bool,
    pub elapsed: Duration,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// How the command ended, for people: "exited with status 2", "was killed by a signal
    /// (no exit status)".
    pub fn exit_text(&self) -> String {
        match self.status {
            Some(s) => format!("exited with status {s}"),
            None => "was killed by a signal (no exit status)".to_string(),
        }
    }

    /// `Ok(self)` if the exit status is 0, else [`super::RemoteError::Failed`].
    pub fn check(self, host: &str) -> Result<Output, super::RemoteError> {
        if self.success() {
            return Ok(self);
        }
        let status = match self.status {
            Some(s) => format!("exit status {s}"),
            None => "no exit status (killed by a signal?)".to_string(),
        };
        let tail: Vec<&str> = self.stderr.lines().rev().take(5).collect();
        let stderr_tail = tail.into_iter().rev().collect::<Vec<_>>().join(" / ");
        Err(super::RemoteError::Failed {
            host: host.to_string(),
            status,
            stderr_tail,
        })
    }
}

/// Which stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Out,
    Err,
}

/// Splits chunks into lines, streams them, keeps bounded tails.
pub(crate) struct Collector {
    tx: Option<Sender<Line>>,
    out: Half,
    err: Half,
}

#[derive(Default)]
struct Half {
    partial: Vec<u8>,
    tail: String,
    truncated: bool,
}

impl Collector {
    pub(crate) fn new(tx: Option<Sender<Line>>) -> Self {
        Collector {
            tx,
            out: Half::default(),
            err: Half::default(),
        }
    }

    /// Feed a chunk; complete lines are sent to the listener (a closed listener is ignored).
    pub(crate) async fn feed(&mut self, stream: Stream, data: &[u8]) {
        let half = match stream {
            Stream::Out => &mut self.out,
            Stream::Err => &mut self.err,
        };
        let mut lines = Vec::new();
        half.partial.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = half.partial[start..].iter().position(|b| *b == b'\n') {
            lines.push(to_line(&half.partial[start..start + pos]));
            start += pos + 1;
        }
        half.partial.drain(..start);
        while half.partial.len() >= MAX_LINE {
            let rest = half.partial.split_off(MAX_LINE);
            lines.push(to_line(&half.partial));
            half.partial = rest;
        }
        for l in lines {
            self.emit(stream, l).await;
        }
    }

    async fn emit(&mut self, stream: Stream, line: String) {
        let half = match stream {
            Stream::Out => &mut self.out,
            Stream::Err => &mut self.err,
        };
        half.push_tail(&line);
        if let Some(tx) = &self.tx {
            let msg = match stream {
                Stream::Out => Line::Out(line),
                Stream::Err => Line::Err(line),
            };
            if tx.send(msg).await.is_err() {
                self.tx = None; // the listener went away; keep collecting
            }
        }
    }

    /// Flush unterminated last lines and build the output.
    pub(crate) async fn finish(mut self, status: Option<u32>, elapsed: Duration) -> Output {
        for stream in [Stream::Out, Stream::Err] {
            let half = match stream {
                Stream::Out => &mut self.out,
                Stream::Err => &mut self.err,
            };
            if !half.partial.is_empty() {
                let l = to_line(&std::mem::take(&mut half.partial));
                self.emit(stream, l).await;
                // The output had no final newline: do not invent one.
                let half = match stream {
                    Stream::Out => &mut self.out,
                    Stream::Err => &mut self.err,
                };
                half.tail.pop();
            }
        }
        Output {
            status,
            truncated: self.out.truncated || self.err.truncated,
            stdout: self.out.tail,
            stderr: self.err.tail,
            elapsed,
        }
    }
}

impl Half {
    fn push_tail(&mut self, line: &str) {
        self.tail.push_str(line);
        self.tail.push('\n');
        // Amortised: trim only when twice over the limit, back down to the limit.
        if self.tail.len() > 2 * TAIL_BYTES {
            let mut cut = self.tail.len() - TAIL_BYTES;
            while !self.tail.is_char_boundary(cut) {
                cut += 1;
            }
            // Start at a line boundary when there is one nearby.
            if let Some(nl) = self.tail[cut..].find('\n') {
                cut += nl + 1;
            }
            self.tail.drain(..cut);
            self.truncated = true;
        }
    }
}

fn to_line(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_text_reads_as_english() {
        let out = |status| Output {
            status,
            stdout: String::new(),
            stderr: String::new(),
            truncated: false,
            elapsed: Duration::ZERO,
        };
        assert_eq!(out(Some(2)).exit_text(), "exited with status 2");
        assert_eq!(
            out(None).exit_text(),
            "was killed by a signal (no exit status)"
        );
    }

    async fn collect(chunks: &[(Stream, &[u8])]) -> (Vec<Line>, Output) {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1000);
        let mut c = Collector::new(Some(tx));
        for (s, d) in chunks {
            c.feed(*s, d).await;
        }
        let out = c.finish(Some(0), Duration::ZERO).await;
        let mut lines = Vec::new();
        while let Ok(l) = rx.try_recv() {
            lines.push(l);
        }
        (lines, out)
    }

    #[tokio::test]
    async fn splits_lines_across_chunks() {
        let (lines, out) = collect(&[
            (Stream::Out, b"a\nb"),
            (Stream::Err, b"e1\r\n"),
            (Stream::Out, b"c\n\nd"),
            (Stream::Out, "\u{e9}".as_bytes()),
        ])
        .await;
        assert_eq!(
            lines,
            vec![
                Line::Out("a".into()),
                Line::Err("e1".into()),
                Line::Out("bc".into()),
                Line::Out("".into()),
                Line::Out("d\u{e9}".into()),
            ]
        );
        assert_eq!(out.stdout, "a\nbc\n\nd\u{e9}");
        assert_eq!(out.stderr, "e1\n");
        assert!(!out.truncated);
    }

    #[tokio::test]
    async fn tails_are_bounded() {
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        drop(_rx);
        let mut c = Collector::new(Some(tx));
        let line = vec![b'x'; 999];
        for _ in 0..2000 {
            c.feed(Stream::Out, &line).await;
            c.feed(Stream::Out, b"\n").await;
        }
        c.feed(Stream::Err, &vec![b'y'; 3 * MAX_LINE]).await;
        let out = c.finish(None, Duration::ZERO).await;
        assert!(out.truncated);
        assert!(out.stdout.len() <= 2 * TAIL_BYTES, "{}", out.stdout.len());
        assert!(out.stdout.len() >= TAIL_BYTES - 1000);
        assert!(out.stdout.starts_with('x') && out.stdout.ends_with("x\n"));
        assert_eq!(out.stderr.lines().count(), 3, "long line cut in pieces");
    }
}
