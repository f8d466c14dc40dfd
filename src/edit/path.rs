//! Path and node helpers for the edit engine: matching path segments to entries, building
//! the nested value for a missing path, inferring the file's indentation step, and the
//! error constructors that say where (path and line).
//!
//! Must not: splice text (that is `yaml.rs`), do IO.

use super::tree::{self, col_of, line_of, Kind, Node};
use super::yaml::{path_string, EditError, EditValue, PathSeg};

pub(crate) fn infer_step(t: &str, n: &Node) -> Option<usize> {
    if let Kind::Map {
        flow: false,
        entries,
    }
    | Kind::Seq {
        flow: false,
        entries,
    } = &n.kind
    {
        for e in entries {
            if let Kind::Map {
                flow: false,
                entries: inner,
            } = &e.value.kind
            {
                if let (Some(first), true) = (inner.first(), e.key.is_some()) {
                    let d = col_of(t, first.start).checked_sub(col_of(t, e.start));
                    if let Some(d) = d.filter(|d| *d > 0) {
                        return Some(d);
                    }
                }
            }
            if let Some(s) = infer_step(t, &e.value) {
                return Some(s);
            }
        }
    }
    None
}

pub(crate) fn entries_of(n: &Node) -> &[tree::Entry] {
    match &n.kind {
        Kind::Map { entries, .. } | Kind::Seq { entries, .. } => entries,
        _ => &[],
    }
}

pub(crate) fn key_is(e: &tree::Entry, seg: &PathSeg) -> bool {
    e.key.as_ref().and_then(|k| k.key_str()) == Some(seg_key(seg).as_str())
}

pub(crate) fn seg_key(seg: &PathSeg) -> String {
    match seg {
        PathSeg::Key(k) => k.clone(),
        PathSeg::Index(i) => i.to_string(),
    }
}

pub(crate) fn seg_index(seg: &PathSeg) -> Option<usize> {
    match seg {
        PathSeg::Key(k) => k.parse().ok(),
        PathSeg::Index(i) => Some(*i),
    }
}

/// Wrap `value` in mappings for the missing `rest` of a path.
pub(crate) fn nest(
    rest: &[PathSeg],
    value: &EditValue,
    p: &str,
    at: &Node,
    t: &str,
) -> Result<EditValue, EditError> {
    let mut v = value.clone();
    for seg in rest.iter().rev() {
        match seg {
            PathSeg::Key(k) => v = EditValue::Map(vec![(k.clone(), v)]),
            PathSeg::Index(_) => {
                return Err(unsupported(
                    p,
                    line_of(t, at.start),
                    "cannot create a list item by index",
                ));
            }
        }
    }
    Ok(v)
}

pub(crate) fn check_value(v: &EditValue, p: &str) -> Result<(), EditError> {
    match v {
        EditValue::Float(f) if !f.is_finite() => Err(EditError::InvalidValue {
            path: p.into(),
            what: format!("{f} is not a finite number"),
        }),
        EditValue::List(items) => items.iter().try_for_each(|i| check_value(i, p)),
        EditValue::Map(entries) => entries.iter().try_for_each(|(_, v)| check_value(v, p)),
        _ => Ok(()),
    }
}

pub(crate) fn unsupported(p: &str, line: usize, what: &str) -> EditError {
    EditError::Unsupported {
        path: p.into(),
        line,
        what: what.into(),
    }
}

pub(crate) fn not_container(
    t: &str,
    p: &str,
    path: &[PathSeg],
    depth: usize,
    node: &Node,
) -> EditError {
    let found = match node.kind {
        Kind::Alias => "alias",
        _ => "scalar",
    };
    EditError::NotAContainer {
        path: p.into(),
        at: path_string(&path[..depth]),
        line: line_of(t, node.start),
        found: found.into(),
    }
}

pub(crate) fn syntax(e: tree::SyntaxError) -> EditError {
    EditError::Parse {
        line: e.line,
        col: e.col,
        msg: e.msg,
    }
}
