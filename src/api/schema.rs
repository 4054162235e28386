//! Checking a custom resource against its CRD's `openAPIV3Schema`, as the
//! apiextensions-apiserver does on create and update.
//!
//! The apiserver first prunes (fields the structural schema does not
//! declare are dropped, unless `x-kubernetes-preserve-unknown-fields` keeps
//! them; a null where the schema is not `nullable` is dropped too), then
//! validates what is left. This module does both in one walk over the YAML
//! tree, so every violation points at its line. It covers the structural
//! subset CRDs use: `type`, `nullable`, `properties`, `additionalProperties`,
//! `items`, `required`, `enum`, `minimum`/`maximum` (and their exclusive
//! forms), `minLength`/`maxLength`, `minItems`/`maxItems`,
//! `minProperties`/`maxProperties`, `x-kubernetes-preserve-unknown-fields`,
//! `x-kubernetes-int-or-string` and `x-kubernetes-embedded-resource`.
//! `pattern`, `format` and CEL rules are not checked.

use serde_json::{Map, Value as Json};

use super::yaml::{join_path, Node, Pos, Resolved, Value};

/// One violation, at a field.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaError {
    pub path: String,
    pub pos: Pos,
    pub message: String,
}

/// The pruned object and what checking it found.
#[derive(Debug, Default)]
pub struct Checked {
    /// The object as the apiserver would store it.
    pub value: Map<String, Json>,
    /// Paths of unknown fields pruned.
    pub pruned: Vec<String>,
    pub errors: Vec<SchemaError>,
}

/// Prunes and validates a whole custom resource `doc` against `schema`.
/// `apiVersion`, `kind` and `metadata` are kept as they are: the caller
/// decodes `metadata` as the ObjectMeta every object has.
pub fn check(schema: &Json, doc: &Node) -> Checked {
    let mut out = Checked::default();
    let Value::Map(pairs) = &doc.value else {
        return out;
    };
    let props = schema.get("properties").and_then(Json::as_object);
    let mut path = Vec::new();
    for (k, v) in pairs {
        let key = k.as_str().unwrap_or("");
        if matches!(key, "apiVersion" | "kind" | "metadata") {
            out.value.insert(key.to_string(), v.to_json());
            continue;
        }
        path.push(key.to_string());
        match props.and_then(|p| p.get(key)) {
            Some(sub) => {
                if let Some(j) = walk(sub, v, &mut path, &mut out) {
                    out.value.insert(key.to_string(), j);
                }
            }
            None if preserves_unknown(schema) => {
                out.value.insert(key.to_string(), v.to_json());
            }
            None => out.pruned.push(join_path(&path)),
        }
        path.pop();
    }
    required(schema, doc, &mut path, &mut out);
    out
}

fn preserves_unknown(schema: &Json) -> bool {
    schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Json::Bool(true))
}

fn flag(schema: &Json, name: &str) -> bool {
    schema.get(name) == Some(&Json::Bool(true))
}

fn error(out: &mut Checked, path: &[String], node: &Node, message: String) {
    out.errors.push(SchemaError {
        path: join_path(path),
        pos: node.pos,
        message,
    });
}

/// The JSON type name of a YAML node, as kube-openapi's messages say it.
fn type_of(node: &Node) -> &'static str {
    match node.resolve() {
        Some(Resolved::Null) => "null",
        Some(Resolved::Bool(_)) => "boolean",
        Some(Resolved::Int(_) | Resolved::UInt(_)) => "integer",
        Some(Resolved::Float(_)) => "number",
        Some(Resolved::Str(_)) => "string",
        None => match node.value {
            Value::Seq(_) => "array",
            _ => "object",
        },
    }
}

/// Prunes and checks `node` against `schema`; `None` when it is dropped.
fn walk(schema: &Json, node: &Node, path: &mut Vec<String>, out: &mut Checked) -> Option<Json> {
    let got = type_of(node);
    if got == "null" {
        // Null where the schema is not nullable is pruned before validation.
        return flag(schema, "nullable").then_some(Json::Null);
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !matches!(got, "integer" | "string") {
            let p = join_path(path);
            error(out, path, node, format!("Invalid value: \"{got}\": {p} in body must be of type integer-or-string: \"{got}\""));
        }
        return Some(node.to_json());
    }
    let want = schema.get("type").and_then(Json::as_str).unwrap_or("");
    let fits = match want {
        "" => true,
        "number" => matches!(got, "integer" | "number"),
        w => w == got,
    };
    if !fits {
        let p = join_path(path);
        error(
            out,
            path,
            node,
            format!("Invalid value: \"{got}\": {p} in body must be of type {want}: \"{got}\""),
        );
        return Some(node.to_json());
    }
    let value = match &node.value {
        Value::Map(pairs) if want == "object" || want.is_empty() => {
            object(schema, node, pairs, path, out)
        }
        Value::Seq(items) => array(schema, node, items, path, out),
        _ => node.to_json(),
    };
    scalar_bounds(schema, node, &value, path, out);
    enumerated(schema, node, &value, path, out);
    Some(value)
}

fn object(
    schema: &Json,
    node: &Node,
    pairs: &[(Node, Node)],
    path: &mut Vec<String>,
    out: &mut Checked,
) -> Json {
    let props = schema.get("properties").and_then(Json::as_object);
    let extra = schema.get("additionalProperties");
    let keep_all = preserves_unknown(schema)
        || (props.is_none()
            && extra.is_none()
            && !schema.get("type").is_some_and(|t| t == "object"));
    let embedded = flag(schema, "x-kubernetes-embedded-resource");
    let mut m = Map::new();
    for (k, v) in pairs {
        let key = k.as_str().unwrap_or("").to_string();
        path.push(key.clone());
        let sub = props.and_then(|p| p.get(&key));
        let kept = match (sub, extra) {
            (Some(s), _) => walk(s, v, path, out),
            (None, Some(Json::Bool(true))) => Some(v.to_json()),
            (None, Some(s @ Json::Object(_))) => walk(s, v, path, out),
            _ if keep_all
                || (embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata")) =>
            {
                Some(v.to_json())
            }
            _ => {
                out.pruned.push(join_path(path));
                None
            }
        };
        if let Some(j) = kept {
            m.insert(key, j);
        }
        path.pop();
    }
    required(schema, node, path, out);
    let bounds = ("maxProperties", "minProperties", "properties");
    count_bounds(schema, bounds, m.len() as u64, node, path, out);
    Json::Object(m)
}

/// `maxProperties`/`minProperties` or `maxItems`/`minItems`: `n` members
/// against the schema's bounds, with the apiserver's messages (`what` names
/// the members in the lower bound's message; the upper says "items" for both,
/// as upstream's `TooMany` does).
fn count_bounds(
    schema: &Json,
    (max_key, min_key, what): (&str, &str, &str),
    n: u64,
    node: &Node,
    path: &[String],
    out: &mut Checked,
) {
    if let Some(max) = schema
        .get(max_key)
        .and_then(Json::as_u64)
        .filter(|&x| n > x)
    {
        let msg = format!("Too many: {n}: must have at most {max} items");
        error(out, path, node, msg);
    }
    if let Some(min) = schema
        .get(min_key)
        .and_then(Json::as_u64)
        .filter(|&x| n < x)
    {
        let p = join_path(path);
        let msg = format!("Invalid value: {n}: {p} in body should have at least {min} {what}");
        error(out, path, node, msg);
    }
}

fn array(
    schema: &Json,
    node: &Node,
    items: &[Node],
    path: &mut Vec<String>,
    out: &mut Checked,
) -> Json {
    let item_schema = schema.get("items");
    let mut a = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        path.push(format!("[{i}]"));
        match item_schema {
            Some(s) => a.extend(walk(s, item, path, out)),
            None => a.push(item.to_json()),
        }
        path.pop();
    }
    let bounds = ("maxItems", "minItems", "items");
    count_bounds(schema, bounds, items.len() as u64, node, path, out);
    Json::Array(a)
}

/// `required`: every listed property present (a null counts as absent
/// once pruned, as upstream prunes before validating).
fn required(schema: &Json, node: &Node, path: &mut Vec<String>, out: &mut Checked) {
    let Some(req) = schema.get("required").and_then(Json::as_array) else {
        return;
    };
    for name in req.iter().filter_map(Json::as_str) {
        let present = node.get(name).is_some_and(|v| !v.is_null());
        if !present {
            path.push(name.to_string());
            error(out, path, node, "Required value".into());
            path.pop();
        }
    }
}

fn scalar_bounds(schema: &Json, node: &Node, value: &Json, path: &[String], out: &mut Checked) {
    let p = join_path(path);
    if let Some(x) = value.as_f64() {
        let shown = value.to_string();
        if let Some(min) = schema.get("minimum").and_then(Json::as_f64) {
            let exclusive = flag(schema, "exclusiveMinimum");
            if x < min || (exclusive && x == min) {
                let rel = if exclusive {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                error(
                    out,
                    path,
                    node,
                    format!(
                        "Invalid value: {shown}: {p} in body should be {rel} {}",
                        schema["minimum"]
                    ),
                );
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Json::as_f64) {
            let exclusive = flag(schema, "exclusiveMaximum");
            if x > max || (exclusive && x == max) {
                let rel = if exclusive {
                    "less than"
                } else {
                    "less than or equal to"
                };
                error(
                    out,
                    path,
                    node,
                    format!(
                        "Invalid value: {shown}: {p} in body should be {rel} {}",
                        schema["maximum"]
                    ),
                );
            }
        }
    }
    if let Some(s) = value.as_str() {
        let n = s.chars().count() as u64;
        if let Some(max) = schema
            .get("maxLength")
            .and_then(Json::as_u64)
            .filter(|&m| n > m)
        {
            error(
                out,
                path,
                node,
                format!("Too long: may not be more than {max} bytes"),
            );
        }
        if let Some(min) = schema
            .get("minLength")
            .and_then(Json::as_u64)
            .filter(|&m| n < m)
        {
            error(
                out,
                path,
                node,
                format!("Invalid value: \"{s}\": {p} in body should be at least {min} chars long"),
            );
        }
    }
}

fn enumerated(schema: &Json, node: &Node, value: &Json, path: &[String], out: &mut Checked) {
    let Some(allowed) = schema.get("enum").and_then(Json::as_array) else {
        return;
    };
    if !allowed.contains(value) {
        let list: Vec<String> = allowed.iter().map(Json::to_string).collect();
        error(
            out,
            path,
            node,
            format!(
                "Unsupported value: {value}: supported values: {}",
                list.join(", ")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::yaml::parse_documents;

    fn run(schema: &str, doc: &str) -> Checked {
        let schema = parse_documents(schema).unwrap()[0].to_json();
        let doc = &parse_documents(doc).unwrap()[0];
        check(&schema, doc)
    }

    const SCHEMA: &str = r#"
type: object
required: [spec]
properties:
  spec:
    type: object
    required: [size]
    properties:
      size: {type: integer, minimum: 1, maximum: 10}
      mode: {type: string, enum: [Fast, Safe]}
      port: {x-kubernetes-int-or-string: true}
      tags: {type: array, maxItems: 2, items: {type: string}}
      labels: {type: object, additionalProperties: {type: string}}
      extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
      note: {type: string, nullable: true}
"#;

    #[test]
    fn item_and_property_counts_are_bounded_with_upstreams_messages() {
        let schema = "type: object\nproperties:\n  tags: {type: array, minItems: 2, maxItems: 3, items: {type: string}}\n  labels: {type: object, minProperties: 2, maxProperties: 3, additionalProperties: {type: string}}\n";
        let few = run(schema, "tags: [a]\nlabels: {a: b}\n");
        let msgs: Vec<&str> = few.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "Invalid value: 1: tags in body should have at least 2 items",
                "Invalid value: 1: labels in body should have at least 2 properties",
            ]
        );
        let many = run(
            schema,
            "tags: [a, b, c, d]\nlabels: {a: b, c: d, e: f, g: h}\n",
        );
        let msgs: Vec<&str> = many.errors.iter().map(|e| e.message.as_str()).collect();
        // upstream's TooMany says "items" for properties too.
        assert_eq!(
            msgs,
            [
                "Too many: 4: must have at most 3 items",
                "Too many: 4: must have at most 3 items"
            ]
        );
    }

    #[test]
    fn a_valid_resource_is_kept_and_unknown_fields_are_pruned() {
        let c = run(
            SCHEMA,
            "apiVersion: x/v1\nkind: X\nmetadata: {name: a}\nspec:\n  size: 3\n  mode: Safe\n  port: http\n  colour: red\n  extra: {anything: {goes: 1}}\n  labels: {a: b}\n  note: null\n  tags: null\nstray: 1\n",
        );
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        // Two fields the schema does not declare: spec.colour and the root's stray.
        assert_eq!(
            c.pruned,
            vec!["spec.colour".to_string(), "stray".to_string()]
        );
        let spec = &c.value["spec"];
        assert_eq!(
            spec["extra"]["anything"]["goes"], 1,
            "preserve-unknown keeps the subtree"
        );
        // `note` is nullable and keeps its null; `tags` is not and is pruned.
        assert!(spec.as_object().unwrap().contains_key("note"));
        assert!(!spec.as_object().unwrap().contains_key("tags"));
        assert!(c.value.contains_key("metadata"));
    }

    #[test]
    fn every_violation_comes_back_at_its_line() {
        let c = run(
            SCHEMA,
            "apiVersion: x/v1\nkind: X\nmetadata: {name: a}\nspec:\n  size: \"3\"\n  mode: Quick\n  port: [1]\n  tags: [a, b, c]\n  labels: {a: 1}\n",
        );
        let got: Vec<(String, u32)> = c
            .errors
            .iter()
            .map(|e| (e.path.clone(), e.pos.line))
            .collect();
        // size is a string (line 5), mode not in the enum (6), port neither
        // int nor string (7), tags over maxItems 2 (8), a label not a string (9).
        assert_eq!(
            got,
            vec![
                ("spec.size".to_string(), 5),
                ("spec.mode".to_string(), 6),
                ("spec.port".to_string(), 7),
                ("spec.tags".to_string(), 8),
                ("spec.labels.a".to_string(), 9),
            ]
        );
        assert!(
            c.errors[0].message.contains("must be of type integer"),
            "{}",
            c.errors[0].message
        );
        assert!(c.errors[1]
            .message
            .contains("supported values: \"Fast\", \"Safe\""));
    }

    #[test]
    fn bounds_and_required_fields() {
        let c = run(
            SCHEMA,
            "apiVersion: x/v1\nkind: X\nmetadata: {name: a}\nspec:\n  size: 11\n",
        );
        assert_eq!(c.errors.len(), 1);
        assert_eq!(
            c.errors[0].message,
            "Invalid value: 11: spec.size in body should be less than or equal to 10"
        );
        let c = run(
            SCHEMA,
            "apiVersion: x/v1\nkind: X\nmetadata: {name: a}\nspec: {mode: Fast}\n",
        );
        assert_eq!(c.errors[0].path, "spec.size");
        assert_eq!(c.errors[0].message, "Required value");
        let c = run(SCHEMA, "apiVersion: x/v1\nkind: X\nmetadata: {name: a}\n");
        assert_eq!(c.errors[0].path, "spec");
    }
}
