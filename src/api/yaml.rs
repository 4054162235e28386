//! YAML documents as a tree that remembers where every node came from, and a
//! strict serde `Deserializer` over it.
//!
//! Kubernetes reads YAML by converting it to JSON and decoding that strictly:
//! a number where a string belongs is an error ("cannot unmarshal number into
//! ... of type string"), an unknown field is an error under
//! `kubectl apply --validate=strict`. This deserializer does the same and
//! names the line, column and field path of every error, and for an unknown
//! field the closest field the type does know.

use std::collections::BTreeMap;
use std::fmt;

use libyaml_safer::{EventData, Mark, Parser, ScalarStyle};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

/// A position in a source file, 1-based.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// One YAML node with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar with its text; `plain` when unquoted, so its type is resolved
    /// from the text (YAML core schema), otherwise always a string.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// What a plain scalar means.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(&'a str),
}

impl Node {
    /// The type of this node's scalar, resolved as YAML's core schema does.
    pub fn resolve(&self) -> Option<Resolved<'_>> {
        match &self.value {
            Value::Scalar { text, plain: false } => Some(Resolved::Str(text)),
            Value::Scalar { text, plain: true } => Some(resolve_plain(text)),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.resolve(), Some(Resolved::Null))
    }

    /// The mapping value under `key`, when this is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The scalar text, when this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A short description of the node's type for error messages.
    pub fn describe(&self) -> String {
        match self.resolve() {
            Some(Resolved::Null) => "null".into(),
            Some(Resolved::Bool(b)) => format!("boolean `{b}`"),
            Some(Resolved::Int(i)) => format!("number `{i}`"),
            Some(Resolved::UInt(i)) => format!("number `{i}`"),
            Some(Resolved::Float(_)) => format!("number `{}`", self.as_str().unwrap_or("")),
            Some(Resolved::Str(s)) => format!("string `{}`", truncate(s, 40)),
            None => match self.value {
                Value::Seq(_) => "a list".into(),
                _ => "a mapping".into(),
            },
        }
    }

    /// Converts to JSON as Kubernetes' YAML reader does (core-schema scalars).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(pairs) => J::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v.to_json()))
                    .collect(),
            ),
            Value::Scalar { .. } => match self.resolve().unwrap_or(Resolved::Null) {
                Resolved::Null => J::Null,
                Resolved::Bool(b) => J::Bool(b),
                Resolved::Int(i) => J::from(i),
                Resolved::UInt(u) => J::from(u),
                Resolved::Float(f) => serde_json::Number::from_f64(f)
                    .map(J::Number)
                    .unwrap_or(J::Null),
                Resolved::Str(s) => J::String(s.to_string()),
            },
        }
    }

    /// Builds a position-less tree from JSON (for objects made by patches).
    pub fn from_json(v: &serde_json::Value, pos: Pos) -> Node {
        use serde_json::Value as J;
        let value = match v {
            J::Null => Value::Scalar {
                text: "null".into(),
                plain: true,
            },
            J::Bool(b) => Value::Scalar {
                text: b.to_string(),
                plain: true,
            },
            J::Number(n) => Value::Scalar {
                text: n.to_string(),
                plain: true,
            },
            J::String(s) => Value::Scalar {
                text: s.clone(),
                plain: false,
            },
            J::Array(a) => Value::Seq(a.iter().map(|x| Node::from_json(x, pos)).collect()),
            J::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, x)| {
                        (
                            Node {
                                pos,
                                value: Value::Scalar {
                                    text: k.clone(),
                                    plain: false,
                                },
                            },
                            Node::from_json(x, pos),
                        )
                    })
                    .collect(),
            ),
        };
        Node { pos, value }
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// YAML 1.2 core schema resolution of an unquoted scalar.
pub fn resolve_plain(t: &str) -> Resolved<'_> {
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        _ => {}
    }
    let b = t.as_bytes();
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    if !body.is_empty() && body.bytes().all(|c| c.is_ascii_digit()) {
        if let Ok(i) = t.parse::<i64>() {
            return Resolved::Int(i);
        }
        if let Ok(u) = t.trim_start_matches('+').parse::<u64>() {
            return Resolved::UInt(u);
        }
        return Resolved::Str(t);
    }
    if let Some(hex) = t.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Resolved::Int(i);
        }
    }
    if let Some(oct) = t.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Resolved::Int(i);
        }
    }
    let looks_float = !b.is_empty()
        && body.bytes().any(|c| c.is_ascii_digit())
        && body
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
        && (body.contains('.') || body.contains(['e', 'E']));
    if looks_float {
        if let Ok(f) = t.parse::<f64>() {
            return Resolved::Float(f);
        }
    }
    Resolved::Str(t)
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Parses every document of a YAML stream with libyaml's grammar (the one
/// PyYAML and Kubernetes' go-yaml follow). Empty documents are skipped;
/// duplicate keys are errors, as in Kubernetes' strict decoding.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, SyntaxError> {
    if let Some(err) = unprintable(text) {
        return Err(err);
    }
    // libyaml-safer 0.3 panics on a few malformed inputs (an escape cut off
    // by the end of input: `"\`). Nothing a user writes may crash kubesim,
    // so such a panic becomes a syntax error at the end of the text.
    quiet_panics_install();
    QUIET.with(|q| q.set(true));
    let parsed = std::panic::catch_unwind(|| parse_documents_inner(text))
        .map(|r| r.map_err(|e| with_tab_hint(text, e)));
    QUIET.with(|q| q.set(false));
    parsed.unwrap_or_else(|_| {
        let line = text.lines().count().max(1) as u32;
        let col = text
            .lines()
            .last()
            .map(|l| l.chars().count() + 1)
            .unwrap_or(1) as u32;
        Err(SyntaxError {
            pos: Pos { line, col },
            message: "unexpected end of input inside a scalar or escape sequence".into(),
        })
    })
}

/// libyaml says only "found character that cannot start any token" for a
/// tab where indentation belongs; the most common cause by far, so the
/// error says so when the line it points at is indented with a tab.
fn with_tab_hint(text: &str, mut e: SyntaxError) -> SyntaxError {
    let line = text
        .lines()
        .nth(e.pos.line.saturating_sub(1) as usize)
        .unwrap_or("");
    let indent = &line[..line.len() - line.trim_start().len()];
    if indent.contains('\t') && !e.message.contains("tab") {
        e.message
            .push_str(" (this line is indented with a tab: YAML indents with spaces only)");
    }
    e
}

/// The first character YAML does not allow in a stream (C0 controls other
/// than tab, line feed and carriage return, DEL, and C1 controls but NEL:
/// YAML 1.2 `c-printable`), located; libyaml reports these at 1:1.
fn unprintable(text: &str) -> Option<SyntaxError> {
    let printable =
        |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{85}') || !(c.is_control() || c == '\u{7f}');
    let (offset, c) = text.char_indices().find(|&(_, c)| !printable(c))?;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    Some(SyntaxError {
        pos: Pos {
            line: line as u32,
            col: col as u32,
        },
        message: format!(
            "control character U+{:04X} at byte offset {offset} is not allowed in YAML",
            c as u32
        ),
    })
}

thread_local! {
    /// Set while the YAML parser runs: its panics are reported as syntax
    /// errors, not printed.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs (once) a panic hook that stays silent for parser panics on this
/// thread and otherwise behaves as the previous hook.
fn quiet_panics_install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
}

fn parse_documents_inner(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut builder = TreeBuilder::default();
    let mut parser = Parser::new();
    parser.set_input(Chunked(text.as_bytes()));
    for event in parser {
        let event = event.map_err(|e| {
            let mark = e.problem_mark().unwrap_or_default();
            let context = e.context().map(|c| format!("{c}: ")).unwrap_or_default();
            SyntaxError {
                pos: pos_of(mark),
                message: format!("{context}{}", e.problem()),
            }
        })?;
        // Depth and alias limits stop the parse at once: going on is what
        // would exhaust time or memory.
        builder.on_event(event.data, pos_of(event.start_mark))?;
    }
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// How many bytes the parser is handed at a time.
const CHUNK: usize = 16 * 1024;

/// The text as a reader that hands out [`CHUNK`] bytes at a time. libyaml
/// decodes whatever its reader offers into a queue of `char`s (4 bytes
/// each) before scanning it; offered the whole text at once, a 45 MB
/// scenario became a 180 MB queue, grown by doubling.
struct Chunked<'a>(&'a [u8]);

impl std::io::Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl std::io::BufRead for Chunked<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        Ok(&self.0[..self.0.len().min(CHUNK)])
    }

    fn consume(&mut self, n: usize) {
        self.0 = &self.0[n..];
    }
}

/// How deeply lists and mappings may nest: serde_yaml's recursion limit.
/// The deepest manifest in the realworld corpus nests 14 levels; a deeper
/// document is a mistake or an attack (nesting 100,000 deep makes the
/// scanner's simple-key search quadratic, and recursion on the tree
/// overflow the stack).
pub const MAX_DEPTH: usize = 128;

/// How many nodes aliases may copy beyond the nodes written in the stream.
/// go-yaml and serde_yaml refuse "excessive aliasing" too; this cap keeps a
/// 545-byte "billion laughs" (9⁹ strings) from exhausting memory while a
/// scenario that reuses an anchored pod template thousands of times loads.
pub const MAX_ALIAS_NODES: usize = 1_000_000;

fn pos_of(m: Mark) -> Pos {
    Pos {
        line: m.line as u32 + 1,
        col: m.column as u32 + 1,
    }
}

#[derive(Default)]
struct TreeBuilder {
    docs: Vec<Node>,
    stack: Vec<(Node, Option<Node>, Option<String>)>,
    /// Anchored nodes with their size in nodes.
    anchors: BTreeMap<String, (Node, usize)>,
    error: Option<SyntaxError>,
    /// Nodes the events themselves made.
    parsed: usize,
    /// Nodes copied for anchors and aliases.
    copied: usize,
}

/// The number of nodes in `node`'s tree.
fn node_count(node: &Node) -> usize {
    match &node.value {
        Value::Scalar { .. } => 1,
        Value::Seq(items) => 1 + items.iter().map(node_count).sum::<usize>(),
        Value::Map(pairs) => {
            1 + pairs
                .iter()
                .map(|(k, v)| node_count(k) + node_count(v))
                .sum::<usize>()
        }
    }
}

impl TreeBuilder {
    /// Counts a copy of `size` nodes made at `pos`, refusing it past the cap.
    fn copy_budget(&mut self, size: usize, pos: Pos) -> Result<(), SyntaxError> {
        self.copied = self.copied.saturating_add(size);
        if self.copied > self.parsed.saturating_add(MAX_ALIAS_NODES) {
            return Err(SyntaxError {
                pos,
                message: format!(
                    "excessive aliasing: aliases expand to more than {MAX_ALIAS_NODES} nodes beyond the {} written (an alias bomb?)",
                    self.parsed
                ),
            });
        }
        Ok(())
    }

    fn push_value(&mut self, node: Node, anchor: Option<String>) -> Result<(), SyntaxError> {
        if let Some(a) = anchor {
            let size = node_count(&node);
            self.copy_budget(size, node.pos)?;
            self.anchors.insert(a, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some((parent, pending_key, _)) => match &mut parent.value {
                Value::Seq(items) => items.push(node),
                Value::Map(pairs) => match pending_key.take() {
                    None => *pending_key = Some(node),
                    Some(key) => {
                        let dup = pairs
                            .iter()
                            .any(|(k, _)| k.as_str().is_some() && k.as_str() == key.as_str());
                        if dup && self.error.is_none() {
                            self.error = Some(SyntaxError {
                                pos: key.pos,
                                message: format!("duplicate key `{}`", key.as_str().unwrap_or("")),
                            });
                        }
                        pairs.push((key, node));
                    }
                },
                Value::Scalar { .. } => {}
            },
        }
        Ok(())
    }

    /// Opens a list or mapping, refusing nesting deeper than [`MAX_DEPTH`].
    fn open(&mut self, value: Value, pos: Pos, anchor: Option<String>) -> Result<(), SyntaxError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(SyntaxError {
                pos,
                message: format!("lists and mappings nest more than {MAX_DEPTH} levels deep"),
            });
        }
        self.parsed += 1;
        self.stack.push((Node { pos, value }, None, anchor));
        Ok(())
    }

    fn on_event(&mut self, ev: EventData, pos: Pos) -> Result<(), SyntaxError> {
        match ev {
            EventData::Scalar {
                value,
                style,
                anchor,
                ..
            } => {
                self.parsed += 1;
                let plain = style == ScalarStyle::Plain;
                // libyaml grows scalars by doubling; a long scenario's tree
                // keeps them all, so slack of a size class or more goes.
                let mut value = value;
                if value.capacity() - value.len() >= 16 {
                    value.shrink_to_fit();
                }
                self.push_value(
                    Node {
                        pos,
                        value: Value::Scalar { text: value, plain },
                    },
                    anchor,
                )
            }
            EventData::SequenceStart { anchor, .. } => {
                self.open(Value::Seq(Vec::new()), pos, anchor)
            }
            EventData::MappingStart { anchor, .. } => {
                self.open(Value::Map(Vec::new()), pos, anchor)
            }
            EventData::SequenceEnd | EventData::MappingEnd => match self.stack.pop() {
                Some((mut node, _, anchor)) => {
                    apply_merge_keys(&mut node);
                    fit(&mut node);
                    self.push_value(node, anchor)
                }
                None => Ok(()),
            },
            EventData::Alias { anchor } => {
                let Some(&(_, size)) = self.anchors.get(&anchor) else {
                    return Err(SyntaxError {
                        pos,
                        message: format!("unknown anchor `{anchor}` referenced"),
                    });
                };
                // Counted before the copy is made, so a refused one costs nothing.
                self.copy_budget(size, pos)?;
                let node = self.anchors[&anchor].0.clone();
                self.push_value(node, None)
            }
            EventData::DocumentStart { .. } => {
                self.anchors.clear();
                Ok(())
            }
            // An empty document yields no node; keep documents aligned.
            _ => Ok(()),
        }
    }
}

/// Gives a closed list or mapping back the room its growth left over: the
/// tree of a long scenario lives for the whole load, and a two-key mapping
/// grown to four slots is twice its size.
fn fit(node: &mut Node) {
    match &mut node.value {
        Value::Seq(items) => items.shrink_to_fit(),
        Value::Map(pairs) => pairs.shrink_to_fit(),
        Value::Scalar { .. } => {}
    }
}

/// Resolves YAML merge keys (`<<: *anchor`, or a list of anchors), as
/// kubectl's YAML reader does: keys written in the mapping win, then the
/// merged mappings in order.
fn apply_merge_keys(node: &mut Node) {
    let Value::Map(pairs) = &mut node.value else {
        return;
    };
    let is_merge =
        |k: &Node| matches!(&k.value, Value::Scalar { text, plain: true } if text == "<<");
    if !pairs.iter().any(|(k, _)| is_merge(k)) {
        return;
    }
    let (merges, mut own): (Vec<_>, Vec<_>) = std::mem::take(pairs)
        .into_iter()
        .partition(|(k, _)| is_merge(k));
    for (_, value) in merges {
        let sources: Vec<Node> = match value.value {
            Value::Seq(items) => items,
            _ => vec![value],
        };
        for src in sources {
            if let Value::Map(extra) = src.value {
                for (k, v) in extra {
                    let present = own
                        .iter()
                        .any(|(o, _)| o.as_str().is_some() && o.as_str() == k.as_str());
                    if !present {
                        own.push((k, v));
                    }
                }
            }
        }
    }
    *pairs = own;
}

/// A decoding error: what went wrong, where, and at which field path.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    pub message: String,
    pub pos: Option<Pos>,
    /// Field path segments from the document root (`spec`, `containers[0]`).
    pub path: Vec<String>,
}

impl DeError {
    fn at(mut self, pos: Pos) -> Self {
        if self.pos.is_none() {
            self.pos = Some(pos);
        }
        self
    }
    fn under(mut self, segment: String) -> Self {
        self.path.insert(0, segment);
        self
    }
    /// The path as `spec.containers[0].image`.
    pub fn path_string(&self) -> String {
        join_path(&self.path)
    }
}

/// Joins path segments: keys with dots, indices in brackets.
pub fn join_path(segments: &[String]) -> String {
    let mut out = String::new();
    for s in segments {
        if s.starts_with('[') || out.is_empty() {
            out.push_str(s);
        } else {
            out.push('.');
            out.push_str(s);
        }
    }
    out
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            pos: None,
            path: Vec::new(),
        }
    }
}

/// An unknown field found while decoding.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownField {
    pub pos: Pos,
    pub path: Vec<String>,
    pub field: String,
    pub suggestion: Option<String>,
}

/// Decodes `T` from `node`, collecting unknown fields into `unknown`.
pub fn from_node<'n, T: de::Deserialize<'n>>(
    node: &'n Node,
    unknown: &mut Vec<UnknownField>,
) -> Result<T, DeError> {
    let mut path = Vec::new();
    T::deserialize(NodeDe {
        node,
        unknown,
        path: &mut path,
    })
}

struct NodeDe<'n, 'u> {
    node: &'n Node,
    unknown: &'u mut Vec<UnknownField>,
    path: &'u mut Vec<String>,
}

impl<'n, 'u> NodeDe<'n, 'u> {
    fn type_error(&self, expected: &str) -> DeError {
        let hint = match (self.node.resolve(), expected) {
            (
                Some(Resolved::Int(_) | Resolved::UInt(_) | Resolved::Float(_) | Resolved::Bool(_)),
                "a string",
            ) => " (quote it to make it a string)",
            _ => "",
        };
        DeError {
            message: format!("expected {expected}, found {}{hint}", self.node.describe()),
            pos: Some(self.node.pos),
            path: Vec::new(),
        }
    }

    fn visit_map_node<V: Visitor<'n>>(
        self,
        visitor: V,
        fields: Option<&'static [&'static str]>,
    ) -> Result<V::Value, DeError> {
        let pos = self.node.pos;
        match &self.node.value {
            Value::Map(pairs) => {
                if let Some(fields) = fields {
                    for (k, _) in pairs {
                        let key = k.as_str().unwrap_or("");
                        if !fields.contains(&key) {
                            let mut path = self.path.clone();
                            path.push(key.to_string());
                            self.unknown.push(UnknownField {
                                pos: k.pos,
                                path,
                                field: key.to_string(),
                                suggestion: closest(key, fields),
                            });
                        }
                    }
                }
                let access = MapNodes {
                    pairs,
                    i: 0,
                    unknown: self.unknown,
                    path: self.path,
                    fields,
                };
                visitor.visit_map(access).map_err(|e| e.at(pos))
            }
            Value::Scalar { .. } if self.node.is_null() => {
                let access = MapNodes {
                    pairs: &[],
                    i: 0,
                    unknown: self.unknown,
                    path: self.path,
                    fields,
                };
                visitor.visit_map(access)
            }
            _ => Err(self.type_error("a mapping")),
        }
    }
}

/// The closest of `candidates` to `word` by edit distance, if close enough to
/// be a likely misspelling.
pub fn closest(word: &str, candidates: &[&str]) -> Option<String> {
    let lw = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&lw, &c.to_ascii_lowercase()), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

struct MapNodes<'n, 'u> {
    pairs: &'n [(Node, Node)],
    i: usize,
    unknown: &'u mut Vec<UnknownField>,
    path: &'u mut Vec<String>,
    fields: Option<&'static [&'static str]>,
}

impl<'n> MapAccess<'n> for MapNodes<'n, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'n>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        // Unknown keys of a struct were reported already; skip them so the
        // type's own catch-all does not see them twice.
        while let Some((k, _)) = self.pairs.get(self.i) {
            let known = match self.fields {
                Some(f) => f.contains(&k.as_str().unwrap_or("")),
                None => true,
            };
            if known {
                break;
            }
            self.i += 1;
        }
        let Some((k, _)) = self.pairs.get(self.i) else {
            return Ok(None);
        };
        let key = k.as_str().unwrap_or("").to_string();
        seed.deserialize(key.into_deserializer())
            .map(Some)
            .map_err(|e: DeError| e.at(k.pos))
    }

    fn next_value_seed<V: DeserializeSeed<'n>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (k, v) = &self.pairs[self.i];
        self.i += 1;
        let seg = k.as_str().unwrap_or("").to_string();
        self.path.push(seg.clone());
        let r = seed.deserialize(NodeDe {
            node: v,
            unknown: self.unknown,
            path: self.path,
        });
        self.path.pop();
        r.map_err(|e| e.at(v.pos).under(seg))
    }
}

struct SeqNodes<'n, 'u> {
    items: &'n [Node],
    i: usize,
    unknown: &'u mut Vec<UnknownField>,
    path: &'u mut Vec<String>,
}

impl<'n> SeqAccess<'n> for SeqNodes<'n, '_> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'n>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.get(self.i) else {
            return Ok(None);
        };
        let seg = format!("[{}]", self.i);
        self.i += 1;
        self.path.push(seg.clone());
        let r = seed.deserialize(NodeDe {
            node,
            unknown: self.unknown,
            path: self.path,
        });
        self.path.pop();
        r.map(Some).map_err(|e| e.at(node.pos).under(seg))
    }
}

macro_rules! int_method {
    ($name:ident, $visit:ident, $t:ty) => {
        fn $name<V: Visitor<'n>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self.node.resolve() {
                Some(Resolved::Int(i)) => match <$t>::try_from(i) {
                    Ok(v) => visitor.$visit(v),
                    Err(_) => {
                        Err(self.type_error(concat!("an integer that fits ", stringify!($t))))
                    }
                },
                Some(Resolved::UInt(u)) => match <$t>::try_from(u) {
                    Ok(v) => visitor.$visit(v),
                    Err(_) => {
                        Err(self.type_error(concat!("an integer that fits ", stringify!($t))))
                    }
                },
                _ => Err(self.type_error("an integer")),
            }
        }
    };
}

impl<'n> de::Deserializer<'n> for NodeDe<'n, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'n>>(self, visitor: V) -> Result<V::Value, DeError> {
        let pos = self.node.pos;
        match &self.node.value {
            Value::Map(_) => self.visit_map_node(visitor, None),
            Value::Seq(items) => visitor
                .visit_seq(SeqNodes {
                    items,
                    i: 0,
                    unknown: self.unknown,
                    path: self.path,
                })
                .map_err(|e| e.at(pos)),
            Value::Scalar { .. } => match self.node.resolve().unwrap_or(Resolved::Null) {
                Resolved::Null => visitor.visit_unit::<DeError>(),
                Resolved::Bool(b) => visitor.visit_bool(b),
                Resolved::Int(i) => visitor.visit_i64(i),
                Resolved::UInt(u) => visitor.visit_u64(u),
                Resolved::Float(f) => visitor.visit_f64(f),
                Resolved::Str(s) => visitor.visit_str(s),
            }
            .map_err(|e| e.at(pos)),
        }
    }

    fn deserialize_bool<V: Visitor<'n>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.resolve() {
            Some(Resolved::Bool(b)) => visitor.visit_bool(b),
            _ => Err(self.type_error("true or false")),
        }
    }

    int_method!(deserialize_i8, visit_i8, i8);
    int_method!(deserialize_i16, visit_i16, i16);
    int_method!(deserialize_i32, visit_i32, i32);
    int_method!(deserialize_i64, visit_i64, i64);
    int_method!(deserialize_u8, visit_u8, u8);
    int_method!(deserialize_u16, visit_u16, u16);
    int_method!(deserialize_u32, visit_u32, u32);
    int_method!(deserialize_u64, visit_u64, u64);

    fn deserialize_f32<V: Visitor<'n>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'n>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.resolve() {
            Some(Resolved::Float(f)) => visitor.visit_f64(f),
            Some(Resolved::Int(i)) => visitor.visit_f64(i as f64),
            Some(Resolved::UInt(u)) => visitor.visit_f64(u as f64),
            _ => Err(self.type_error("a number")),
        }
    }

    fn deserialize_char<V: Visitor<'n>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'n>>(self, visitor: V) -> Result<V::Value, DeError> {
        let pos = self.node.pos;
        match self.node.resolve() {
            Some(Resolved::Str(s)) => visitor.visit_str::<DeError>(s).map_err(|e| e.at(pos)),
            // Go leaves a string untouched when JSON gives null.
            Some(Resolved::Null) => visitor.visit_str(""),
            _ => Err(self.type_error("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'n>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'n>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'n>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'n>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'n>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'n>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'n>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'n>>(self, visitor: V) -> Result<V::Value, DeError> {
        let pos = self.node.pos;
        match &self.node.value {
            Value::Seq(items) => visitor
                .visit_seq(SeqNodes {
                    items,
                    i: 0,
                    unknown: self.unknown,
                    path: self.path,
                })
                .map_err(|e| e.at(pos)),
            _ if self.node.is_null() => visitor.visit_seq(SeqNodes {
                items: &[],
                i: 0,
                unknown: self.unknown,
                path: self.path,
            }),
            _ => Err(self.type_error("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'n>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'n>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'n>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.visit_map_node(visitor, None)
    }

    fn deserialize_struct<V: Visitor<'n>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.visit_map_node(visitor, Some(fields))
    }

    fn deserialize_enum<V: Visitor<'n>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Scalar { text, .. } => visitor.visit_enum(text.as_str().into_deserializer()),
            Value::Map(pairs) if pairs.len() == 1 => {
                let (k, v) = &pairs[0];
                visitor.visit_enum(EnumNode {
                    key: k.as_str().unwrap_or(""),
                    value: v,
                    unknown: self.unknown,
                    path: self.path,
                })
            }
            _ => Err(self.type_error("a single-key mapping or a string")),
        }
    }

    fn deserialize_identifier<V: Visitor<'n>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'n>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct EnumNode<'n, 'u> {
    key: &'n str,
    value: &'n Node,
    unknown: &'u mut Vec<UnknownField>,
    path: &'u mut Vec<String>,
}

impl<'n, 'u> de::EnumAccess<'n> for EnumNode<'n, 'u> {
    type Error = DeError;
    type Variant = NodeDe<'n, 'u>;
    fn variant_seed<V: DeserializeSeed<'n>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), DeError> {
        let v = seed.deserialize(self.key.into_deserializer())?;
        self.path.push(self.key.to_string());
        Ok((
            v,
            NodeDe {
                node: self.value,
                unknown: self.unknown,
                path: self.path,
            },
        ))
    }
}

impl<'n> de::VariantAccess<'n> for NodeDe<'n, '_> {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'n>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'n>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(self, visitor)
    }
    fn struct_variant<V: Visitor<'n>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.visit_map_node(visitor, Some(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_handed_over_in_chunks_parses_as_one_piece() {
        // Scalars and a multi-byte character (`é`, 2 bytes) straddle every
        // chunk boundary somewhere in 40,000 entries of 21 or 22 bytes.
        let text: String = (0..40_000)
            .map(|i| format!("- {{k: \"é{i}\"}}\n"))
            .collect();
        assert!(text.len() > 4 * CHUNK);
        let docs = parse_documents(&text).unwrap();
        let Value::Seq(items) = &docs[0].value else {
            panic!("a list")
        };
        assert_eq!(items.len(), 40_000);
        // Entry i is on line i + 1, its value at column 7 (`- {k: ` is 6).
        let last = items[39_999].get("k").unwrap();
        assert_eq!(last.as_str(), Some("é39999"));
        assert_eq!(
            last.pos,
            Pos {
                line: 40_000,
                col: 7
            }
        );
    }

    #[test]
    fn a_tab_in_indentation_is_named() {
        let e = parse_documents("a:\n\tb: 1\n").unwrap_err();
        assert_eq!(e.pos.line, 2, "{e:?}");
        assert!(e.message.contains("indented with a tab"), "{}", e.message);
        // A tab inside a value is fine and gets no hint.
        assert!(parse_documents("a: \"x\ty\"\n").is_ok());
    }

    #[test]
    fn merge_keys_fill_in_what_the_mapping_does_not_say() {
        let docs =
            parse_documents("base: &b {a: 1, b: 2}\nx: {<<: *b, b: 3}\ny:\n  <<: [*b, {c: 4}]\n")
                .unwrap();
        let j = docs[0].to_json();
        assert_eq!(j["x"]["b"], 3);
        assert_eq!(j["x"]["a"], 1);
        assert_eq!(j["y"]["c"], 4);
        assert!(j["x"].get("<<").is_none());
    }
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Probe {
        #[serde(rename = "periodSeconds")]
        period_seconds: Option<i32>,
        name: Option<String>,
    }

    #[test]
    fn flow_style_comments_and_positions() {
        let docs = parse_documents("a: {b: 1, # c\n  d: \"x\",}\n---\n---\n[1, 2]\n").unwrap();
        assert_eq!(docs.len(), 2);
        let d = docs[0].get("a").unwrap().get("d").unwrap();
        assert_eq!(d.pos.line, 2);
        assert_eq!(d.as_str(), Some("x"));
    }

    #[test]
    fn unknown_fields_are_reported_with_a_suggestion() {
        let doc = &parse_documents("periodSecond: 3\nname: x\n").unwrap()[0];
        let mut unknown = Vec::new();
        let _: Probe = from_node(doc, &mut unknown).unwrap();
        assert_eq!(unknown.len(), 1);
        assert_eq!(unknown[0].suggestion.as_deref(), Some("periodSeconds"));
        assert_eq!(unknown[0].pos, Pos { line: 1, col: 1 });
    }

    #[test]
    fn a_number_is_not_a_string_and_errors_carry_the_path() {
        let doc = &parse_documents("name: 3\n").unwrap()[0];
        let err = from_node::<Probe>(doc, &mut Vec::new()).unwrap_err();
        assert_eq!(err.path_string(), "name");
        assert_eq!(err.pos, Some(Pos { line: 1, col: 7 }));
        assert!(err.message.contains("quote it"), "{}", err.message);
    }

    #[test]
    fn duplicate_keys_and_bad_syntax_are_errors() {
        assert!(parse_documents("a: 1\na: 2\n")
            .unwrap_err()
            .message
            .contains("duplicate"));
        let e = parse_documents("a:\n  b: 1\n c: 2\n").unwrap_err();
        assert_eq!(e.pos.line, 3);
    }

    #[test]
    fn an_alias_bomb_is_refused_where_its_copies_pass_the_cap() {
        // Nine levels of nine aliases: 9^9 = 387,420,489 strings. Sizes in
        // nodes: a = 10, b = 1 + 9*10 = 91, c = 820, d = 7,381, e = 66,430,
        // f = 597,871. Copies (one per anchor, nine per level of aliases):
        // through line 5, 10 + 181 + 1,639 + 14,761 + 132,859 = 149,450;
        // line 6's nine aliases to e add 597,870 (747,320), and keeping `f`
        // as an anchor 597,871 more: 1,345,191, past 1,000,000 + the 22
        // nodes written so far (root, six keys, six lists, nine `lol`). So the error is at f's list, line 6 column 4.
        let mut text = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        let mut prev = 'a';
        for c in "bcdefghi".chars() {
            let refs = vec![format!("*{prev}"); 9].join(", ");
            text.push_str(&format!("{c}: &{c} [{refs}]\n"));
            prev = c;
        }
        let e = parse_documents(&text).unwrap_err();
        assert_eq!(e.pos, Pos { line: 6, col: 4 }, "{e:?}");
        assert!(e.message.contains("excessive aliasing"), "{}", e.message);
        // The same shape three levels deep (9^3 = 729 strings) is fine.
        let small = text.lines().take(3).collect::<Vec<_>>().join("\n");
        assert!(parse_documents(&small).is_ok());
    }

    #[test]
    fn nesting_past_the_limit_is_a_located_error_and_stops_early() {
        // 100,000 `[` would take libyaml's scanner quadratic time; the parse
        // stops at level 129: the root mapping is level 1, so the 128th `[`,
        // at column 6 + 128 = 134 (after the six characters `name: `).
        let text = format!("name: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = parse_documents(&text).unwrap_err();
        assert_eq!(e.pos, Pos { line: 1, col: 134 }, "{e:?}");
        assert!(e.message.contains("128 levels"));
        // 128 levels are allowed.
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_documents(&ok).is_ok());
    }

    #[test]
    fn an_unknown_anchor_and_control_characters_are_located() {
        let e = parse_documents("a: 1\nb: *nowhere\n").unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, col: 4 });
        let e = parse_documents("a: 1\nb: x\u{0}y\n").unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, col: 5 });
        assert!(e.message.contains("U+0000"), "{}", e.message);
    }

    #[test]
    fn core_schema_resolution() {
        assert_eq!(resolve_plain("12"), Resolved::Int(12));
        assert_eq!(resolve_plain("0.5"), Resolved::Float(0.5));
        assert_eq!(resolve_plain("1e3"), Resolved::Float(1000.0));
        assert_eq!(resolve_plain("500m"), Resolved::Str("500m"));
        assert_eq!(resolve_plain("1Gi"), Resolved::Str("1Gi"));
        assert_eq!(resolve_plain("true"), Resolved::Bool(true));
        assert_eq!(resolve_plain("yes"), Resolved::Str("yes"));
        assert_eq!(resolve_plain("~"), Resolved::Null);
    }
}
