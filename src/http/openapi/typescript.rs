//! TypeScript declarations of the wire shapes, from the OpenAPI document's
//! `components.schemas` — the ones generated from Rust types (`StateView`, `StateEvent`,
//! the desired file, …) and the hand-written ones alike — so the browser UI's modules are
//! type-checked against what the server really sends (`tsc --checkJs`,
//! `scripts/check-ui-types.sh`).
//!
//! The output is committed as `src/http/ui/wire.d.ts`; a test fails when it is stale and
//! says how to rewrite it. Only the OpenAPI 3.0 subset the document uses is translated
//! (`$ref`, `type`, `nullable`, `enum`, `properties`/`required`, `additionalProperties`,
//! `items`, `allOf`/`oneOf`/`anyOf`); validation-only keywords (`minimum`, `maxLength`, …)
//! have no TypeScript counterpart and are dropped. Pure.

use serde_json::{Map, Value};

/// Where the declarations live in the source tree.
pub const WIRE_TS: &str = "src/http/ui/wire.d.ts";

/// The declarations file for `doc` (an OpenAPI document).
pub fn declarations(doc: &Value) -> String {
    let mut out = String::from(
        "// Generated from the OpenAPI document's components (src/http/openapi/typescript.rs).\n\
         // Do not edit: `UPDATE_WIRE_TYPES=1 cargo test --lib wire_types` rewrites it.\n\n",
    );
    let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    else {
        return out;
    };
    for (name, schema) in schemas {
        doc_comment(&mut out, schema, "");
        match interface_body(schema) {
            Some(body) => out.push_str(&format!("export interface {name} {body}\n\n")),
            None => out.push_str(&format!(
                "export type {name} = {};\n\n",
                ts_type(schema, "")
            )),
        }
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

/// A `/** … */` comment from the schema's description, if any.
fn doc_comment(out: &mut String, schema: &Value, indent: &str) {
    let Some(text) = schema.get("description").and_then(Value::as_str) else {
        return;
    };
    let text = text.replace("*/", "* /");
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() == 1 {
        out.push_str(&format!("{indent}/** {} */\n", lines[0].trim()));
    } else {
        out.push_str(&format!("{indent}/**\n"));
        for l in lines {
            out.push_str(&format!("{indent} * {}\n", l.trim_end()).replace(" * \n", " *\n"));
        }
        out.push_str(&format!("{indent} */\n"));
    }
}

/// A plain, non-nullable object with properties: declared as an interface.
fn interface_body(schema: &Value) -> Option<String> {
    let plain = schema.get("type").and_then(Value::as_str) == Some("object")
        && schema.get("properties").is_some()
        && !nullable(schema)
        && ["allOf", "oneOf", "anyOf", "additionalProperties"]
            .iter()
            .all(|k| schema.get(k).is_none());
    let obj = schema.as_object().filter(|_| plain)?;
    Some(object_type(obj, ""))
}

fn nullable(schema: &Value) -> bool {
    schema.get("nullable").and_then(Value::as_bool) == Some(true)
}

/// The TypeScript type of `schema`; `indent` is the current nesting for object literals.
fn ts_type(schema: &Value, indent: &str) -> String {
    // `{ nullable: true }` alone, or with `enum: [null]` (how an `Option<T>`'s `anyOf`
    // says "or null"): null.
    let only_null = schema.as_object().is_some_and(|o| {
        o.iter().all(|(k, v)| {
            k == "nullable"
                || (k == "enum" && v.as_array().is_some_and(|a| a.iter().all(Value::is_null)))
        })
    });
    if nullable(schema) && only_null {
        return "null".into();
    }
    let base = base_type(schema, indent);
    if nullable(schema) && base != "unknown" {
        format!("{} | null", paren(&base))
    } else {
        base
    }
}

/// Wraps a union or intersection so it can be joined with others.
fn paren(t: &str) -> String {
    if (t.contains(" | ") || t.contains(" & ")) && !t.starts_with('{') {
        format!("({t})")
    } else {
        t.to_string()
    }
}

fn base_type(schema: &Value, indent: &str) -> String {
    let Some(obj) = schema.as_object() else {
        // `true` accepts anything, `false` nothing.
        return if schema == &Value::Bool(false) {
            "never"
        } else {
            "unknown"
        }
        .to_string();
    };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().unwrap_or("unknown").to_string();
    }
    if let Some(values) = obj.get("enum").and_then(Value::as_array) {
        let lits: Vec<String> = values
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| serde_json::to_string(v).unwrap_or_default())
            .collect();
        if !lits.is_empty() {
            return lits.join(" | ");
        }
    }
    for (key, sep) in [("oneOf", " | "), ("anyOf", " | "), ("allOf", " & ")] {
        if let Some(parts) = obj.get(key).and_then(Value::as_array) {
            let mut types: Vec<String> = parts.iter().map(|p| paren(&ts_type(p, indent))).collect();
            types.dedup();
            // `allOf: [$ref]` beside properties: the properties add to the reference.
            if key == "allOf" && obj.contains_key("properties") {
                types.push(object_type(obj, indent));
            }
            return types.join(sep);
        }
    }
    match obj.get("type").and_then(Value::as_str) {
        Some("string") => "string".into(),
        Some("integer" | "number") => "number".into(),
        Some("boolean") => "boolean".into(),
        Some("null") => "null".into(),
        Some("array") => {
            let item = obj
                .get("items")
                .map_or("unknown".into(), |i| ts_type(i, indent));
            format!("{}[]", paren_array(&item))
        }
        Some("object") => object_type(obj, indent),
        _ if obj.contains_key("properties") => object_type(obj, indent),
        _ => "unknown".into(),
    }
}

/// `T[]` needs parentheses around unions and nullable types.
fn paren_array(t: &str) -> String {
    if t.contains(' ') && !t.starts_with('{') {
        format!("({t})")
    } else {
        t.to_string()
    }
}

/// An object literal type: its properties (optional unless required), then an index
/// signature for `additionalProperties`.
fn object_type(obj: &Map<String, Value>, indent: &str) -> String {
    let required: Vec<&str> = obj
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let inner = format!("{indent}  ");
    let mut body = String::new();
    // TypeScript wants every named property to fit the index signature too.
    let mut named = Vec::new();
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (key, prop) in props {
            doc_comment(&mut body, prop, &inner);
            let required = required.contains(&key.as_str());
            let t = ts_type(prop, &inner);
            body.push_str(&format!(
                "{inner}{}{}: {t};\n",
                property_name(key),
                if required { "" } else { "?" }
            ));
            named.push(if required {
                t
            } else {
                format!("{} | undefined", paren(&t))
            });
        }
    }
    match obj.get("additionalProperties") {
        Some(Value::Bool(false)) | None => {}
        Some(extra) => {
            let mut t = if extra == &Value::Bool(true) {
                "unknown".to_string()
            } else {
                ts_type(extra, &inner)
            };
            if !named.is_empty() && t != "unknown" {
                named.insert(0, t);
                t = named
                    .iter()
                    .map(|n| paren(n))
                    .collect::<Vec<_>>()
                    .join(" | ");
            }
            body.push_str(&format!("{inner}[key: string]: {t};\n"));
        }
    }
    if body.is_empty() {
        // No properties, no extra ones: any object.
        return "{ [key: string]: unknown }".into();
    }
    format!("{{\n{body}{indent}}}")
}

/// A property key as TypeScript accepts it: bare when an identifier, quoted otherwise.
fn property_name(key: &str) -> String {
    let ident = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if ident {
        key.to_string()
    } else {
        serde_json::to_string(key).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn one(schema: Value) -> String {
        declarations(&json!({ "components": { "schemas": { "T": schema } } }))
            .lines()
            .skip(3)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn objects_become_interfaces_with_optional_and_nullable_fields() {
        let t = one(json!({
            "type": "object", "description": "A thing.", "required": ["id"],
            "properties": {
                "id": { "type": "integer" },
                "name": { "type": "string", "nullable": true, "description": "Its name." },
                "tags": { "type": "array", "items": { "type": "string", "nullable": true } },
                "odd-key": { "$ref": "#/components/schemas/Other" }
            }
        }));
        assert_eq!(
            t,
            "/** A thing. */\nexport interface T {\n  id: number;\n  /** Its name. */\n  \
             name?: string | null;\n  tags?: (string | null)[];\n  \"odd-key\"?: Other;\n}"
        );
    }

    #[test]
    fn enums_unions_maps_and_intersections() {
        assert_eq!(
            one(json!({ "type": "string", "enum": ["a", "b"] })),
            "export type T = \"a\" | \"b\";"
        );
        assert_eq!(
            one(json!({ "oneOf": [{ "$ref": "#/components/schemas/A" }, { "$ref": "#/x/B" }] })),
            "export type T = A | B;"
        );
        assert_eq!(
            one(json!({ "allOf": [{ "$ref": "#/components/schemas/A" }], "nullable": true })),
            "export type T = A | null;"
        );
        assert_eq!(
            one(json!({ "type": "object", "additionalProperties": { "type": "number" } })),
            "export type T = {\n  [key: string]: number;\n};"
        );
        assert_eq!(
            one(json!({ "allOf": [{ "$ref": "#/components/schemas/A" }],
                        "properties": { "k": { "type": "boolean" } }, "required": ["k"] })),
            "export type T = A & {\n  k: boolean;\n};"
        );
        assert_eq!(one(json!({})), "export type T = unknown;");
        assert_eq!(
            one(
                json!({ "anyOf": [{ "$ref": "#/components/schemas/Desired" }, { "nullable": true, "enum": [null] }] })
            ),
            "export type T = Desired | null;"
        );
    }

    /// The committed declarations are those of today's document; with
    /// `UPDATE_WIRE_TYPES=1` the test rewrites them instead.
    #[test]
    fn wire_types_are_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(WIRE_TS);
        let fresh = declarations(&crate::http::openapi::document());
        if std::env::var_os("UPDATE_WIRE_TYPES").is_some() {
            std::fs::write(&path, &fresh).expect("write wire.d.ts");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "{WIRE_TS} is stale (the wire shapes changed): run \
             `UPDATE_WIRE_TYPES=1 cargo test --lib wire_types` and commit the file"
        );
    }
}
