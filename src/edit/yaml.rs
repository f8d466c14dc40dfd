//! The generic, comment-preserving YAML edit engine: `set` and `remove` a value at a path.
//!
//! Owns: minimal text splices over a positioned tree (`tree.rs`). Comments, key order, blank
//! lines, quoting and every untouched byte stay as they were; flow collections are edited in
//! flow style, block ones in block style. Every result is re-read with the validator's
//! reader (`model::yamlpos`, through `semantic.rs`) and compared with the intended value
//! tree (the old tree with exactly this change applied); a mismatch is an error, never an
//! output. Must not: re-serialize documents, do IO, panic.
//!
//! Policy for `remove`: the removed entry's lines go (key line with its trailing comment,
//! nested lines and comment lines inside the value); comment lines *above* the key stay, since
//! they may head a section rather than describe the key. Removing a missing key is a no-op.
//! New collections in block context are block style, except that a new entry whose sibling
//! values are flow collections (`spark1: { address: .. }`) follows its siblings' flow style.

use serde_json::Value;
use std::fmt;

use super::path::{
    check_value, entries_of, infer_step, key_is, nest, not_container, seg_index, seg_key, syntax,
    unsupported,
};
use super::render::{self, Layout};
use super::semantic::{sem_get, sem_remove, sem_set, semantic, to_value, verify};
use super::tree::{self, col_of, line_end, line_of, line_start, Kind, Node};

/// One step of a path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// A value to write. Non-finite floats are refused.
#[derive(Debug, Clone, PartialEq)]
pub enum EditValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<EditValue>),
    Map(Vec<(String, EditValue)>),
}

/// Why an edit could not be made; each says what and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    #[error("the desired-state YAML does not parse (line {line}, column {col}): {msg}")]
    Parse {
        line: usize,
        col: usize,
        msg: String,
    },
    #[error("cannot edit `{path}` (line {line}): {what}")]
    Unsupported {
        path: String,
        line: usize,
        what: String,
    },
    #[error("cannot edit `{path}`: `{at}` (line {line}) is a {found}, not a mapping or list")]
    NotAContainer {
        path: String,
        at: String,
        line: usize,
        found: String,
    },
    #[error("cannot edit `{path}`: index {index} is out of range (the list at line {line} has {len} items)")]
    IndexOutOfRange {
        path: String,
        index: usize,
        line: usize,
        len: usize,
    },
    #[error("invalid value for `{path}`: {what}")]
    InvalidValue { path: String, what: String },
    #[error("internal error editing `{path}`: {what}; nothing was changed, please report this")]
    Internal { path: String, what: String },
}

impl fmt::Display for PathSeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSeg::Key(k) => f.write_str(k),
            PathSeg::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// `a.b[0].c`
pub fn path_string(path: &[PathSeg]) -> String {
    let mut s = String::new();
    for seg in path {
        if matches!(seg, PathSeg::Key(_)) && !s.is_empty() {
            s.push('.');
        }
        s.push_str(&seg.to_string());
    }
    s
}

fn keys(path: &[&str]) -> Vec<PathSeg> {
    path.iter()
        .map(|k| PathSeg::Key((*k).to_string()))
        .collect()
}

/// Set the value at `path` (keys; in a list a key is read as an index), creating missing
/// parent mappings, replacing an existing value in place.
pub fn set(text: &str, path: &[&str], value: &EditValue) -> Result<String, EditError> {
    set_path(text, &keys(path), value)
}

/// Remove the entry at `path`; a missing entry is a no-op.
pub fn remove(text: &str, path: &[&str]) -> Result<String, EditError> {
    remove_path(text, &keys(path))
}

/// The value at `path`, as the validator reads it (`None` if absent).
pub fn get(text: &str, path: &[&str]) -> Result<Option<Value>, EditError> {
    Ok(sem_get(&semantic(text)?, &keys(path)).cloned())
}

/// [`set`] with typed path segments.
pub fn set_path(text: &str, path: &[PathSeg], value: &EditValue) -> Result<String, EditError> {
    let p = path_string(path);
    check_value(value, &p)?;
    let before = semantic(text)?;
    if path.is_empty() {
        return Err(unsupported(&p, 1, "cannot replace the whole document"));
    }
    if sem_get(&before, path) == Some(&to_value(value)) {
        return Ok(text.to_string());
    }
    let root = tree::parse(text).map_err(syntax)?;
    let ed = Ed::new(text, root.as_ref());
    let out = match &root {
        Some(r) if !(r.is_null() && matches!(r.kind, Kind::Scalar { implicit: true, .. })) => {
            ed.set_in(r, path, value, &p)?
        }
        _ => ed.append_root(path, value, &p)?,
    };
    let mut expected = before;
    sem_set(&mut expected, path, to_value(value));
    verify(&expected, &out, &p)?;
    Ok(out)
}

/// [`remove`] with typed path segments.
pub fn remove_path(text: &str, path: &[PathSeg]) -> Result<String, EditError> {
    let p = path_string(path);
    let before = semantic(text)?;
    if path.is_empty() {
        return Err(unsupported(&p, 1, "cannot remove the whole document"));
    }
    let Some(root) = tree::parse(text).map_err(syntax)? else {
        return Ok(text.to_string());
    };
    let ed = Ed::new(text, Some(&root));
    let mut chain: Vec<(&Node, usize)> = Vec::new();
    let mut node = &root;
    for seg in path {
        let found = match &node.kind {
            Kind::Map { entries, .. } => entries.iter().position(|e| key_is(e, seg)),
            Kind::Seq { entries, .. } => seg_index(seg).filter(|i| *i < entries.len()),
            _ if node.is_null() => None,
            _ => return Err(not_container(text, &p, path, chain.len(), node)),
        };
        let Some(j) = found else {
            return Ok(text.to_string());
        };
        chain.push((node, j));
        node = &entries_of(node)[j].value;
    }
    let (container, j) = chain[chain.len() - 1];
    let grand = chain.len().checked_sub(2).map(|i| chain[i]);
    let out = ed.remove_entry(container, j, grand);
    let mut expected = before;
    sem_remove(&mut expected, path);
    verify(&expected, &out, &p)?;
    Ok(out)
}

struct Ed<'a> {
    t: &'a str,
    layout: Layout<'static>,
}

impl<'a> Ed<'a> {
    fn new(t: &'a str, root: Option<&Node>) -> Self {
        let nl = if t.contains("\r\n") { "\r\n" } else { "\n" };
        let step = root.and_then(|r| infer_step(t, r)).unwrap_or(2);
        Ed {
            t,
            layout: Layout { step, nl },
        }
    }

    fn splice(&self, from: usize, to: usize, with: &str) -> String {
        [&self.t[..from], with, &self.t[to..]].concat()
    }

    fn set_in(
        &self,
        root: &Node,
        path: &[PathSeg],
        value: &EditValue,
        p: &str,
    ) -> Result<String, EditError> {
        let mut node = root;
        let mut parent: Option<(&Node, usize)> = None;
        for (i, seg) in path.iter().enumerate() {
            match &node.kind {
                Kind::Map { entries, .. } => match entries.iter().position(|e| key_is(e, seg)) {
                    Some(j) => {
                        parent = Some((node, j));
                        node = &entries[j].value;
                    }
                    None if entries.is_empty()
                        && parent.is_some_and(|(c, _)| !c.is_flow_collection()) =>
                    {
                        let v = nest(&path[i..], value, p, node, self.t)?;
                        return self.replace(parent, node, &v, p);
                    }
                    None => {
                        let v = nest(&path[i + 1..], value, p, node, self.t)?;
                        return Ok(self.insert_entry(node, &seg_key(seg), &v));
                    }
                },
                Kind::Seq { entries, .. } => {
                    let len = entries.len();
                    let idx = seg_index(seg).ok_or_else(|| {
                        unsupported(
                            p,
                            line_of(self.t, node.start),
                            &format!("`{seg}` is not a list index"),
                        )
                    })?;
                    if idx >= len {
                        let line = line_of(self.t, node.start);
                        return Err(EditError::IndexOutOfRange {
                            path: p.into(),
                            index: idx,
                            line,
                            len,
                        });
                    }
                    parent = Some((node, idx));
                    node = &entries[idx].value;
                }
                _ if node.is_null() => {
                    let v = nest(&path[i..], value, p, node, self.t)?;
                    return self.replace(parent, node, &v, p);
                }
                _ => return Err(not_container(self.t, p, path, i, node)),
            }
        }
        self.replace(parent, node, value, p)
    }

    fn replace(
        &self,
        parent: Option<(&Node, usize)>,
        old: &Node,
        new: &EditValue,
        p: &str,
    ) -> Result<String, EditError> {
        let t = self.t;
        let line = line_of(t, old.start);
        if old.props {
            return Err(unsupported(
                p,
                line,
                "the value carries an anchor or a tag; edit it by hand",
            ));
        }
        let Some((container, j)) = parent else {
            return Err(unsupported(p, line, "cannot replace the whole document"));
        };
        let entry = &entries_of(container)[j];
        let implicit = matches!(old.kind, Kind::Scalar { implicit: true, .. });
        if container.is_flow_collection() {
            let s = render::flow(new);
            return Ok(match (implicit, entry.sep) {
                (true, Some(_)) => self.splice(old.start, old.end, &format!(" {s}")),
                (true, None) => self.splice(old.end, old.end, &format!(": {s}")),
                (false, _) => self.splice(old.start, old.end, &s),
            });
        }
        let Some(sep) = entry.sep else {
            return Err(unsupported(p, line, "cannot locate the `:` of this entry"));
        };
        let l = self.layout;
        // A non-empty flow collection keeps its style; an empty `{}`/`[]` in block context
        // grows into block style like a null would.
        let keep_flow = old.is_flow_collection() && !entries_of(old).is_empty();
        let inline = render::inline(new).or_else(|| keep_flow.then(|| render::flow(new)));
        let is_seq = matches!(container.kind, Kind::Seq { .. });
        let old_end_le = line_end(t, old.end);
        if old.is_block_collection() {
            let below = line_of(t, sep) != line_of(t, old.start);
            return Ok(match inline {
                Some(s) if below => [
                    &t[..sep + 1],
                    " ",
                    &s,
                    &t[sep + 1..line_end(t, sep)],
                    &t[old_end_le..],
                ]
                .concat(),
                Some(s) => [&t[..old.start], &s, &t[old_end_le..]].concat(),
                None => {
                    let block = render::block_value(new, col_of(t, old.start), l);
                    [&t[..old.start], &block, &t[old_end_le..]].concat()
                }
            });
        }
        Ok(match inline {
            Some(s) if implicit => self.splice(sep + 1, sep + 1, &format!(" {s}")),
            Some(s) => self.splice(old.start, old.end, &s),
            None if is_seq => {
                let block = render::block_value(new, col_of(t, sep) + 2, l);
                [&t[..sep + 1], " ", &block, &t[old.end..]].concat()
            }
            None => {
                let indent = col_of(t, container.start) + l.step;
                let block = render::block_value(new, indent, l);
                let pad = " ".repeat(indent);
                [
                    &t[..sep + 1],
                    &t[old.end..old_end_le],
                    l.nl,
                    &pad,
                    &block,
                    &t[old_end_le..],
                ]
                .concat()
            }
        })
    }

    fn insert_entry(&self, map: &Node, key: &str, v: &EditValue) -> String {
        let Kind::Map { flow, entries } = &map.kind else {
            return self.t.to_string();
        };
        let k = render::string(key);
        match (flow, entries.last()) {
            (true, None) => self.splice(
                map.start,
                map.end,
                &format!("{{ {k}: {} }}", render::flow(v)),
            ),
            (true, Some(last)) => self.splice(
                last.value.end,
                last.value.end,
                &format!(", {k}: {}", render::flow(v)),
            ),
            (false, last) => {
                let indent = col_of(self.t, map.start);
                let at = last
                    .map(|e| line_end(self.t, e.value.end))
                    .unwrap_or(map.end);
                let prefer_flow = last.is_some_and(|e| e.value.is_flow_collection());
                let entry = render::block_entry(key, v, indent, self.layout, prefer_flow);
                let pad = " ".repeat(indent);
                self.splice(at, at, &format!("{}{pad}{entry}", self.layout.nl))
            }
        }
    }

    fn append_root(
        &self,
        path: &[PathSeg],
        value: &EditValue,
        p: &str,
    ) -> Result<String, EditError> {
        let t = self.t;
        let root_stub = tree::node(Kind::Alias, t.len(), t.len(), false);
        let v = nest(&path[1..], value, p, &root_stub, t)?;
        let entry = render::block_entry(&seg_key(&path[0]), &v, 0, self.layout, false);
        let sep = if t.is_empty() || t.ends_with('\n') {
            ""
        } else {
            self.layout.nl
        };
        Ok(format!("{t}{sep}{entry}{}", self.layout.nl))
    }

    fn remove_entry(&self, c: &Node, j: usize, grand: Option<(&Node, usize)>) -> String {
        let t = self.t;
        let entries = entries_of(c);
        let e = &entries[j];
        let n = entries.len();
        let empty = if matches!(c.kind, Kind::Map { .. }) {
            "{}"
        } else {
            "[]"
        };
        if c.is_flow_collection() {
            return match (n, j) {
                (1, _) => self.splice(c.start, c.end, empty),
                (_, 0) => self.splice(e.start, entries[1].start, ""),
                (_, j) if j + 1 < n && line_of(t, e.start) == line_of(t, entries[j + 1].start) => {
                    self.splice(e.start, entries[j + 1].start, "")
                }
                (_, j) => self.splice(entries[j - 1].value.end, e.value.end, ""),
            };
        }
        if n == 1 {
            let gsep = grand.and_then(|(g, gj)| entries_of(g)[gj].sep);
            return match gsep {
                None => self.splice(line_start(t, c.start), line_end(t, c.end), empty),
                Some(s) if line_of(t, s) != line_of(t, c.start) => [
                    &t[..s + 1],
                    " ",
                    empty,
                    &t[s + 1..line_end(t, s)],
                    &t[line_end(t, c.end)..],
                ]
                .concat(),
                Some(_) => self.splice(c.start, line_end(t, c.end), empty),
            };
        }
        let ls = line_start(t, e.start);
        if t[ls..e.start].trim().is_empty() {
            let le = line_end(t, e.value.end);
            let after = if t[le..].starts_with("\r\n") {
                le + 2
            } else if t[le..].starts_with('\n') {
                le + 1
            } else {
                le
            };
            self.splice(ls, after, "")
        } else {
            self.splice(e.start, entries[j + 1].start, "")
        }
    }
}

#[cfg(test)]
#[path = "yaml_tests.rs"]
mod tests;
