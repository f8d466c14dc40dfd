//! YAML text → JSON value plus a map of where every value sits in the text: **the one
//! YAML reader** of the program. Validation deserialises the desired state from this
//! value, and `edit::semantic` verifies every comment-preserving edit by reading its
//! result here, so an edit is checked against exactly what the controller will read.
//!
//! Built on `yaml-rust2`'s event parser, which gives the line/column of every key and
//! value. This module also rejects what a YAML reader would silently accept or mangle:
//! duplicate keys, anchors/aliases, several documents, custom tags. Pure: no IO.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A 1-based line and column in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

impl Pos {
    fn from_marker(m: &Marker) -> Self {
        // yaml-rust2 reports 1-based lines and 0-based columns.
        Pos {
            line: m.line(),
            col: m.col() + 1,
        }
    }
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

enum Frame {
    Map {
        map: Map<String, Value>,
        pending_key: Option<(String, Pos)>,
        pointer: String,
    },
    Seq {
        items: Vec<Value>,
        pointer: String,
    },
}

struct Builder {
    stack: Vec<Frame>,
    root: Option<Value>,
    spans: BTreeMap<String, Span>,
    problems: Vec<YamlProblem>,
    documents: usize,
}

/// Escapes one JSON-pointer segment.
pub fn escape_segment(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

impl Builder {
    fn problem(&mut self, kind: ProblemKind, pos: Pos, pointer: &str, message: impl Into<String>) {
        self.problems.push(YamlProblem {
            kind,
            pos,
            pointer: pointer.to_string(),
            message: message.into(),
        });
    }

    /// Where the next value goes: its pointer, and the key position when in a map.
    /// Returns None when the next event is a map key.
    fn slot(&self) -> Option<(String, Option<Pos>)> {
        match self.stack.last() {
            None => Some((String::new(), None)),
            Some(Frame::Map {
                pending_key,
                pointer,
                ..
            }) => pending_key
                .as_ref()
                .map(|(k, p)| (format!("{pointer}/{}", escape_segment(k)), Some(*p))),
            Some(Frame::Seq { items, pointer }) => {
                Some((format!("{pointer}/{}", items.len()), None))
            }
        }
    }

    fn put(&mut self, v: Value) {
        match self.stack.last_mut() {
            None => self.root = Some(v),
            Some(Frame::Map {
                map, pending_key, ..
            }) => {
                if let Some((k, _)) = pending_key.take() {
                    map.insert(k, v);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(v),
        }
    }

    fn start_value(&mut self, pos: Pos) -> String {
        let (pointer, key) = self.slot().unwrap_or_default();
        self.spans.insert(
            pointer.clone(),
            Span {
                key: key.unwrap_or(pos),
                value: pos,
            },
        );
        pointer
    }

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
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = Pos::from_marker(&mark);
        match ev {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    self.problem(
                    ProblemKind::Documents,
                        pos,
                        "",
                        "several YAML documents in one file; desired.yaml holds exactly one (remove the extra `---`)",
                    );
                }
            }
            Event::Alias(_) => {
                let pointer = self.slot().map(|s| s.0).unwrap_or_default();
                self.problem(
                    ProblemKind::Alias,
                    pos,
                    &pointer,
                    "YAML aliases (`*name`) are not supported in desired.yaml; write the value out",
                );
                if matches!(
                    self.stack.last(),
                    Some(Frame::Map {
                        pending_key: None,
                        ..
                    })
                ) {
                    // An alias used as a key: give it a placeholder so parsing goes on.
                    if let Some(Frame::Map { pending_key, .. }) = self.stack.last_mut() {
                        *pending_key = Some(("*alias".into(), pos));
                    }
                } else {
                    self.put(Value::Null);
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                if anchor > 0 {
                    self.problem(
                        ProblemKind::Alias,
                        pos,
                        "",
                        "YAML anchors (`&name`) are not supported in desired.yaml",
                    );
                }
                // A key?
                if let Some(Frame::Map {
                    map,
                    pending_key,
                    pointer,
                }) = self.stack.last_mut()
                {
                    if pending_key.is_none() {
                        let dup = map.contains_key(&text);
                        let pointer = pointer.clone();
                        *pending_key = Some((text.clone(), pos));
                        if dup {
                            let first = self
                                .spans
                                .get(&format!("{pointer}/{}", escape_segment(&text)))
                                .map(|s| s.key.line)
                                .unwrap_or(0);
                            self.problem(
                    ProblemKind::DuplicateKey,
                                pos,
                                &pointer,
                                format!("duplicate key `{text}` (first defined on line {first}); remove one of them"),
                            );
                        }
                        return;
                    }
                }
                let pointer = self.start_value(pos);
                let string_tag = matches!(&tag, Some(t) if t.suffix == "str");
                let ok = self.check_tag(&tag, pos, &pointer);
                let v = if !ok || string_tag || style != TScalarStyle::Plain {
                    Value::String(text)
                } else {
                    resolve_plain(&text)
                };
                self.put(v);
            }
            Event::MappingStart(anchor, tag) => {
                let pointer = self.open_collection(pos, anchor, &tag);
                self.stack.push(Frame::Map {
                    map: Map::new(),
                    pending_key: None,
                    pointer,
                });
            }
            Event::SequenceStart(anchor, tag) => {
                let pointer = self.open_collection(pos, anchor, &tag);
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    pointer,
                });
            }
            Event::MappingEnd => {
                if let Some(Frame::Map { map, .. }) = self.stack.pop() {
                    self.put(Value::Object(map));
                }
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq { items, .. }) = self.stack.pop() {
                    self.put(Value::Array(items));
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

impl Builder {
    /// The checks shared by a new mapping or sequence; returns its JSON pointer.
    fn open_collection(&mut self, pos: Pos, anchor: usize, tag: &Option<Tag>) -> String {
        if self.pending_is_key() {
            self.problem(
                ProblemKind::ComplexKey,
                pos,
                "",
                "complex (non-scalar) keys are not supported; keys are plain names",
            );
            if let Some(Frame::Map { pending_key, .. }) = self.stack.last_mut() {
                *pending_key = Some(("?complex".into(), pos));
            }
        }
        if anchor > 0 {
            self.problem(
                ProblemKind::Alias,
                pos,
                "",
                "YAML anchors (`&name`) are not supported in desired.yaml",
            );
        }
        let pointer = self.start_value(pos);
        self.check_tag(tag, pos, &pointer);
        pointer
    }

    fn pending_is_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame::Map {
                pending_key: None,
                ..
            })
        )
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
    let mut b = Builder {
        stack: Vec::new(),
        root: None,
        spans: BTreeMap::new(),
        problems: Vec::new(),
        documents: 0,
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut b, true) {
        let pos = Pos::from_marker(e.marker());
        let mut problems = b.problems;
        problems.push(YamlProblem {
            kind: ProblemKind::Syntax,
            pos,
            pointer: String::new(),
            message: format!("YAML syntax error: {}", e.info()),
        });
        return Parsed {
            value: None,
            spans: b.spans,
            problems,
        };
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
    b.spans.insert(
        String::new(),
        Span {
            key: root,
            value: root,
        },
    );
    Parsed {
        value: b.root,
        spans: b.spans,
        problems: b.problems,
    }
}
