//! The value-tree side of editing: what `serde_yaml` (the reader the rest of the program
//! uses) sees before and after an edit, and the check that an edit changed exactly that.
//!
//! Owns: applying a set/remove to a `serde_yaml::Value` and comparing. Must not: touch text.

use serde_yaml::{Mapping, Value};

use super::path::{seg_index, seg_key};
use super::tree;
use super::yaml::{EditError, EditValue, PathSeg};

/// The value tree as `serde_yaml` (what the rest of the program uses) reads it.
pub(crate) fn semantic(text: &str) -> Result<Value, EditError> {
    serde_yaml::from_str::<Value>(text).map_err(|e| {
        let (line, col) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        EditError::Parse {
            line,
            col,
            msg: e.to_string(),
        }
    })
}

pub(crate) fn verify(expected: &Value, out: &str, p: &str) -> Result<(), EditError> {
    let internal = |what: String| EditError::Internal {
        path: p.into(),
        what,
    };
    let after = serde_yaml::from_str::<Value>(out)
        .map_err(|e| internal(format!("the result does not parse: {e}")))?;
    tree::parse(out).map_err(|e| internal(format!("the result does not parse: {}", e.msg)))?;
    if &after != expected {
        return Err(internal(
            "the result differs from the intended value".into(),
        ));
    }
    Ok(())
}

pub(crate) fn to_value(v: &EditValue) -> Value {
    match v {
        EditValue::Null => Value::Null,
        EditValue::Bool(b) => Value::Bool(*b),
        EditValue::Int(i) => Value::Number((*i).into()),
        EditValue::Float(f) => Value::Number((*f).into()),
        EditValue::Str(s) => Value::String(s.clone()),
        EditValue::List(l) => Value::Sequence(l.iter().map(to_value).collect()),
        EditValue::Map(m) => Value::Mapping(
            m.iter()
                .map(|(k, v)| (Value::String(k.clone()), to_value(v)))
                .collect(),
        ),
    }
}

fn key_matches(k: &Value, s: &str) -> bool {
    match k {
        Value::String(k) => k == s,
        Value::Number(n) => n.to_string() == s,
        Value::Bool(b) => b.to_string() == s,
        _ => false,
    }
}

fn sem_key(m: &Mapping, s: &str) -> Value {
    m.keys()
        .find(|k| key_matches(k, s))
        .cloned()
        .unwrap_or_else(|| Value::String(s.into()))
}

pub(crate) fn sem_get<'v>(v: &'v Value, path: &[PathSeg]) -> Option<&'v Value> {
    let Some((seg, rest)) = path.split_first() else {
        return Some(v);
    };
    let child = match v {
        Value::Mapping(m) => m.get(sem_key(m, &seg_key(seg))),
        Value::Sequence(s) => seg_index(seg).and_then(|i| s.get(i)),
        _ => None,
    }?;
    sem_get(child, rest)
}

pub(crate) fn sem_set(v: &mut Value, path: &[PathSeg], new: Value) {
    let Some((seg, rest)) = path.split_first() else {
        *v = new;
        return;
    };
    if v.is_null() {
        *v = Value::Mapping(Mapping::new());
    }
    match v {
        Value::Mapping(m) => {
            let k = sem_key(m, &seg_key(seg));
            if !m.contains_key(&k) {
                m.insert(k.clone(), Value::Null);
            }
            if let Some(child) = m.get_mut(&k) {
                sem_set(child, rest, new);
            }
        }
        Value::Sequence(s) => {
            if let Some(child) = seg_index(seg).and_then(|i| s.get_mut(i)) {
                sem_set(child, rest, new);
            }
        }
        _ => {}
    }
}

pub(crate) fn sem_remove(v: &mut Value, path: &[PathSeg]) {
    let Some((seg, rest)) = path.split_first() else {
        return;
    };
    match v {
        Value::Mapping(m) => {
            let k = sem_key(m, &seg_key(seg));
            if rest.is_empty() {
                m.shift_remove(&k);
            } else if let Some(child) = m.get_mut(&k) {
                sem_remove(child, rest);
            }
        }
        Value::Sequence(s) => match seg_index(seg) {
            Some(i) if rest.is_empty() && i < s.len() => {
                s.remove(i);
            }
            Some(i) => {
                if let Some(child) = s.get_mut(i) {
                    sem_remove(child, rest);
                }
            }
            None => {}
        },
        _ => {}
    }
}
