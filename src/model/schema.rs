//! The JSON schema of desired.yaml, generated from the types (schemars), and helpers that
//! look things up in it for error messages. `schema/desired-state.schema.json` is this
//! schema, checked in; a test fails when it is stale. The server serves it at
//! [`SERVED_PATH`], and new desired files name a copy beside them ([`BESIDE_NAME`],
//! [`with_modeline_beside`]) so editors find it wherever the file lives. Pure.

/// The schema's `$id`: a name, not a location (the schema is served by every
/// spark-control at [`SERVED_PATH`] and written beside new desired files). The last part
/// is the file's format `version`.
pub const ID: &str = "urn:spark-control:schema:desired-state:1";
/// Where the HTTP server serves the schema.
pub const SERVED_PATH: &str = "/schema/desired-state.json";
/// The schema's file name beside a new desired file.
pub const BESIDE_NAME: &str = "desired-state.schema.json";
/// The yaml-language-server modeline of a new desired file.
pub const MODELINE_BESIDE: &str = "# yaml-language-server: $schema=./desired-state.schema.json";

/// `text` with its yaml-language-server modeline pointing at [`BESIDE_NAME`] beside the
/// file: a first-line modeline is replaced, else one is added on top.
pub fn with_modeline_beside(text: &str) -> String {
    let rest = match text.split_once('\n') {
        Some((first, rest)) if first.starts_with("# yaml-language-server:") => rest,
        _ if text.starts_with("# yaml-language-server:") => "",
        _ => text,
    };
    format!("{MODELINE_BESIDE}\n{rest}")
}

use serde_json::Value;

use super::desired::Desired;

/// The schema as a JSON value.
pub fn schema_value() -> Value {
    let mut v = serde_json::to_value(schemars::schema_for!(Desired)).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("$id".into(), Value::String(ID.into()));
    }
    v
}

/// The schema as the text of `schema/desired-state.schema.json` (pretty, final newline).
pub fn schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&schema_value()).unwrap_or_default();
    s.push('\n');
    s
}

fn resolve<'a>(root: &'a Value, mut node: &'a Value) -> &'a Value {
    for _ in 0..16 {
        if let Some(r) = node.get("$ref").and_then(Value::as_str) {
            let path = r.trim_start_matches('#');
            match root.pointer(path) {
                Some(n) => node = n,
                None => return node,
            }
        } else if let Some(branches) = node
            .get("anyOf")
            .or_else(|| node.get("oneOf"))
            .and_then(Value::as_array)
        {
            // Option<T>: take the non-null branch that describes an object.
            match branches
                .iter()
                .find(|b| b.get("$ref").is_some() || b.get("properties").is_some())
            {
                Some(b) => node = b,
                None => return node,
            }
        } else {
            return node;
        }
    }
    node
}

/// The schema node describing the instance at `pointer`, if any.
pub fn schema_at<'a>(root: &'a Value, pointer: &str) -> Option<&'a Value> {
    let mut node = resolve(root, root);
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        let next = node
            .get("properties")
            .and_then(|p| p.get(&seg))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))
            .or_else(|| node.get("items").filter(|a| a.is_object()))?;
        node = resolve(root, next);
    }
    Some(node)
}

/// The keys allowed in the mapping at `pointer` (for "did you mean").
pub fn known_keys(root: &Value, pointer: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let Some(node) = schema_at(root, pointer) else {
        return keys;
    };
    let mut collect = |n: &Value| {
        if let Some(p) = n.get("properties").and_then(Value::as_object) {
            keys.extend(p.keys().cloned());
        }
    };
    collect(node);
    if let Some(bs) = node
        .get("oneOf")
        .or_else(|| node.get("anyOf"))
        .and_then(Value::as_array)
    {
        for b in bs {
            collect(resolve(root, b));
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// The accepted forms of a oneOf/anyOf value at `pointer`, for messages
/// (`manual`, `notify`, `auto`, `{pin: …}`).
pub fn accepted_forms(root: &Value, pointer: &str) -> Vec<String> {
    // Walk without resolving the final oneOf, so its branches stay visible.
    let parent = pointer.rsplit_once('/').map_or("", |(p, _)| p);
    let last = pointer.rsplit_once('/').map_or("", |(_, l)| l);
    let Some(pnode) = schema_at(root, parent) else {
        return Vec::new();
    };
    let raw = pnode
        .get("properties")
        .and_then(|p| p.get(last))
        .or_else(|| pnode.get("additionalProperties"))
        .unwrap_or(pnode);
    let mut node = raw;
    for _ in 0..8 {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) => match root.pointer(r.trim_start_matches('#')) {
                Some(n) => node = n,
                None => break,
            },
            None => break,
        }
    }
    let mut out = Vec::new();
    for b in node
        .get("oneOf")
        .or_else(|| node.get("anyOf"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let b = resolve(root, b);
        if let Some(e) = b.get("enum").and_then(Value::as_array) {
            out.extend(e.iter().filter_map(Value::as_str).map(String::from));
        } else if let Some(c) = b.get("const").and_then(Value::as_str) {
            out.push(c.to_string());
        } else if let Some(p) = b.get("properties").and_then(Value::as_object) {
            for k in p.keys() {
                out.push(format!("{{{k}: …}}"));
            }
        } else if let Some(t) = b.get("type").and_then(Value::as_str) {
            out.push(format!("a {t}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_files_name_the_schema_beside_them() {
        let m = MODELINE_BESIDE;
        for (text, expected) in [
            (
                "# yaml-language-server: $schema=../schema/desired-state.schema.json\nversion: 1\n",
                format!("{m}\nversion: 1\n"),
            ),
            ("version: 1\n", format!("{m}\nversion: 1\n")),
            (
                "# a comment\nversion: 1\n",
                format!("{m}\n# a comment\nversion: 1\n"),
            ),
            ("# yaml-language-server: $schema=x", format!("{m}\n")),
            ("", format!("{m}\n")),
        ] {
            assert_eq!(with_modeline_beside(text), expected, "{text:?}");
        }
    }

    #[test]
    fn the_id_is_absolute_and_references_resolve_against_it() {
        let v = schema_value();
        assert_eq!(v["$id"], ID);
        // A validator resolves `#/$defs/...` against the URN base.
        let validator = jsonschema::validator_for(&v).expect("the schema compiles with its $id");
        let ok = serde_json::json!({"version": 1, "hosts": {"s1": {"address": "10.0.0.1"}}});
        assert!(validator.is_valid(&ok));
        let bad = serde_json::json!({"version": 1, "hosts": {"s1": {"adress": "10.0.0.1"}}});
        assert!(!validator.is_valid(&bad), "a $ref'd definition is applied");
    }
}
