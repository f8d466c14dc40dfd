//! **The one positioned YAML tree** of the program, built from `yaml-rust2`'s marked
//! events: the validator (`model::yamlpos`, which turns it into a JSON value with the
//! line and column of every value) and the comment-preserving editor (`edit::yaml`, which
//! splices text) both read this tree, so an edit is checked against exactly what the
//! controller reads.
//!
//! Owns: turning YAML text into nodes that know their marker position (line/column, for
//! diagnostics), their properties (anchor, tag) and their byte extent in the text
//! (`start..end`, for splicing). `yaml-rust2` markers are *char* indices and give only a
//! start position (sometimes not even that: block mappings, implicit nulls, block
//! scalars), so extents are recovered by a small lexical scan from the marker. Where the
//! scan cannot tell an extent (explicit `? ` keys, multi-line plain scalars it cannot
//! follow, single-pair mappings inside `[..]`), the tree is still built — valid YAML is
//! still read — and the place is listed in [`Doc::unsupported`]: the editor refuses to
//! splice such a file ([`parse`]), the validator does not care ([`read`]).
//! Must not: edit text, do IO, or panic on any input.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
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

/// A 1-based line and column, as `yaml-rust2`'s marker gives them (columns count chars).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Mark {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

/// A node, where its marker is, and its byte extent (`start..end`) in the text.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    /// The node carries an anchor or a tag: we refuse to replace it.
    pub props: bool,
    /// The parser's marker for this node (the validator's positions).
    pub mark: Mark,
    /// It carries an anchor (`&name`).
    pub anchor: bool,
    /// Its tag, if any (`!!str`, `!custom`).
    pub tag: Option<Tag>,
}

/// A whole document as read: the first document's root, where further documents start,
/// and the places whose extent the scan could not tell (in text order).
#[derive(Debug, Clone, Default)]
pub(crate) struct Doc {
    pub root: Option<Node>,
    /// Markers of the second and later `---` documents (the desired state is one).
    pub extra_documents: Vec<Mark>,
    /// Constructs the editor cannot splice around: (byte position, why).
    pub unsupported: Vec<(usize, String)>,
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

impl Mark {
    fn from_marker(m: &Marker) -> Self {
        // yaml-rust2 reports 1-based lines and 0-based columns.
        Mark {
            line: m.line(),
            col: m.col() + 1,
        }
    }
}
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

/// Reads `text` leniently: every valid YAML document gives its tree (see [`Doc`]).
/// Only a syntax error fails.
pub(crate) fn read(text: &str) -> Result<Doc, SyntaxError> {
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
    let mut extra_documents = Vec::new();
    let mut docs = 0;
    let mut events = Vec::with_capacity(sink.0.len());
    for (ev, m) in sink.0 {
        if matches!(ev, Event::DocumentStart) {
            docs += 1;
            if docs > 1 {
                extra_documents.push(Mark::from_marker(&m));
            }
        }
        let b = c2b.get(m.index()).copied().unwrap_or(text.len());
        events.push((ev, b, Mark::from_marker(&m)));
    }
    let mut b = Builder {
        text,
        events,
        i: 0,
        unsupported: Vec::new(),
    };
    let mut root = None;
    while b.i < b.events.len() {
        match b.events[b.i].0 {
            Event::StreamStart | Event::DocumentStart | Event::Nothing => b.i += 1,
            Event::StreamEnd | Event::DocumentEnd => break,
            _ => {
                let ctx = Ctx {
                    after: None,
                    flow: false,
                    parent_indent: -1,
                };
                root = Some(b.node(ctx)?);
                break;
            }
        }
    }
    Ok(Doc {
        root,
        extra_documents,
        unsupported: b.unsupported,
    })
}

/// Parses `text` for splicing: its root node (`None` for an empty document), or the
/// first reason it cannot be edited safely (a syntax error, several documents, a
/// construct whose extent cannot be told).
pub(crate) fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let doc = read(text)?;
    if !doc.extra_documents.is_empty() {
        return Err(SyntaxError {
            line: 1,
            col: 1,
            msg: "the file holds several YAML documents; the desired state must be one".into(),
        });
    }
    if let Some((pos, msg)) = doc.unsupported.into_iter().next() {
        return Err(SyntaxError {
            line: line_of(text, pos),
            col: col_of(text, pos) + 1,
            msg,
        });
    }
    Ok(doc.root)
}

struct Builder<'a> {
    text: &'a str,
    events: Vec<(Event, usize, Mark)>,
    i: usize,
    unsupported: Vec<(usize, String)>,
}

impl Builder<'_> {
    fn err(&self, pos: usize, msg: &str) -> SyntaxError {
        SyntaxError {
            line: line_of(self.text, pos),
            col: col_of(self.text, pos) + 1,
            msg: msg.into(),
        }
    }

    /// Notes a construct whose extent the scan cannot tell; reading goes on.
    fn unsupported(&mut self, pos: usize, msg: &str) {
        self.unsupported.push((pos, msg.to_string()));
    }

    fn next(&mut self) -> Result<(Event, usize, Mark), SyntaxError> {
        let (ev, pos, mark) = self
            .events
            .get(self.i)
            .cloned()
            .ok_or_else(|| self.err(self.text.len(), "unexpected end of events"))?;
        self.i += 1;
        Ok((ev, pos, mark))
    }

    fn peek_is_end(&self) -> bool {
        matches!(
            self.events.get(self.i),
            Some((Event::MappingEnd | Event::SequenceEnd, _, _))
        )
    }

    fn node(&mut self, ctx: Ctx) -> Result<Node, SyntaxError> {
        let (ev, pos, mark) = self.next()?;
        let with = |mut n: Node, anchor: usize, tag: Option<Tag>| {
            n.mark = mark;
            n.anchor = anchor > 0;
            n.tag = tag;
            n
        };
        match ev {
            Event::Scalar(value, style, anchor, tag) => {
                let n = self.scalar(value, style, anchor > 0 || tag.is_some(), pos, ctx)?;
                Ok(with(n, anchor, tag))
            }
            Event::Alias(_) => {
                let end = scan_token_end(self.text, pos);
                Ok(with(node(Kind::Alias, pos, end, false), 0, None))
            }
            Event::MappingStart(anchor, tag) => {
                let props = anchor > 0 || tag.is_some();
                let n = if self.text[pos..].starts_with('{') {
                    self.flow_map(pos, props)?
                } else {
                    self.block_map(pos, props, ctx)?
                };
                Ok(with(n, anchor, tag))
            }
            Event::SequenceStart(anchor, tag) => {
                let props = anchor > 0 || tag.is_some();
                let n = if self.text[pos..].starts_with('[') {
                    self.flow_seq(pos, props)?
                } else {
                    self.block_seq(pos, props)?
                };
                Ok(with(n, anchor, tag))
            }
            _ => Err(self.err(pos, "unexpected YAML event")),
        }
    }

    fn scalar(
        &mut self,
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
            return Ok(node(kind, at, at, props));
        }
        let mut start = pos;
        if props || matches!(style, TScalarStyle::Literal | TScalarStyle::Folded) {
            if let Some(after) = ctx.after {
                start = skip_ws_comments(t, after);
            }
        }
        let end = match style {
            TScalarStyle::Plain => plain_end(t, pos, &value, ctx.flow)
                .ok_or("cannot locate the end of a multi-line plain scalar"),
            TScalarStyle::DoubleQuoted => quoted_end(t, pos, '"').ok_or("unterminated scalar"),
            TScalarStyle::SingleQuoted => quoted_end(t, pos, '\'').ok_or("unterminated scalar"),
            TScalarStyle::Literal | TScalarStyle::Folded => {
                block_scalar_end(t, start, ctx.parent_indent).ok_or("unterminated scalar")
            }
        };
        let end = end.unwrap_or_else(|why| {
            self.unsupported(pos, why);
            // The best guess: the token at the marker (only diagnostics use it).
            scan_token_end(t, pos).max(pos)
        });
        let kind = Kind::Scalar {
            value,
            style,
            implicit: false,
        };
        Ok(node(kind, start, end, props))
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
        let (_, end, _) = self.next()?;
        let kind = Kind::Map {
            flow: true,
            entries,
        };
        Ok(node(kind, start, end + 1, props))
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
                self.unsupported(
                    value.start,
                    "single-pair mappings inside [..] are not supported",
                );
            }
            entries.push(Entry {
                start: value.start,
                key: None,
                sep: None,
                value,
            });
        }
        let (_, end, _) = self.next()?;
        let kind = Kind::Seq {
            flow: true,
            entries,
        };
        Ok(node(kind, start, end + 1, props))
    }

    fn block_map(&mut self, pos: usize, props: bool, ctx: Ctx) -> Result<Node, SyntaxError> {
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
            let colon = find_colon(self.text, key.end, false);
            if colon.is_none() {
                self.unsupported(
                    key.start,
                    "explicit (`? `) or multi-line keys are not supported",
                );
            }
            let vctx = Ctx {
                after: Some(colon.map_or(key.end, |c| c + 1)),
                flow: false,
                parent_indent: indent,
            };
            let value = self.node(vctx)?;
            entries.push(Entry {
                start: key.start,
                key: Some(key),
                sep: colon,
                value,
            });
        }
        self.next()?;
        let (start, end) = match (entries.first(), entries.last()) {
            (Some(first), Some(last)) => (first.start, last.value.end),
            // `? ` with nothing: an empty block mapping (only explicit keys make one).
            _ => {
                self.unsupported(ctx.after.unwrap_or(pos), "empty block mapping");
                (pos, pos)
            }
        };
        let kind = Kind::Map {
            flow: false,
            entries,
        };
        Ok(node(kind, start, end, props))
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
                self.unsupported(dash, "cannot locate a block sequence item's `-`");
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
        let (start, end) = match (entries.first(), entries.last()) {
            (Some(first), Some(last)) => (first.start, last.value.end),
            _ => {
                self.unsupported(pos, "empty block sequence");
                (pos, pos)
            }
        };
        let kind = Kind::Seq {
            flow: false,
            entries,
        };
        Ok(node(kind, start, end, props))
    }
}

/// A node with no marker or properties yet (`Builder::node` adds them).
pub(crate) fn node(kind: Kind, start: usize, end: usize, props: bool) -> Node {
    Node {
        kind,
        start,
        end,
        props,
        mark: Mark::default(),
        anchor: false,
        tag: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Valid YAML the editor cannot splice around is still read whole by the validator's
    /// path (`read`), with the place listed; the editor's path (`parse`) refuses it with
    /// that place and reason.
    #[test]
    fn unsupported_constructs_are_read_but_not_spliced() {
        let cases = [
            ("a: 1\n? b\n: 2\n", 2, "explicit"),
            ("a: [x: 1]\n", 1, "single-pair mappings"),
        ];
        for (text, line, why) in cases {
            let doc = read(text).expect("valid YAML");
            let Some(Node {
                kind: Kind::Map { entries, .. },
                ..
            }) = &doc.root
            else {
                panic!("{text:?}: no mapping: {doc:?}");
            };
            assert_eq!(
                entries.len(),
                if text.contains('?') { 2 } else { 1 },
                "{text:?}"
            );
            assert_eq!(doc.unsupported.len(), 1, "{text:?}: {:?}", doc.unsupported);
            let e = parse(text).expect_err("the editor refuses");
            assert_eq!(e.line, line, "{text:?}: {e:?}");
            assert!(e.msg.contains(why), "{text:?}: {e:?}");
        }
    }

    /// Markers are the parser's (1-based line and column, columns in chars), properties
    /// are kept apart, and several documents are listed, not merged.
    #[test]
    fn nodes_carry_marks_properties_and_documents() {
        let doc = read("é: &x !!str 5\n---\nb: 2\n").expect("valid YAML");
        let Some(Node {
            kind: Kind::Map { entries, .. },
            ..
        }) = &doc.root
        else {
            panic!("{doc:?}");
        };
        let v = &entries[0].value;
        // At the value token, after its properties; `é` is two bytes but one column.
        assert_eq!(v.mark, Mark { line: 1, col: 13 });
        assert!(v.anchor && v.props);
        assert_eq!(v.tag.as_ref().map(|t| t.suffix.as_str()), Some("str"));
        assert_eq!(doc.extra_documents, vec![Mark { line: 2, col: 1 }]);
        assert!(parse("a: 1\n---\nb: 2\n").is_err());
    }
}
