//! What makes the document usable by client generators and OpenAPI 3.0 validators: an
//! `operationId` on every operation, derived from method and path, and the generated
//! schemas turned into plain OpenAPI 3.0 with named variants. Pure `Value` rewrites.

use serde_json::{json, Value};

use super::sref;

/// `get` + `/api/models/{name}/activate` → `postModelsByNameActivate`: the method, then
/// each path segment in camel case (`api` dropped, `{x}` as `ByX`, `.`/`-`/`_` split).
pub fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    let segments: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .skip_while(|s| *s == "api")
        .collect();
    if segments.is_empty() {
        id.push_str("Ui");
    }
    for seg in segments {
        let (prefix, word) = match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(param) => ("By", param),
            None => ("", seg),
        };
        id.push_str(prefix);
        for part in word.split(['.', '-', '_']).filter(|p| !p.is_empty()) {
            let mut chars = part.chars();
            if let Some(first) = chars.next() {
                id.extend(first.to_uppercase());
                id.push_str(chars.as_str());
            }
        }
    }
    id
}

/// Sets [`operation_id`] on every operation that has none.
pub(super) fn add_operation_ids(paths: &mut Value) {
    let Some(paths) = paths.as_object_mut() else {
        return;
    };
    for (path, ops) in paths.iter_mut() {
        let Some(ops) = ops.as_object_mut() else {
            continue;
        };
        for (method, op) in ops.iter_mut() {
            if op.get("operationId").is_none() {
                op["operationId"] = Value::String(operation_id(method, path));
            }
        }
    }
}

/// Makes a generated schema plain OpenAPI 3.0, as validators and generators read it:
/// - JSON Schema keywords the 3.0 Schema Object lacks become `x-` extensions (schemars
///   writes `propertyNames` for the name-length limits of the desired file's maps;
///   `openapi-spec-validator` rejects it);
/// - `type: [T, "null"]` becomes `type: T, nullable: true` (3.0 has no type arrays);
/// - an object-valued `default` beside a `$ref` (schemars: `allOf: [$ref]` + `default`)
///   becomes `x-default`: 3.0 tools apply no defaults to references, and
///   `openapi-python-client` drops the whole model over one ("ModelProperty cannot have a
///   default value").
///
/// Keys of `properties` maps are names, not keywords, and are left alone.
pub(super) fn as_oas30(schema: &mut Value) {
    const NOT_IN_OAS30: [&str; 1] = ["propertyNames"];
    let Value::Object(m) = schema else {
        if let Value::Array(items) = schema {
            items.iter_mut().for_each(as_oas30);
        }
        return;
    };
    for keyword in NOT_IN_OAS30 {
        if let Some(v) = m.remove(keyword) {
            m.insert(format!("x-{keyword}"), v);
        }
    }
    if let Some(Value::Array(types)) = m.get("type") {
        let non_null: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        if non_null.len() == 1 && non_null.len() < types.len() {
            m.insert("type".into(), non_null[0].clone());
            m.insert("nullable".into(), Value::Bool(true));
        }
    }
    let wraps_a_ref = m.contains_key("$ref") || m.contains_key("allOf");
    if wraps_a_ref
        && m.get("default")
            .is_some_and(|d| d.is_object() || d.is_array())
    {
        if let Some(d) = m.remove("default") {
            m.insert("x-default".into(), d);
        }
    }
    for (key, value) in m.iter_mut() {
        match (key.as_str(), value) {
            ("properties", Value::Object(props)) => props.values_mut().for_each(as_oas30),
            (_, value) => as_oas30(value),
        }
    }
}

/// Every inline object variant of a generated `oneOf`/`anyOf` becomes a named component,
/// `{Schema}_{tag}` (`Fact_of_boolean_known`, `Outcome_failed`): the tag is the variant's
/// single required property (serde's external tagging) or the one-value `enum` of a
/// property (internal tagging), else its position. Generators then emit named types, and
/// `openapi-python-client` no longer trips over inline variants used from several places
/// ("Attempted to generate duplicate models").
pub(super) fn name_variants(schemas: &mut serde_json::Map<String, Value>) {
    let mut hoisted = Vec::new();
    for (name, schema) in schemas.iter_mut() {
        for key in ["oneOf", "anyOf"] {
            let Some(Value::Array(variants)) = schema.get_mut(key) else {
                continue;
            };
            for (i, variant) in variants.iter_mut().enumerate() {
                if variant.get("type") != Some(&json!("object")) || variant.get("$ref").is_some() {
                    continue;
                }
                let mut variant_name = format!(
                    "{name}_{}",
                    variant_tag(variant).unwrap_or_else(|| i.to_string())
                );
                // Never two variants under one name (the second would be dropped).
                if hoisted.iter().any(|(n, _)| *n == variant_name) {
                    variant_name = format!("{variant_name}_{i}");
                }
                hoisted.push((
                    variant_name.clone(),
                    std::mem::replace(variant, sref(&variant_name)),
                ));
            }
        }
    }
    for (name, schema) in hoisted {
        schemas.entry(name).or_insert(schema);
    }
}

fn variant_tag(variant: &Value) -> Option<String> {
    let props = variant.get("properties")?.as_object()?;
    // Internal tagging first: a variant whose only property is the tag
    // (`{"state": {"enum": ["running"]}}`) is named by the tag's value, not by the
    // property every variant shares (that named `running` and `succeeded` both
    // `Outcome_state`, and one of them was lost).
    let internal = props.values().find_map(|p| {
        match p.get("enum").and_then(Value::as_array).map(Vec::as_slice) {
            Some([Value::String(tag)]) => Some(tag.clone()),
            _ => None,
        }
    });
    if internal.is_some() {
        return internal;
    }
    let required = variant.get("required").and_then(Value::as_array);
    match (props.len(), required.map(Vec::as_slice)) {
        (1, Some([only])) => only.as_str().map(String::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_schema_only_keywords_become_extensions() {
        let mut v = json!({ "type": "object", "propertyNames": { "maxLength": 3 },
            "properties": { "propertyNames": { "type": "object", "propertyNames": {} } },
            "anyOf": [{ "propertyNames": {} }] });
        as_oas30(&mut v);
        assert_eq!(
            v,
            json!({ "type": "object", "x-propertyNames": { "maxLength": 3 },
                "properties": { "propertyNames": { "type": "object", "x-propertyNames": {} } },
                "anyOf": [{ "x-propertyNames": {} }] })
        );
        let text = serde_json::to_string(&super::super::document()).expect("serialises");
        assert!(!text.contains("\"propertyNames\""), "left in the document");
    }

    /// Every variant of every `oneOf`/`anyOf` is its own component: `Outcome`'s four
    /// (running, succeeded, failed, cancelled) were three, `running` and `succeeded` both
    /// `Outcome_state`, and the generated client refused a succeeded operation.
    #[test]
    fn no_two_variants_share_a_component() {
        let doc = super::super::document();
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for (name, s) in schemas {
            for key in ["oneOf", "anyOf"] {
                let Some(vs) = s.get(key).and_then(Value::as_array) else {
                    continue;
                };
                let refs: Vec<&str> = vs.iter().filter_map(|v| v["$ref"].as_str()).collect();
                let mut unique = refs.clone();
                unique.sort();
                unique.dedup();
                assert_eq!(refs.len(), unique.len(), "{name}.{key}: {refs:?}");
            }
        }
        let outcome = &schemas["Outcome"]["oneOf"];
        assert_eq!(
            outcome,
            &json!([
                { "$ref": "#/components/schemas/Outcome_running" },
                { "$ref": "#/components/schemas/Outcome_succeeded" },
                { "$ref": "#/components/schemas/Outcome_failed" },
                { "$ref": "#/components/schemas/Outcome_cancelled" }
            ])
        );
    }

    #[test]
    fn operation_ids_are_camel_case_method_and_path() {
        for (method, path, id) in [
            ("get", "/", "getUi"),
            ("get", "/app.js", "getAppJs"),
            ("get", "/api/state", "getState"),
            ("post", "/api/health-event", "postHealthEvent"),
            ("get", "/api/models/{name}", "getModelsByName"),
            (
                "post",
                "/api/models/{name}/activate",
                "postModelsByNameActivate",
            ),
            ("get", "/api/operations/{id}/logs", "getOperationsByIdLogs"),
            ("post", "/v1/{path}", "postV1ByPath"),
            ("post", "/api/audio/diarize-chunk", "postAudioDiarizeChunk"),
        ] {
            assert_eq!(operation_id(method, path), id, "{method} {path}");
        }
    }
}
