//! A scenario's text, and the parts of it shrinking removes or changes,
//! located by the position-marked YAML tree: the line span of each block
//! list item of `timeline:` and `objects:`, and the scalars of workload
//! `replicas`, node pool `count` and `duration`.
//!
//! Why edit the text and not re-serialise the tree: a person reads
//! `min.yaml`, and the scenario's comments, key order and flow-style
//! objects are what they wrote. A reduced scenario is the original with
//! some item lines left out and a few numbers rewritten.

use crate::api::yaml::{Node, Pos, Value};

/// A list item's lines, 0-based, `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// A plain or quoted scalar on one line: where its token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scalar {
    pub line: usize,
    /// 0-based character column of the token's first character.
    pub col: usize,
    /// The token's length in characters (quotes included).
    pub len: usize,
    /// The scalar's text.
    pub text: String,
}

/// One top-level block list (`timeline:` or `objects:`).
#[derive(Clone, Debug, Default)]
pub struct List {
    /// The key's line, rewritten to `key: []` when every item goes.
    pub key_line: Option<usize>,
    pub items: Vec<Span>,
    /// The item nodes, for reading what each holds.
    pub nodes: Vec<Node>,
}

/// A scenario file prepared for shrinking.
#[derive(Clone, Debug)]
pub struct Doc {
    pub lines: Vec<String>,
    pub timeline: List,
    pub objects: List,
    /// `spec.replicas` of each object that has one: (object index, scalar).
    pub replicas: Vec<(usize, Scalar)>,
    /// `cluster.nodePools[i].count`: (pool name, scalar).
    pub counts: Vec<(String, Scalar)>,
    pub duration: Option<Scalar>,
}

/// What to render: which items stay, and the numbers' new text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edits {
    pub timeline: Vec<bool>,
    pub objects: Vec<bool>,
    /// New text per `Doc::replicas` entry.
    pub replicas: Vec<String>,
    pub counts: Vec<String>,
    pub duration: Option<String>,
}

impl Doc {
    /// Locates the parts of `text` (parsed as `doc`). A list written in
    /// flow style, or whose items do not start on their own `- ` line, is
    /// left whole (no items to remove).
    pub fn new(text: &str, doc: &Node) -> Result<Doc, String> {
        let Value::Map(entries) = &doc.value else {
            return Err("a scenario is a mapping".into());
        };
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let tops: Vec<usize> = entries
            .iter()
            .map(|(k, _)| k.pos.line as usize - 1)
            .collect();
        let block_end = |i: usize| tops.get(i + 1).copied().unwrap_or(lines.len());
        let list = |name: &str| -> List {
            let Some(i) = entries.iter().position(|(k, _)| k.as_str() == Some(name)) else {
                return List::default();
            };
            let (key, value) = &entries[i];
            block_items(&lines, key, value, block_end(i))
        };
        let timeline = list("timeline");
        let objects = list("objects");
        let mut replicas = Vec::new();
        for (i, o) in objects.nodes.iter().enumerate() {
            if let Some(s) = o.get("spec").and_then(|s| s.get("replicas")) {
                if let Some(sc) = scalar(&lines, s) {
                    replicas.push((i, sc));
                }
            }
        }
        let mut counts = Vec::new();
        if let Some(Value::Seq(pools)) = doc
            .get("cluster")
            .and_then(|c| c.get("nodePools"))
            .map(|p| &p.value)
        {
            for p in pools {
                let name = p.get("name").and_then(Node::as_str).unwrap_or_default();
                if let Some(sc) = p.get("count").and_then(|c| scalar(&lines, c)) {
                    counts.push((name.to_string(), sc));
                }
            }
        }
        let duration = doc.get("duration").and_then(|d| scalar(&lines, d));
        Ok(Doc {
            lines,
            timeline,
            objects,
            replicas,
            counts,
            duration,
        })
    }

    /// Nothing removed, nothing changed.
    pub fn unchanged(&self) -> Edits {
        Edits {
            timeline: vec![true; self.timeline.items.len()],
            objects: vec![true; self.objects.items.len()],
            replicas: self.replicas.iter().map(|(_, s)| s.text.clone()).collect(),
            counts: self.counts.iter().map(|(_, s)| s.text.clone()).collect(),
            duration: self.duration.as_ref().map(|s| s.text.clone()),
        }
    }

    /// The text with `e` applied.
    pub fn render(&self, e: &Edits) -> String {
        let mut dropped = vec![false; self.lines.len()];
        let mut emptied: Vec<usize> = Vec::new();
        for (list, keep) in [(&self.timeline, &e.timeline), (&self.objects, &e.objects)] {
            for (span, _) in list.items.iter().zip(keep).filter(|(_, k)| !**k) {
                dropped[span.start..span.end]
                    .iter_mut()
                    .for_each(|d| *d = true);
            }
            if !list.items.is_empty() && keep.iter().all(|k| !k) {
                emptied.extend(list.key_line);
            }
        }
        let mut swaps: Vec<(&Scalar, &str)> = Vec::new();
        swaps.extend(
            self.replicas
                .iter()
                .map(|(_, s)| s)
                .zip(e.replicas.iter().map(String::as_str)),
        );
        swaps.extend(
            self.counts
                .iter()
                .map(|(_, s)| s)
                .zip(e.counts.iter().map(String::as_str)),
        );
        if let (Some(s), Some(d)) = (&self.duration, &e.duration) {
            swaps.push((s, d));
        }
        // Right to left on a line, so earlier columns stay valid.
        swaps.sort_by_key(|(s, _)| std::cmp::Reverse((s.line, s.col)));
        let mut lines = self.lines.clone();
        for (s, new) in swaps {
            if s.text == new {
                continue;
            }
            let chars: Vec<char> = lines[s.line].chars().collect();
            let mut out: String = chars[..s.col].iter().collect();
            out.push_str(new);
            out.extend(chars[s.col + s.len..].iter());
            lines[s.line] = out;
        }
        for l in emptied {
            let line = &lines[l];
            let key_end = line.find(':').map_or(line.len(), |c| c + 1);
            lines[l] = format!("{} []", &line[..key_end]);
        }
        let mut out = String::new();
        for (line, _) in lines.iter().zip(&dropped).filter(|(_, d)| !**d) {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// The items of a top-level block list: each from its `- ` line to the
/// next item's, less the blank and comment lines just before the next
/// item (they introduce it, or what follows the list).
fn block_items(lines: &[String], key: &Node, value: &Node, block_end: usize) -> List {
    let key_line = key.pos.line as usize - 1;
    let Value::Seq(items) = &value.value else {
        return List::default();
    };
    let starts: Option<Vec<usize>> = items
        .iter()
        .map(|it| {
            let l = it.pos.line as usize - 1;
            let before: String = lines
                .get(l)?
                .chars()
                .take(it.pos.col as usize - 1)
                .collect();
            (l > key_line && before.trim_end().ends_with('-')).then_some(l)
        })
        .collect();
    let Some(starts) = starts else {
        return List::default();
    };
    let mut spans = Vec::new();
    for (i, &start) in starts.iter().enumerate() {
        let mut end = starts.get(i + 1).copied().unwrap_or(block_end);
        while end > start + 1 && is_blank_or_comment(&lines[end - 1]) {
            end -= 1;
        }
        spans.push(Span { start, end });
    }
    List {
        key_line: Some(key_line),
        items: spans,
        nodes: items.clone(),
    }
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// Where scalar `node`'s token is on its line; `None` for a mapping, a
/// list, or a scalar that spans lines.
fn scalar(lines: &[String], node: &Node) -> Option<Scalar> {
    let Value::Scalar { text, .. } = &node.value else {
        return None;
    };
    let Pos { line, col } = node.pos;
    let chars: Vec<char> = lines.get(line as usize - 1)?.chars().collect();
    let start = col as usize - 1;
    let len = match chars.get(start)? {
        q @ ('"' | '\'') => {
            let close = chars[start + 1..].iter().position(|c| c == q)?;
            close + 2
        }
        _ => {
            let n = text.chars().count();
            let token: String = chars.get(start..start + n)?.iter().collect();
            (token == *text).then_some(n)?
        }
    };
    Some(Scalar {
        line: line as usize - 1,
        col: start,
        len,
        text: text.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::yaml::parse_documents;

    const TEXT: &str = "\
name: t
duration: 10m   # the horizon
objects:
  # the app
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: a, namespace: default}
    spec:
      replicas: 8

  # a second one
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c, namespace: default}}
timeline:
  - at: 1m
    note: first
  - {at: 2m, crashNode: \"w-1\"}
";

    fn doc() -> Doc {
        let nodes = parse_documents(TEXT).unwrap();
        Doc::new(TEXT, &nodes[0]).unwrap()
    }

    #[test]
    fn items_span_their_lines_and_leave_the_next_ones_comment() {
        let d = doc();
        // Object 0: lines 5..=9 (1-based) less the blank line and the
        // comment introducing object 1: [4, 9). Object 1: line 12 alone.
        assert_eq!(
            d.objects.items,
            vec![Span { start: 4, end: 9 }, Span { start: 11, end: 12 }]
        );
        assert_eq!(
            d.timeline.items,
            vec![Span { start: 13, end: 15 }, Span { start: 15, end: 16 }]
        );
        assert_eq!(d.replicas[0].1.text, "8");
        assert_eq!(d.duration.as_ref().unwrap().text, "10m");
    }

    #[test]
    fn render_drops_items_rewrites_numbers_and_keeps_comments() {
        let d = doc();
        let mut e = d.unchanged();
        assert_eq!(d.render(&e), TEXT);
        e.objects[1] = false;
        e.timeline = vec![false, false];
        e.replicas[0] = "1".into();
        e.duration = Some("3m".into());
        let out = d.render(&e);
        assert!(out.contains("duration: 3m   # the horizon\n"), "{out}");
        assert!(out.contains("      replicas: 1\n"));
        assert!(out.contains("  # a second one\n"), "the comment stays");
        assert!(!out.contains("ConfigMap"));
        assert!(out.ends_with("timeline: []\n"), "{out}");
        // What is left still parses, and holds one object.
        let n = parse_documents(&out).unwrap();
        let Value::Seq(objs) = &n[0].get("objects").unwrap().value else {
            panic!()
        };
        assert_eq!(objs.len(), 1);
    }
}
