//! The value-tree side of editing: what the validator's reader (`model::yamlpos`, the one
//! YAML reader of the program) sees before and after an edit, and the check that an edit
//! changed exactly that.
//!
//! Owns: applying a set/remove to that value tree (`serde_json::Value`) and comparing.
//! Must not: touch text.

use serde_json::{Map, Number, Value};

use super::path::{seg_index, seg_key};
use super::tree;
use super::yaml::{EditError, EditValue, PathSeg};
use crate::model::yamlpos;

/// The value tree as the validator reads it. Text without one unambiguous tree (a syntax
/// error, several documents, a duplicate key) is a parse error, at its first such
/// problem; what validation refuses but can still read (anchors, tags) is not: the
/// positioned tree refuses to edit those nodes themselves.
pub(crate) fn semantic(text: &str) -> Result<Value, EditError> {
    let parsed = yamlpos::parse(text);
    if let Some(p) = parsed.problems.iter().find(|p| p.kind.is_unreadable()) {
        return Err(EditError::Parse {
            line: p.pos.line,
            col: p.pos.col,
            msg: p.message.clone(),
        });
    }
    Ok(parsed.value.unwrap_or(Value::Null))
}

pub(crate) fn verify(expected: &Value, out: &str, p: &str) -> Result<(), EditError> {
    let internal = |what: String| EditError::Internal {
        path: p.into(),
        what,
    };
    let after = semantic(out).map_err(|e| internal(format!("the result does not parse: {e}")))?;
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
        // Non-finite floats are refused before (`path::check_value`).
        EditValue::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        EditValue::Str(s) => Value::String(s.clone()),
        EditValue::List(l) => Value::Array(l.iter().map(to_value).collect()),
        EditValue::Map(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), to_value(v))).collect())
        }
    }
}

pub(crate) fn sem_get<'v>(v: &'v Value, path: &[PathSeg]) -> Option<&'v Value> {
    let Some((seg, rest)) = path.split_first() else {
        return Some(v);
    };
    let child = match v {
        Value::Object(m) => m.get(&seg_key(seg)),
        Value::Array(s) => seg_index(seg).and_then(|i| s.get(i)),
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
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => {
            let child = m.entry(seg_key(seg)).or_insert(Value::Null);
            sem_set(child, rest, new);
        }
        Value::Array(s) => {
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
        Value::Object(m) => {
            let k = seg_key(seg);
            if rest.is_empty() {
                m.shift_remove(&k);
            } else if let Some(child) = m.get_mut(&k) {
                sem_remove(child, rest);
            }
        }
        Value::Array(s) => match seg_index(seg) {
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
