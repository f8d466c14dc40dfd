//! Lexical helpers over YAML text: line/column arithmetic and finding where a token ends.
//!
//! Owns: byte-position scanning used to recover node extents that `yaml-rust2` markers do
//! not give. All positions are byte indices on char boundaries. Must not: parse structure.

/// 1-based line number of byte `pos`.
pub(crate) fn line_of(t: &str, pos: usize) -> usize {
    t.as_bytes()[..pos.min(t.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Byte index of the start of the line holding `pos`.
pub(crate) fn line_start(t: &str, pos: usize) -> usize {
    t[..pos].rfind('\n').map(|i| i + 1).unwrap_or(0)
}

/// Byte index of the `\n` ending the line holding `pos` (or of a `\r` before it, or EOF).
pub(crate) fn line_end(t: &str, pos: usize) -> usize {
    let e = t[pos..].find('\n').map(|i| pos + i).unwrap_or(t.len());
    if e > pos && t.as_bytes()[e - 1] == b'\r' {
        e - 1
    } else {
        e
    }
}

/// Column (in chars) of `pos` within its line.
pub(crate) fn col_of(t: &str, pos: usize) -> usize {
    t[line_start(t, pos)..pos].chars().count()
}

/// Skip spaces, tabs, line breaks and comments from `pos`.
pub(crate) fn skip_ws_comments(t: &str, mut pos: usize) -> usize {
    let b = t.as_bytes();
    while pos < b.len() {
        match b[pos] {
            b' ' | b'\t' | b'\r' | b'\n' => pos += 1,
            b'#' => pos = t[pos..].find('\n').map(|i| pos + i).unwrap_or(b.len()),
            _ => break,
        }
    }
    pos
}

pub(crate) fn back_to_dash(t: &str, pos: usize) -> usize {
    let b = t.as_bytes();
    let mut p = pos;
    while p > 0 && matches!(b[p - 1], b' ' | b'\t') {
        p -= 1;
    }
    if p > 0 && b[p - 1] == b'-' {
        p - 1
    } else {
        pos
    }
}

/// Find the `:` after a key ending at `pos` (same line in block context).
pub(crate) fn find_colon(t: &str, pos: usize, flow: bool) -> Option<usize> {
    let p = if flow {
        skip_ws_comments(t, pos)
    } else {
        pos + t[pos..].len() - t[pos..].trim_start_matches([' ', '\t']).len()
    };
    t[p..].starts_with(':').then_some(p)
}

pub(crate) fn scan_token_end(t: &str, pos: usize) -> usize {
    t[pos..]
        .find(|c: char| c.is_whitespace() || ",[]{}".contains(c))
        .map(|i| pos + i)
        .unwrap_or(t.len())
}

pub(crate) fn quoted_end(t: &str, pos: usize, q: char) -> Option<usize> {
    let mut it = t[pos..].char_indices().skip(1).peekable();
    while let Some((i, c)) = it.next() {
        if q == '"' && c == '\\' {
            it.next();
        } else if c == q {
            if q == '\'' && it.peek().map(|(_, c)| *c) == Some('\'') {
                it.next();
                continue;
            }
            return Some(pos + i + c.len_utf8());
        }
    }
    None
}

/// End of a plain scalar starting at `pos` whose value is `value`.
pub(crate) fn plain_end(t: &str, pos: usize, value: &str, flow: bool) -> Option<usize> {
    if t[pos..].starts_with(value) {
        return Some(pos + value.len());
    }
    // Multi-line plain scalar: fold line pieces until they spell the value.
    let mut folded = String::new();
    let mut pending_breaks = 0usize;
    let mut p = pos;
    for _ in 0..10_000 {
        let le = line_end(t, p);
        let mut seg = &t[p..le];
        if let Some(i) = seg.find(" #") {
            seg = &seg[..i];
        }
        if flow {
            if let Some(i) = seg.find([',', ']', '}']) {
                seg = &seg[..i];
            }
        }
        let trimmed = seg.trim_matches([' ', '\t']);
        if trimmed.is_empty() {
            pending_breaks += 1;
        } else {
            if !folded.is_empty() {
                if pending_breaks == 0 {
                    folded.push(' ');
                } else {
                    folded.extend(std::iter::repeat_n('\n', pending_breaks));
                }
            }
            pending_breaks = 0;
            folded.push_str(trimmed);
            let seg_start = p + seg.find(trimmed).unwrap_or(0);
            if folded == value {
                return Some(seg_start + trimmed.len());
            }
            if folded.len() > value.len() {
                return None;
            }
        }
        if le >= t.len() {
            return None;
        }
        p = t[le..].find('\n').map(|i| le + i + 1)?;
    }
    None
}

/// End of a block scalar (`|`/`>`) whose indicator is at `start`: the end of its last
/// non-blank content line (lines indented deeper than the parent).
pub(crate) fn block_scalar_end(t: &str, start: usize, parent_indent: isize) -> Option<usize> {
    let mut end = line_end(t, start);
    let mut nl = t[start..].find('\n').map(|i| start + i);
    while let Some(n) = nl {
        let ls = n + 1;
        let next = t[ls..].find('\n').map(|i| ls + i);
        let line = t[ls..next.unwrap_or(t.len())].trim_end_matches('\r');
        let content = line.trim_start_matches(' ');
        if !content.trim().is_empty() {
            let indent = (line.len() - content.len()) as isize;
            if indent <= parent_indent {
                break;
            }
            end = ls + line.len();
        }
        nl = next;
    }
    Some(end)
}
