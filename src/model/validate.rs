//! Validation of desired.yaml in stages, every problem at once.
//!
//! Stages: (0) the bytes (size, UTF-8, empty); (1) YAML syntax and structure
//! (`yamlpos`); (2) the JSON schema generated from the types (jsonschema crate), mapped
//! back to line/column, with "did you mean" for unknown keys; (3) meaning (`semantic`).
//! A later stage runs only when the earlier ones found no error, so messages never
//! cascade. Pure: no IO except `validate_file`, which only reads the file.

use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;

use super::desired::Desired;
use super::diag::{dotted, Diagnostic, Severity};
use super::limits::{clip, clip_to};
use super::yamlpos::{self, Parsed};
use super::{schema, semantic};

/// Largest desired file accepted. Real files are a few KiB.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// Longest message of one diagnostic, in characters: a safety net under the messages that
/// clip the user text they quote (`limits::clip`), so no diagnostic is ever huge.
pub const MAX_MESSAGE_CHARS: usize = 600;

/// The outcome of validating one text.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The typed desired state, when there is no error.
    pub desired: Option<Desired>,
    /// Errors and warnings, ordered by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Validated {
    /// Whether there is no error (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.desired.is_some()
    }
    /// Errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
}

/// Collects diagnostics for one file.
pub(crate) struct Sink<'a> {
    pub file: &'a str,
    pub parsed: &'a Parsed,
    pub out: Vec<Diagnostic>,
}

impl Sink<'_> {
    /// A problem with a value at a JSON pointer.
    pub fn at_value(&mut self, sev: Severity, pointer: &str, msg: impl Into<String>) {
        let pos = self.parsed.span_of(pointer).value;
        self.push(sev, pos.line, pos.col, pointer, msg);
    }
    /// A problem with a key at a JSON pointer.
    pub fn at_key(&mut self, sev: Severity, pointer: &str, msg: impl Into<String>) {
        let pos = self.parsed.span_of(pointer).key;
        self.push(sev, pos.line, pos.col, pointer, msg);
    }
    fn push(
        &mut self,
        sev: Severity,
        line: usize,
        col: usize,
        pointer: &str,
        msg: impl Into<String>,
    ) {
        self.out.push(Diagnostic {
            severity: sev,
            file: self.file.to_string(),
            line,
            col,
            path: clipped_path(pointer),
            message: clip_to(&msg.into(), MAX_MESSAGE_CHARS).into_owned(),
        });
    }
}

/// The dotted path of `pointer` with every segment (a map key written by the user)
/// clipped, so a megabyte key is not repeated in the diagnostic's path.
fn clipped_path(pointer: &str) -> String {
    let clipped: String = pointer
        .split('/')
        .skip(1)
        .map(|seg| {
            let seg = seg.replace("~1", "/").replace("~0", "~");
            format!("/{}", yamlpos::escape_segment(&clip(&seg)))
        })
        .collect();
    dotted(&clipped)
}

fn whole_file(file: &str, msg: impl Into<String>) -> Validated {
    Validated {
        desired: None,
        diagnostics: vec![Diagnostic {
            severity: Severity::Error,
            file: file.to_string(),
            line: 1,
            col: 1,
            path: String::new(),
            message: msg.into(),
        }],
    }
}

/// Validates a file on disk. `label` is how the file is named in messages.
pub fn validate_file(path: &Path) -> Validated {
    let label = path.display().to_string();
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_FILE_BYTES as u64 => {
            return whole_file(&label, too_big(m.len() as usize));
        }
        Ok(_) => {}
        Err(e) => {
            return whole_file(&label, format!("cannot read the file: {e}"));
        }
    }
    match std::fs::read(path) {
        Ok(bytes) => validate_bytes(&label, &bytes),
        Err(e) => whole_file(&label, format!("cannot read the file: {e}")),
    }
}

fn too_big(len: usize) -> String {
    format!(
        "the file is {len} bytes; a desired-state file is at most {MAX_FILE_BYTES} bytes (is this the right file?)"
    )
}

/// Validates raw bytes (size, UTF-8) and then the text.
pub fn validate_bytes(file: &str, bytes: &[u8]) -> Validated {
    if bytes.len() > MAX_FILE_BYTES {
        return whole_file(file, too_big(bytes.len()));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => validate_text(file, text),
        Err(e) => {
            let before = &bytes[..e.valid_up_to()];
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            let col = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
            Validated {
                desired: None,
                diagnostics: vec![Diagnostic {
                    severity: Severity::Error,
                    file: file.to_string(),
                    line,
                    col,
                    path: String::new(),
                    message: "the file is not UTF-8 text (binary data?); desired.yaml must be a YAML text file".into(),
                }],
            }
        }
    }
}

/// Validates YAML text in every stage.
pub fn validate_text(file: &str, text: &str) -> Validated {
    if text.len() > MAX_FILE_BYTES {
        return whole_file(file, too_big(text.len()));
    }
    if text.contains('\0') {
        return whole_file(
            file,
            "the file contains NUL bytes (binary data?); desired.yaml must be a YAML text file",
        );
    }
    let parsed = yamlpos::parse(text);
    let mut sink = Sink {
        file,
        parsed: &parsed,
        out: Vec::new(),
    };
    // Stage 1: YAML.
    for p in &parsed.problems {
        let mut msg = p.message.clone();
        let tab_line = text
            .lines()
            .nth(p.pos.line.saturating_sub(1))
            .is_some_and(|l| l.trim_start_matches(' ').starts_with('\t'));
        if (msg.contains("tab") || tab_line) && !msg.contains("indent with spaces") {
            msg.push_str(" (YAML does not allow tabs for indentation; indent with spaces)");
        }
        // YAML allows at most 1024 characters in a plain key; say so rather than only
        // "simple key expect ':'".
        if p.pos.col > 1024 && (msg.contains("simple key") || msg.contains("mapping values")) {
            msg.push_str(&format!(
                " (the key on line {} is longer than YAML's 1024-character limit for keys; names are at most {} characters)",
                p.pos.line,
                super::limits::NAME
            ));
        }
        sink.out.push(Diagnostic {
            severity: Severity::Error,
            file: file.to_string(),
            line: p.pos.line,
            col: p.pos.col,
            path: clipped_path(&p.pointer),
            message: clip_to(&msg, MAX_MESSAGE_CHARS).into_owned(),
        });
    }
    let finish = |mut out: Vec<Diagnostic>, desired: Option<Desired>| {
        out.sort_by_key(|d| (d.line, d.col, d.severity));
        out.dedup();
        let has_error = out.iter().any(|d| d.severity == Severity::Error);
        Validated {
            desired: if has_error { None } else { desired },
            diagnostics: out,
        }
    };
    if !sink.out.is_empty() {
        return finish(sink.out, None);
    }
    let value = match &parsed.value {
        None | Some(Value::Null) => {
            sink.at_value(
                Severity::Error,
                "",
                "the file is empty; it needs at least `version: 1` (see examples/minimal.yaml)",
            );
            return finish(sink.out, None);
        }
        Some(v @ Value::Object(_)) => v.clone(),
        Some(other) => {
            let what = match other {
                Value::Array(_) => "a list",
                Value::String(_) => "a single string",
                Value::Number(_) => "a single number",
                Value::Bool(_) => "a single boolean",
                _ => "something else",
            };
            sink.at_value(
                Severity::Error,
                "",
                format!("the top level is {what}; it must be a mapping of keys such as `version: 1`, `hosts:`, `active_model:`"),
            );
            return finish(sink.out, None);
        }
    };
    // Stage 2: schema.
    schema_stage(&value, &mut sink);
    if !sink.out.is_empty() {
        return finish(sink.out, None);
    }
    // A file cut short must not read as "stop the model": once `cluster` is set, the
    // file says what runs, explicitly (`null` for nothing).
    if value.get("cluster").is_some_and(|c| !c.is_null()) && value.get("active_model").is_none() {
        sink.at_key(
            Severity::Error,
            "/cluster",
            "`active_model:` is missing; once `cluster:` is set the file must say which model \
             runs (`active_model: null` for none). Is the file cut short or still being written?",
        );
        // Not a return: the meaning stage still reports everything else it finds.
    }
    // The same for each deployment: its `active_model` is said, `null` for none.
    if let Some(list) = value.get("deployments").and_then(Value::as_array) {
        for (i, item) in list.iter().enumerate() {
            if item.is_object() && item.get("active_model").is_none() {
                sink.at_key(
                    Severity::Error,
                    &format!("/deployments/{i}"),
                    "`active_model:` is missing in this deployment; say which model it runs \
                     (`active_model: null` for none). Is the file cut short or still being written?",
                );
            }
        }
    }
    let desired: Desired = match serde_json::from_value(value) {
        Ok(d) => d,
        Err(e) => {
            sink.at_value(
                Severity::Error,
                "",
                format!("does not match the format: {e}"),
            );
            return finish(sink.out, None);
        }
    };
    // Stage 3: meaning.
    semantic::check(&desired, &mut sink);
    finish(sink.out, Some(desired))
}

/// Compiles a schema of ours as draft 7. Our schemas use nothing newer (`$defs` is
/// reached by JSON pointer, which every draft resolves), and the draft 2020-12 meta-schema
/// validator that `validator_for` compiles and keeps for the process's life cost ~50 MiB
/// of heap (`cargo bench --bench idle` under massif: `compile_dynamic_ref`).
fn compile(schema: &serde_json::Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .build(schema)
        .map_err(|e| e.to_string())
}

fn validator() -> &'static Result<jsonschema::Validator, String> {
    static V: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    V.get_or_init(|| compile(&schema::schema_value()))
}

fn schema_stage(value: &Value, sink: &mut Sink<'_>) {
    let v = match validator() {
        Ok(v) => v,
        Err(e) => {
            sink.at_value(
                Severity::Error,
                "",
                format!("internal error: the schema does not compile: {e}"),
            );
            return;
        }
    };
    let root = schema::schema_value();
    report(v, value, "", &root, sink, 0);
}

/// Reports the errors of `value` (found at `prefix`) against validator `v`.
fn report(
    v: &jsonschema::Validator,
    value: &Value,
    prefix: &str,
    root: &Value,
    sink: &mut Sink<'_>,
    depth: u32,
) {
    for err in v.iter_errors(value) {
        let pointer = format!("{prefix}{}", err.instance_path);
        use jsonschema::error::ValidationErrorKind as K;
        match &err.kind {
            K::AdditionalProperties { unexpected } => {
                let known = schema::known_keys(root, &pointer);
                for key in unexpected {
                    let child = format!("{pointer}/{}", yamlpos::escape_segment(key));
                    let hint = match suggest(key, &known) {
                        Some(s) => format!("; did you mean `{s}`?"),
                        None if !known.is_empty() => format!("; known keys: {}", known.join(", ")),
                        None => String::new(),
                    };
                    sink.at_key(
                        Severity::Error,
                        &child,
                        format!("unknown key `{}`{hint}", clip(key)),
                    );
                }
            }
            K::Required { property } => {
                let name = property.as_str().unwrap_or("?");
                sink.at_key(
                    Severity::Error,
                    &pointer,
                    format!("missing required key `{name}`"),
                );
            }
            K::Type { kind } => {
                let expected = match kind {
                    jsonschema::error::TypeKind::Single(t) => t.to_string(),
                    jsonschema::error::TypeKind::Multiple(ts) => ts
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(" or "),
                };
                // YAML reads an unquoted all-digit commit hash, `yes` or `1.0` as a number
                // or a boolean; say how to keep it text.
                let hint = match &*err.instance {
                    serde_json::Value::Number(n) if expected == "string" => {
                        format!(" (write it in quotes to keep it text: \"{n}\")")
                    }
                    serde_json::Value::Bool(b) if expected == "string" => {
                        format!(" (write it in quotes to keep it text: \"{b}\")")
                    }
                    _ => String::new(),
                };
                sink.at_value(
                    Severity::Error,
                    &pointer,
                    format!(
                        "expected {}, found {}{hint}",
                        article(&expected),
                        describe(&err.instance)
                    ),
                );
            }
            K::Enum { options } => {
                sink.at_value(
                    Severity::Error,
                    &pointer,
                    format!(
                        "{} is not one of {}",
                        describe(&err.instance),
                        list_options(options)
                    ),
                );
            }
            K::OneOfNotValid { .. } | K::AnyOf { .. } => {
                // An optional mapping (`cluster:`) that is present: report what is wrong
                // inside it rather than "matches none of the alternatives".
                if err.instance.is_object() && depth < 4 {
                    if let Some(sub) =
                        schema::schema_at(root, &pointer).filter(|n| n.get("properties").is_some())
                    {
                        let mut s = sub.clone();
                        if let (Value::Object(m), Some(defs)) = (&mut s, root.get("$defs")) {
                            m.insert("$defs".into(), defs.clone());
                        }
                        if let Ok(subv) = compile(&s) {
                            report(&subv, &err.instance, &pointer, root, sink, depth + 1);
                            continue;
                        }
                    }
                }
                let forms = schema::accepted_forms(root, &pointer);
                let msg = if forms.is_empty() {
                    format!("{} is not an accepted value", describe(&err.instance))
                } else {
                    format!(
                        "{} is not one of: {}",
                        describe(&err.instance),
                        forms.join(", ")
                    )
                };
                sink.at_value(Severity::Error, &pointer, msg);
            }
            K::Minimum { limit } | K::ExclusiveMinimum { limit } => {
                sink.at_value(
                    Severity::Error,
                    &pointer,
                    format!("{} is too small (minimum {limit})", describe(&err.instance)),
                );
            }
            K::Maximum { limit } | K::ExclusiveMaximum { limit } => {
                sink.at_value(
                    Severity::Error,
                    &pointer,
                    format!("{} is too large (maximum {limit})", describe(&err.instance)),
                );
            }
            K::MaxLength { limit } => {
                let s = err.instance.as_str().unwrap_or("");
                sink.at_value(
                    Severity::Error,
                    &pointer,
                    format!(
                        "{} is {} characters ({} bytes); the limit is {limit} characters",
                        describe(&err.instance),
                        s.chars().count(),
                        s.len()
                    ),
                );
            }
            K::MaxItems { limit } => {
                let n = err.instance.as_array().map_or(0, Vec::len);
                sink.at_value(
                    Severity::Error,
                    &pointer,
                    format!("the list has {n} elements; the limit is {limit}"),
                );
            }
            K::MaxProperties { limit } => {
                let n = err.instance.as_object().map_or(0, |m| m.len());
                sink.at_value(
                    Severity::Error,
                    &pointer,
                    format!("the mapping has {n} entries; the limit is {limit}"),
                );
            }
            K::PropertyNames { error } => {
                let key = error.instance.as_str().unwrap_or("");
                let child = format!("{pointer}/{}", yamlpos::escape_segment(key));
                let limit = match &error.kind {
                    K::MaxLength { limit } => format!("; the limit is {limit} characters"),
                    _ => String::new(),
                };
                sink.at_key(
                    Severity::Error,
                    &child,
                    format!(
                        "the name `{}` is {} characters ({} bytes){limit}",
                        clip(key),
                        key.chars().count(),
                        key.len()
                    ),
                );
            }
            // jsonschema's own text quotes the whole value: clip it.
            _ => sink.at_value(
                Severity::Error,
                &pointer,
                clip_to(&err.to_string(), 200).into_owned(),
            ),
        }
    }
}

fn article(t: &str) -> String {
    match t {
        "object" => "a mapping".into(),
        "array" => "a list".into(),
        "integer" => "a whole number".into(),
        "number" => "a number".into(),
        "string" => "a string".into(),
        "boolean" => "true or false".into(),
        "null" => "null".into(),
        other => other
            .replace("object", "a mapping")
            .replace("array", "a list"),
    }
}

/// A short description of a value for messages.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() > 40 => {
            format!("\"{}…\"", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn list_options(options: &Value) -> String {
    match options {
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// The closest known name to `got`, if close enough to be a likely typo.
pub fn suggest<'a>(got: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(got, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3) && *d < k.len().max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}
