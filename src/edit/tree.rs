//! A positioned syntax tree of one YAML document, built from `yaml-rust2`'s marked events.
//!
//! Owns: turning YAML text into nodes that know their exact byte extent in the text
//! (`start..end`), so `yaml.rs` can splice text instead of re-serializing. `yaml-rust2`
//! markers are *char* indices and give only a start position (sometimes not even that:
//! block mappings, implicit nulls, block scalars), so extents are recovered here by a small
//! lexical scan from the marker. Must not: edit text, do IO, or panic on any input.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::scan::{
    back_to_dash, block_scalar_end, find_colon, plain_end, quoted_end, scan_token_end,
    skip_ws_comments,
};
pub(crate) use super::scan::{col_of, line_end, line_of, line_start};

/// What a node is, with its children.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// A scalar; `implicit` is an empty plain scalar (`key:` with nothing after it).
    Scalar {
        value: String,
        style: TScalarStyle,
        implicit: bool,
    },
    /// An alias `*name`.
    Alias,
    /// A mapping; entries carry key and value.
    Map { flow: bool, entries: Vec<Entry> },
    /// A sequence; entries carry only values.
    Seq { flow: bool, entries: Vec<Entry> },
}

/// A node and its byte extent (`start..end`) in the text.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    /// The node carries an anchor or a tag: we refuse to replace it.
    pub props: bool,
}

/// One mapping entry or sequence item.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Start of the key (mapping), of the `-` (block sequence) or of the item (flow sequence).
    pub start: usize,
    pub key: Option<Node>,
    /// Byte index of the `:` (mapping) or `-` (block sequence) that introduces the value.
    pub sep: Option<usize>,
    pub value: Node,
}

/// A parse failure with a 1-based line and column.
#[derive(Debug, Clone)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub col: usize,
    pub msg: String,
}

impl Node {
    pub fn is_null(&self) -> bool {
        match &self.kind {
            Kind::Scalar {
                value,
                style,
                implicit,
            } => {
                *implicit
                    || (*style == TScalarStyle::Plain
                        && matches!(value.as_str(), "~" | "null" | "Null" | "NULL"))
            }
            _ => false,
        }
    }
    pub fn is_flow_collection(&self) -> bool {
        matches!(
            &self.kind,
            Kind::Map { flow: true, .. } | Kind::Seq { flow: true, .. }
        )
    }
    pub fn is_block_collection(&self) -> bool {
        matches!(
            &self.kind,
            Kind::Map { flow: false, .. } | Kind::Seq { flow: false, .. }
        )
    }
    pub fn key_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }
}

struct Sink(Vec<(Event, Marker)>);
impl MarkedEventReceiver for Sink {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        self.0.push((ev, mark));
    }
}

/// Where a node sits, which decides how its extent is found.
#[derive(Clone, Copy)]
struct Ctx {
    /// Position just after the `:`/`-` introducing the node, if any.
    after: Option<usize>,
    flow: bool,
    /// Indentation (column) of the enclosing block node; -1 at the root.
    parent_indent: isize,
}

/// Parse `text` into its root node (`None` for an empty document).
pub(crate) fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut sink = Sink(Vec::new());
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut sink, true).map_err(|e| SyntaxError {
        line: e.marker().line(),
        col: e.marker().col() + 1,
        msg: e.info().to_string(),
    })?;
    // Char index -> byte index (the markers count chars).
    let mut c2b: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
    c2b.push(text.len());
    let events = sink
        .0
        .into_iter()
        .map(|(ev, m)| {
            let b = c2b.get(m.index()).copied().unwrap_or(text.len());
            (ev, b, m.line())
        })
        .collect::<Vec<_>>();
    let docs = events
        .iter()
        .filter(|(e, _, _)| matches!(e, Event::DocumentStart))
        .count();
    if docs > 1 {
        return Err(SyntaxError {
            line: 1,
            col: 1,
            msg: "the file holds several YAML documents; the desired state must be one".into(),
        });
    }
    let mut b = Builder { text, events, i: 0 };
    while b.i < b.events.len() {
        match b.events[b.i].0 {
            Event::StreamStart | Event::DocumentStart | Event::Nothing => b.i += 1,
            Event::StreamEnd | Event::DocumentEnd => return Ok(None),
            _ => {
                let ctx = Ctx {
                    after: None,
                    flow: false,
                    parent_indent: -1,
                };
                return b.node(ctx).map(Some);
            }
        }
    }
    Ok(None)
}

struct Builder<'a> {
    text: &'a str,
    events: Vec<(Event, usize, usize)>,
    i: usize,
}

impl Builder<'_> {
    fn err(&self, pos: usize, msg: &str) -> SyntaxError {
        SyntaxError {
            line: line_of(self.text, pos),
            col: col_of(self.text, pos) + 1,
            msg: msg.into(),
        }
    }

    fn next(&mut self) -> Result<(Event, usize), SyntaxError> {
        let (ev, pos, _) = self
            .events
            .get(self.i)
            .cloned()
            .ok_or_else(|| self.err(self.text.len(), "unexpected end of events"))?;
        self.i += 1;
        Ok((ev, pos))
    }

    fn peek_is_end(&self) -> bool {
        matches!(
            self.events.get(self.i),
            Some((Event::MappingEnd | Event::SequenceEnd, _, _))
        )
    }

    fn node(&mut self, ctx: Ctx) -> Result<Node, SyntaxError> {
        let (ev, pos) = self.next()?;
        match ev {
            Event::Scalar(value, style, anchor, tag) => {
                self.scalar(value, style, anchor > 0 || tag.is_some(), pos, ctx)
            }
            Event::Alias(_) => {
                let end = scan_token_end(self.text, pos);
                Ok(Node {
                    kind: Kind::Alias,
                    start: pos,
                    end,
                    props: false,
                })
            }
            Event::MappingStart(anchor, tag) => {
                let props = anchor > 0 || tag.is_some();
                if self.text[pos..].starts_with('{') {
                    self.flow_map(pos, props)
                } else {
                    self.block_map(props, ctx)
                }
            }
            Event::SequenceStart(anchor, tag) => {
                let props = anchor > 0 || tag.is_some();
                if self.text[pos..].starts_with('[') {
                    self.flow_seq(pos, props)
                } else {
                    self.block_seq(pos, props)
                }
            }
            _ => Err(self.err(pos, "unexpected YAML event")),
        }
    }

    fn scalar(
        &self,
        value: String,
        style: TScalarStyle,
        props: bool,
        pos: usize,
        ctx: Ctx,
    ) -> Result<Node, SyntaxError> {
        let t = self.text;
        if style == TScalarStyle::Plain && value.is_empty() {
            let at = ctx.after.unwrap_or(pos);
            let kind = Kind::Scalar {
                value,
                style,
                implicit: true,
            };
            return Ok(Node {
                kind,
                start: at,
                end: at,
                props,
            });
        }
        let mut start = pos;
        if props || matches!(style, TScalarStyle::Literal | TScalarStyle::Folded) {
            if let Some(after) = ctx.after {
                start = skip_ws_comments(t, after);
            }
        }
        let end = match style {
            TScalarStyle::Plain => Some(plain_end(t, pos, &value, ctx.flow).ok_or_else(|| {
                self.err(pos, "cannot locate the end of a multi-line plain scalar")
            })?),
            TScalarStyle::DoubleQuoted => quoted_end(t, pos, '"'),
            TScalarStyle::SingleQuoted => quoted_end(t, pos, '\''),
            TScalarStyle::Literal | TScalarStyle::Folded => {
                block_scalar_end(t, start, ctx.parent_indent)
            }
        }
        .ok_or_else(|| self.err(pos, "unterminated scalar"))?;
        Ok(Node {
            kind: Kind::Scalar {
                value,
                style,
                implicit: false,
            },
            start,
            end,
            props,
        })
    }

    fn flow_map(&mut self, start: usize, props: bool) -> Result<Node, SyntaxError> {
        let mut entries = Vec::new();
        while !self.peek_is_end() {
            let kctx = Ctx {
                after: None,
                flow: true,
                parent_indent: -1,
            };
            let key = self.node(kctx)?;
            let sep = find_colon(self.text, key.end, true);
            let after = sep.map(|c| c + 1).unwrap_or(key.end);
            let vctx = Ctx {
                after: Some(after),
                flow: true,
                parent_indent: -1,
            };
            let value = self.node(vctx)?;
            entries.push(Entry {
                start: key.start,
                key: Some(key),
                sep,
                value,
            });
        }
        let (_, end) = self.next()?;
        Ok(Node {
            kind: Kind::Map {
                flow: true,
                entries,
            },
            start,
            end: end + 1,
            props,
        })
    }

    fn flow_seq(&mut self, start: usize, props: bool) -> Result<Node, SyntaxError> {
        let mut entries = Vec::new();
        while !self.peek_is_end() {
            let ctx = Ctx {
                after: None,
                flow: true,
                parent_indent: -1,
            };
            let value = self.node(ctx)?;
            if matches!(value.kind, Kind::Map { flow: false, .. }) {
                return Err(self.err(
                    value.start,
                    "single-pair mappings inside [..] are not supported",
                ));
            }
            entries.push(Entry {
                start: value.start,
                key: None,
                sep: None,
                value,
            });
        }
        let (_, end) = self.next()?;
        Ok(Node {
            kind: Kind::Seq {
                flow: true,
                entries,
            },
            start,
            end: end + 1,
            props,
        })
    }

    fn block_map(&mut self, props: bool, ctx: Ctx) -> Result<Node, SyntaxError> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut indent: isize = 0;
        while !self.peek_is_end() {
            let kctx = Ctx {
                after: None,
                flow: false,
                parent_indent: -1,
            };
            let key = self.node(kctx)?;
            if entries.is_empty() {
                indent = col_of(self.text, key.start) as isize;
            }
            let Some(colon) = find_colon(self.text, key.end, false) else {
                return Err(self.err(
                    key.start,
                    "explicit (`? `) or multi-line keys are not supported",
                ));
            };
            let vctx = Ctx {
                after: Some(colon + 1),
                flow: false,
                parent_indent: indent,
            };
            let value = self.node(vctx)?;
            entries.push(Entry {
                start: key.start,
                key: Some(key),
                sep: Some(colon),
                value,
            });
        }
        self.next()?;
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Err(self.err(ctx.after.unwrap_or(0), "empty block mapping"));
        };
        let (start, end) = (first.start, last.value.end);
        Ok(Node {
            kind: Kind::Map {
                flow: false,
                entries,
            },
            start,
            end,
            props,
        })
    }

    fn block_seq(&mut self, pos: usize, props: bool) -> Result<Node, SyntaxError> {
        let t = self.text;
        let mut entries: Vec<Entry> = Vec::new();
        // Indented sequences are marked at the `-`; indentless ones at the first item.
        let mut dash = if t[pos..].starts_with('-') {
            pos
        } else {
            back_to_dash(t, pos)
        };
        while !self.peek_is_end() {
            if let Some(prev) = entries.last() {
                dash = skip_ws_comments(t, prev.value.end);
            }
            if !t[dash..].starts_with('-') {
                return Err(self.err(dash, "cannot locate a block sequence item's `-`"));
            }
            let indent = col_of(t, dash) as isize;
            let ctx = Ctx {
                after: Some(dash + 1),
                flow: false,
                parent_indent: indent,
            };
            let value = self.node(ctx)?;
            entries.push(Entry {
                start: dash,
                key: None,
                sep: Some(dash),
                value,
            });
        }
        self.next()?;
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Err(self.err(pos, "empty block sequence"));
        };
        let (start, end) = (first.start, last.value.end);
        Ok(Node {
            kind: Kind::Seq {
                flow: false,
                entries,
            },
            start,
            end,
            props,
        })
    }
}
