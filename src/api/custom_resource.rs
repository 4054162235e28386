//! Decoding a custom resource: its kind from the CRD that serves it, its
//! `metadata` as every object's, the rest pruned and checked against the
//! served version's schema. Nothing in kubesim reconciles custom resources:
//! they are stored, listed and watched as the apiserver keeps them.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value as Json};

use super::crd::Lookup;
use super::kinds::Kind;
use super::manifest::{validate_dns_name, FieldReport, LoadError};
use super::object::{Body, Meta, Object};
use super::schema;
use super::yaml::{from_node, join_path, Node};

/// Decodes `doc`, a `kind_name` at `api_version` that is not a built-in kind.
pub fn decode(
    file: &str,
    doc: &Node,
    api_version: &str,
    kind_name: &str,
    report: &mut FieldReport,
) -> Result<Object, Vec<LoadError>> {
    let kind_pos = doc.get("kind").map(|n| n.pos);
    let (entry, version) = match report.crds.lookup(api_version, kind_name) {
        Lookup::Found(e, v) => (e.clone(), v.clone()),
        Lookup::NotServed(e) => {
            let served: Vec<&str> = e
                .versions
                .iter()
                .filter(|v| v.served)
                .map(|v| v.name.as_str())
                .collect();
            return Err(vec![LoadError::new(
                file,
                kind_pos,
                "apiVersion",
                format!(
                    "no matches for kind \"{kind_name}\" in version \"{api_version}\": CustomResourceDefinition {} serves {}",
                    e.name,
                    served.join(", ")
                ),
            )]);
        }
        Lookup::Missing => {
            let builtin: Vec<&str> = super::kinds::KINDS.iter().map(|k| k.name).collect();
            let why = match super::yaml::closest(kind_name, &builtin) {
                Some(s) => format!("did you mean \"{s}\"?"),
                None => "ensure CRDs are installed first (no CustomResourceDefinition in the input defines it)".into(),
            };
            return Err(vec![LoadError::new(
                file,
                kind_pos,
                "kind",
                format!("no matches for kind \"{kind_name}\" in version \"{api_version}\": {why}"),
            )]);
        }
    };
    let kind = Kind::Custom(entry.kind);
    let mut errors = Vec::new();
    let meta = metadata(file, doc, kind, &mut errors);
    let checked = match &version.schema {
        Some(s) => schema::check(s, doc),
        None => schema::check(
            &serde_json::json!({"x-kubernetes-preserve-unknown-fields": true}),
            doc,
        ),
    };
    for e in &checked.errors {
        errors.push(LoadError::new(
            file,
            Some(e.pos),
            e.path.clone(),
            e.message.clone(),
        ));
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.pos);
        return Err(errors);
    }
    if !checked.pruned.is_empty() {
        report
            .pruned
            .entry(kind_name.to_string())
            .or_default()
            .extend(checked.pruned.iter().cloned());
    }
    if version.name
        != entry
            .kind
            .info()
            .api_version
            .rsplit('/')
            .next()
            .unwrap_or("")
    {
        report.converted.insert(format!(
            "{kind_name}: read at {api_version}, stored at {} (CRD conversion None: only apiVersion changes)",
            entry.kind.info().api_version
        ));
    }
    let meta = meta.expect("no errors, so metadata decoded");
    Ok(object(kind, meta, checked.value))
}

fn metadata(file: &str, doc: &Node, kind: Kind, errors: &mut Vec<LoadError>) -> Option<Meta> {
    let m: ObjectMeta = match doc.get("metadata") {
        None => ObjectMeta::default(),
        Some(node) => {
            let mut unknown = Vec::new();
            let decoded = from_node::<ObjectMeta>(node, &mut unknown);
            for u in &unknown {
                let path = format!("metadata.{}", join_path(&u.path));
                errors.push(LoadError::new(
                    file,
                    Some(u.pos),
                    path,
                    format!("unknown field \"{}\" in ObjectMeta", u.field),
                ));
            }
            match decoded {
                Ok(m) => m,
                Err(e) => {
                    errors.push(LoadError::new(
                        file,
                        e.pos,
                        format!("metadata.{}", e.path_string()),
                        e.message,
                    ));
                    return None;
                }
            }
        }
    };
    let mut meta = Meta::from_api(&m);
    if kind.namespaced() {
        if meta.namespace.is_empty() {
            meta.namespace = "default".into();
        }
    } else {
        meta.namespace.clear();
    }
    let pos = doc.get("metadata").map(|n| n.pos).or(Some(doc.pos));
    if meta.name.is_empty() && meta.generate_name.is_empty() {
        errors.push(LoadError::new(
            file,
            pos,
            "metadata.name",
            "Required value: name or generateName is required",
        ));
    } else if let Err(why) = Some(&meta.name)
        .filter(|n| !n.is_empty())
        .map_or(Ok(()), |n| validate_dns_name(n, false))
    {
        errors.push(LoadError::new(
            file,
            pos,
            "metadata.name",
            format!("Invalid value: \"{}\": {why}", meta.name),
        ));
    }
    Some(meta)
}

fn object(kind: Kind, meta: Meta, mut value: Map<String, Json>) -> Object {
    for k in ["apiVersion", "kind", "metadata"] {
        value.remove(k);
    }
    Object {
        kind,
        meta,
        body: Body::Json(Arc::new(value)),
    }
}

/// Reads a patched custom resource back from its JSON (the apiserver has no
/// manifest registry; the kind is the stored object's).
pub fn from_json(kind: Kind, json: &Json) -> Result<Object, String> {
    let m: ObjectMeta = serde_json::from_value(json.get("metadata").cloned().unwrap_or(Json::Null))
        .map_err(|e| format!("metadata: {e}"))?;
    let mut meta = Meta::from_api(&m);
    if !kind.namespaced() {
        meta.namespace.clear();
    }
    let body = json.as_object().cloned().unwrap_or_default();
    Ok(object(kind, meta, body))
}
