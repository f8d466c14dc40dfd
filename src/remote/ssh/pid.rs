//! The pid preamble: every SSH command first prints its shell's pid on stderr, so a
//! timed-out command's process group can be killed even where the server refuses
//! channel signals. This module only builds the preamble and strips its line back off.

/// Prepended to every command: reports the shell's pid as stderr's first line.
pub(super) const PID_PREAMBLE: &str = "printf 'spark-control-pid:%s\\n' \"$$\" >&2; ";
const PID_MARK: &[u8] = b"spark-control-pid:";

/// Takes the preamble's pid line off the front of stderr.
#[derive(Default)]
pub(super) struct PidLine {
    buf: Vec<u8>,
    done: bool,
    pub(super) pid: Option<u32>,
}

impl PidLine {
    /// Feed stderr bytes; returns what belongs to the command's own stderr.
    pub(super) fn feed(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        if self.done {
            return Some(data.to_vec());
        }
        self.buf.extend_from_slice(data);
        let nl = self.buf.iter().position(|b| *b == b'\n');
        let Some(nl) = nl else {
            // Not a pid line after all (or absurdly long): give it back.
            if self.buf.len() > 64
                || !PID_MARK.starts_with(&self.buf[..self.buf.len().min(PID_MARK.len())])
            {
                self.done = true;
                return Some(std::mem::take(&mut self.buf));
            }
            return None;
        };
        self.done = true;
        let line = &self.buf[..nl];
        if let Some(num) = line.strip_prefix(PID_MARK) {
            self.pid = std::str::from_utf8(num)
                .ok()
                .and_then(|n| n.trim().parse().ok());
            let rest = self.buf[nl + 1..].to_vec();
            self.buf.clear();
            return (!rest.is_empty()).then_some(rest);
        }
        Some(std::mem::take(&mut self.buf))
    }

    /// Whether the first stderr line has been read (and with it the pid, if it was one).
    pub(super) fn done(&self) -> bool {
        self.done
    }

    /// At the end: anything still held back belongs to stderr.
    pub(super) fn finish(&mut self) -> Option<Vec<u8>> {
        self.done = true;
        (!self.buf.is_empty()).then(|| std::mem::take(&mut self.buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(chunks: &[&[u8]], expected_pid: Option<u32>, expected_err: &[u8]) {
        let mut p = PidLine::default();
        let mut err = Vec::new();
        for c in chunks {
            err.extend(p.feed(c).unwrap_or_default());
        }
        err.extend(p.finish().unwrap_or_default());
        assert_eq!(
            (p.pid, err.as_slice()),
            (expected_pid, expected_err),
            "{chunks:?}"
        );
    }

    #[test]
    fn strips_only_the_pid_line() {
        check(&[b"spark-control-pid:42\nwarn\n"], Some(42), b"warn\n");
        check(&[b"spark-co", b"ntrol-pid:7", b"\n", b"x"], Some(7), b"x");
        check(&[b"spark-control-pid:9\n"], Some(9), b"");
        check(&[b"boom\n"], None, b"boom\n");
        check(&[b"spark"], None, b"spark");
        check(
            &[b"spark-control-pid:9\n", b"spark-control-pid:1\n"],
            Some(9),
            b"spark-control-pid:1\n",
        );
    }
}
