//! Bare Pods decoded once per shape: a timeline of 150,000 `apply:` entries
//! that differ only in `metadata.name` (issue 18) decodes the first through
//! k8s-openapi and the pod model, and every later one as a copy of it with
//! its own name, sharing the decoded spec (`Arc<PodSpecModel>`).
//!
//! This is only a short cut when it gives what decoding gives: a Pod's
//! decoding reads nothing but the document's content (scalar texts and
//! styles, keys, nesting; positions only go into errors) and the name
//! flows only into `meta.name` and the name's validation, which is run
//! again for each name. Only documents that decoded without an error are
//! remembered, so every error is still found, located, by decoding.

use std::collections::BTreeMap;

use crate::api::manifest::{check_object_name, decode_object, FieldReport, LoadError};
use crate::api::object::Object;
use crate::api::yaml::{Node, Value};

/// How many shapes are remembered: enough for any hand-written timeline,
/// and a bound on what a timeline of all-different pods costs on top
/// (one key and one object per shape).
const MAX_SHAPES: usize = 256;

/// Decoded Pods by their document's content less `metadata.name`.
#[derive(Default)]
pub(super) struct PodMemo {
    by_shape: BTreeMap<String, Object>,
}

impl PodMemo {
    /// [`decode_object`], answered from a remembered Pod of the same shape
    /// when there is one.
    pub(super) fn decode(
        &mut self,
        file: &str,
        item: &Node,
        report: &mut FieldReport,
    ) -> Result<Vec<Object>, Vec<LoadError>> {
        let Some((key, name)) = shape_of(item) else {
            return decode_object(file, item, report);
        };
        if let Some(seen) = self.by_shape.get(&key) {
            let mut o = seen.clone();
            o.meta.name = name.to_string();
            // A name that does not validate is decoded for its located error.
            if check_object_name(&o.meta, o.kind).is_ok() {
                // The report's other entries (fields not simulated) are
                // sets the first decoding of this content already filled.
                report.count(&o);
                return Ok(vec![o]);
            }
        }
        let objs = decode_object(file, item, report)?;
        if let [o] = objs.as_slice() {
            if self.by_shape.len() < MAX_SHAPES {
                self.by_shape.insert(key, o.clone());
            }
        }
        Ok(objs)
    }
}

/// The content key of a `v1` Pod document with a string `metadata.name`,
/// and that name; `None` for anything else (decoded as it is).
fn shape_of(item: &Node) -> Option<(String, &str)> {
    let is = |key: &str, want: &str| matches!(item.get(key).map(|n| &n.value), Some(Value::Scalar { text, .. }) if text == want);
    if !(is("apiVersion", "v1") && is("kind", "Pod")) {
        return None;
    }
    let name_node = item.get("metadata")?.get("name")?;
    let name = match name_node.resolve()? {
        crate::api::yaml::Resolved::Str(s) => s,
        _ => return None,
    };
    // Room for a typical pod's shape (about 400 bytes) without regrowing.
    let mut key = String::with_capacity(512);
    write_shape(item, Some(name_node), &mut key);
    Some((key, name))
}

/// Writes `node`'s content (no positions) unambiguously: every scalar with
/// its style and length, lists and mappings bracketed. `skip` (the name's
/// node) is written as a placeholder.
fn write_shape(node: &Node, skip: Option<&Node>, out: &mut String) {
    use std::fmt::Write;
    if skip.is_some_and(|s| std::ptr::eq(s, node)) {
        out.push('N');
        return;
    }
    match &node.value {
        Value::Scalar { text, plain } => {
            let _ = write!(
                out,
                "{}{}:{text}",
                if *plain { 'p' } else { 'q' },
                text.len()
            );
        }
        Value::Seq(items) => {
            out.push('[');
            items.iter().for_each(|i| write_shape(i, skip, out));
            out.push(']');
        }
        Value::Map(pairs) => {
            out.push('{');
            for (k, v) in pairs {
                write_shape(k, skip, out);
                write_shape(v, skip, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::yaml::parse_documents;

    fn doc(text: &str) -> Node {
        parse_documents(text).unwrap().remove(0)
    }

    #[test]
    fn pods_differing_only_in_name_share_a_shape_and_style_counts() {
        let a = doc("{apiVersion: v1, kind: Pod, metadata: {name: a}, spec: {containers: [{name: c, image: i}]}}");
        let b = doc("{apiVersion: v1, kind: Pod, metadata: {name: b}, spec: {containers: [{name: c, image: i}]}}");
        // `image: "i"` is the same JSON but a quoted scalar: not the same shape.
        let c = doc("{apiVersion: v1, kind: Pod, metadata: {name: b}, spec: {containers: [{name: c, image: \"i\"}]}}");
        let (ka, na) = shape_of(&a).unwrap();
        let (kb, nb) = shape_of(&b).unwrap();
        let (kc, _) = shape_of(&c).unwrap();
        assert_eq!((na, nb), ("a", "b"));
        assert_eq!(ka, kb);
        assert_ne!(ka, kc);
        // A number as the name is decoded (and refused) as it is.
        assert!(shape_of(&doc("{apiVersion: v1, kind: Pod, metadata: {name: 7}}")).is_none());
    }

    #[test]
    fn a_remembered_shape_gives_what_decoding_gives_and_bad_names_still_fail() {
        let text = |name: &str| {
            format!("{{apiVersion: v1, kind: Pod, metadata: {{name: {name}}}, spec: {{containers: [{{name: c, image: i}}]}}}}")
        };
        let mut memo = PodMemo::default();
        let mut report = FieldReport::default();
        let first = memo.decode("f", &doc(&text("p-0")), &mut report).unwrap();
        let hit = memo.decode("f", &doc(&text("p-1")), &mut report).unwrap();
        let fresh = decode_object("f", &doc(&text("p-1")), &mut FieldReport::default()).unwrap();
        assert_eq!(first[0].meta.name, "p-0");
        assert_eq!(hit, fresh);
        // `Bad_Name` is no RFC 1123 subdomain: the error decoding gives.
        let bad = memo
            .decode("f", &doc(&text("Bad_Name")), &mut report)
            .unwrap_err();
        let fresh_bad =
            decode_object("f", &doc(&text("Bad_Name")), &mut FieldReport::default()).unwrap_err();
        assert_eq!(bad, fresh_bad);
        assert_eq!(bad[0].field, "metadata.name");
    }
}
