//! YAML text → JSON value plus a map of where every value sits in the text: **the one
//! YAML reader** of the program. Validation deserialises the desired state from this
//! value, and `edit::semantic` verifies every comment-preserving edit by reading its
//! result here, so an edit is checked against exactly what the controller will read.
//!
//! Built on the one positioned tree (`crate::yaml::tree`, which the editor splices on
//! too), whose nodes carry `yaml-rust2`'s line/column of every key and value. This
//! module also rejects what a YAML reader would silently accept or mangle:
//! duplicate keys, anchors/aliases, several documents, custom tags. Pure: no IO.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::Tag;
use yaml_rust2::scanner::TScalarStyle;

use crate::yaml::tree::{self, Kind, Node};

/// A 1-based line and column in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

/// Where a value is: the key that names it (for map entries) and the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Position of the key, or of the value for sequence items and the root.
    pub key: Pos,
    /// Position of the value.
    pub value: Pos,
}

/// What kind of problem the YAML itself has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The text is not YAML (there is no value).
    Syntax,
    /// More than one document (`---`).
    Documents,
    /// A key defined twice in one mapping.
    DuplicateKey,
    /// An anchor (`&name`) or alias (`*name`).
    Alias,
    /// A tag (`!!str`, `!custom`).
    Tag,
    /// A key that is not a scalar.
    ComplexKey,
}

impl ProblemKind {
    /// Whether the text has no single, unambiguous value tree: a syntax error, several
    /// documents, or a duplicate key. (Anchors, aliases, tags and complex keys are
    /// refused by validation but still leave a value tree.)
    pub fn is_unreadable(self) -> bool {
        matches!(
            self,
            ProblemKind::Syntax | ProblemKind::Documents | ProblemKind::DuplicateKey
        )
    }
}

/// A problem found while reading the YAML itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlProblem {
    /// Which kind.
    pub kind: ProblemKind,
    /// Where.
    pub pos: Pos,
    /// JSON pointer of the enclosing value, when known.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

/// The parsed document: its JSON value (None when the text could not be parsed at all),
/// the position of every JSON pointer, and the problems found.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The value, when the syntax was readable.
    pub value: Option<Value>,
    /// JSON pointer → position.
    pub spans: BTreeMap<String, Span>,
    /// Syntax and structure problems (duplicate keys, aliases, ...).
    pub problems: Vec<YamlProblem>,
}

impl Parsed {
    /// The best position for a JSON pointer: its own span or the nearest ancestor's.
    pub fn span_of(&self, pointer: &str) -> Span {
        let mut p = pointer.to_string();
        loop {
            if let Some(s) = self.spans.get(&p) {
                return *s;
            }
            match p.rfind('/') {
                Some(i) => p.truncate(i),
                None => return Span::default(),
            }
        }
    }
}

impl Default for Span {
    fn default() -> Self {
        Span {
            key: Pos { line: 1, col: 1 },
            value: Pos { line: 1, col: 1 },
        }
    }
}

/// Escapes one JSON-pointer segment.
pub fn escape_segment(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Turns the shared tree into a JSON value, the position of every pointer and the
/// problems, in text order.
struct Walk {
    spans: BTreeMap<String, Span>,
    problems: Vec<YamlProblem>,
}

impl Walk {
    fn problem(&mut self, kind: ProblemKind, pos: Pos, pointer: &str, message: impl Into<String>) {
        self.problems.push(YamlProblem {
            kind,
            pos,
            pointer: pointer.to_string(),
            message: message.into(),
        });
    }

    fn anchor(&mut self, n: &Node) {
        if n.anchor {
            self.problem(
                ProblemKind::Alias,
                pos(n),
                "",
                "YAML anchors (`&name`) are not supported in desired.yaml",
            );
        }
    }

    /// Whether the tag (if any) is a core-schema one; reports it otherwise.
    fn check_tag(&mut self, tag: &Option<Tag>, pos: Pos, pointer: &str) -> bool {
        match tag {
            None => true,
            Some(t) if t.handle == "!!" || t.handle == "tag:yaml.org,2002:" => true,
            Some(t) => {
                self.problem(
                    ProblemKind::Tag,
                    pos,
                    pointer,
                    format!(
                        "YAML tag `{}{}` is not supported here; write a plain value",
                        t.handle, t.suffix
                    ),
                );
                false
            }
        }
    }

    /// The value of `n` at `pointer` (`key`: where the key naming it is).
    fn value(&mut self, n: &Node, pointer: String, key: Option<Pos>) -> Value {
        let at = pos(n);
        if let Kind::Alias = n.kind {
            self.problem(
                ProblemKind::Alias,
                at,
                &pointer,
                "YAML aliases (`*name`) are not supported in desired.yaml; write the value out",
            );
            return Value::Null;
        }
        if !matches!(n.kind, Kind::Scalar { .. }) {
            self.anchor(n);
        }
        self.spans.insert(
            pointer.clone(),
            Span {
                key: key.unwrap_or(at),
                value: at,
            },
        );
        match &n.kind {
            Kind::Scalar { value, style, .. } => {
                self.anchor(n);
                let string_tag = matches!(&n.tag, Some(t) if t.suffix == "str");
                let ok = self.check_tag(&n.tag, at, &pointer);
                if !ok || string_tag || *style != TScalarStyle::Plain {
                    Value::String(value.clone())
                } else {
                    resolve_plain(value)
                }
            }
            Kind::Map { entries, .. } => {
                self.check_tag(&n.tag, at, &pointer);
                let mut map = Map::new();
                for e in entries {
                    let Some(k) = &e.key else { continue };
                    let kpos = pos(k);
                    let name = match &k.kind {
                        Kind::Scalar { value, .. } => {
                            self.anchor(k);
                            value.clone()
                        }
                        Kind::Alias => {
                            self.problem(
                                ProblemKind::Alias,
                                kpos,
                                "",
                                "YAML aliases (`*name`) are not supported in desired.yaml; write the value out",
                            );
                            "*alias".into()
                        }
                        _ => {
                            self.problem(
                                ProblemKind::ComplexKey,
                                kpos,
                                "",
                                "complex (non-scalar) keys are not supported; keys are plain names",
                            );
                            "?complex".into()
                        }
                    };
                    let child = format!("{pointer}/{}", escape_segment(&name));
                    if map.contains_key(&name) {
                        let first = self.spans.get(&child).map(|s| s.key.line).unwrap_or(0);
                        self.problem(
                            ProblemKind::DuplicateKey,
                            kpos,
                            &pointer,
                            format!("duplicate key `{name}` (first defined on line {first}); remove one of them"),
                        );
                    }
                    let v = self.value(&e.value, child, Some(kpos));
                    map.insert(name, v);
                }
                Value::Object(map)
            }
            Kind::Seq { entries, .. } => {
                self.check_tag(&n.tag, at, &pointer);
                let items = entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| self.value(&e.value, format!("{pointer}/{i}"), None))
                    .collect();
                Value::Array(items)
            }
            Kind::Alias => Value::Null,
        }
    }
}

fn pos(n: &Node) -> Pos {
    Pos {
        line: n.mark.line,
        col: n.mark.col,
    }
}

/// YAML 1.2 core-schema resolution of a plain scalar (what serde_yaml does too).
pub fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Value::Number(i.into());
        }
        if let Ok(u) = s.parse::<u64>() {
            return Value::Number(u.into());
        }
    }
    if let Some(hex) = s.strip_prefix("0x") {
        if let Ok(u) = u64::from_str_radix(hex, 16) {
            return Value::Number(u.into());
        }
    }
    if let Some(oct) = s.strip_prefix("0o") {
        if let Ok(u) = u64::from_str_radix(oct, 8) {
            return Value::Number(u.into());
        }
    }
    let looks_float = unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && unsigned.bytes().any(|b| b.is_ascii_digit());
    if looks_float {
        if let Ok(f) = s.parse::<f64>() {
            if let Some(n) = Number::from_f64(f) {
                return Value::Number(n);
            }
        }
    }
    Value::String(s.to_string())
}

/// Parses YAML text. Never panics; syntax errors become a problem with a position.
pub fn parse(text: &str) -> Parsed {
    let doc = match tree::read(text) {
        Ok(doc) => doc,
        Err(e) => {
            return Parsed {
                value: None,
                spans: BTreeMap::new(),
                problems: vec![YamlProblem {
                    kind: ProblemKind::Syntax,
                    pos: Pos {
                        line: e.line,
                        col: e.col,
                    },
                    pointer: String::new(),
                    message: format!("YAML syntax error: {}", e.msg),
                }],
            }
        }
    };
    let mut w = Walk {
        spans: BTreeMap::new(),
        problems: Vec::new(),
    };
    let value = doc.root.as_ref().map(|r| w.value(r, String::new(), None));
    for m in &doc.extra_documents {
        w.problem(
            ProblemKind::Documents,
            Pos {
                line: m.line,
                col: m.col,
            },
            "",
            "several YAML documents in one file; desired.yaml holds exactly one (remove the extra `---`)",
        );
    }
    // The document itself is reported at its first line of content.
    let first = text
        .lines()
        .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#') && l.trim() != "---")
        .map_or(1, |i| i + 1);
    let root = Pos {
        line: first,
        col: 1,
    };
    w.spans.insert(
        String::new(),
        Span {
            key: root,
            value: root,
        },
    );
    Parsed {
        value,
        spans: w.spans,
        problems: w.problems,
    }
}
