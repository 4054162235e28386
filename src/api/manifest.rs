//! Reading real Kubernetes manifests into [`Object`]s, strictly.
//!
//! Every document is decoded into its `k8s-openapi` type, so it parses exactly
//! as Kubernetes defines it; fields the type does not know are errors, as under
//! `kubectl apply --validate=strict`. Older API versions are converted where
//! the shape did not change and refused with advice where it did. Fields that
//! Kubernetes defines but kubesim does not simulate are accepted and reported
//! once per kind and path in a [`FieldReport`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
use serde_json::Value as Json;

use super::kinds::{resolve_version, Kind, VersionVerdict};
use super::lease::LeaseBody;
use super::node::NodeBody;
use super::object::{Body, Meta, Object};
use super::pod::{PodBody, PodSpecModel};
use super::yaml::{self, from_node, join_path, DeError, Node, Pos, Value};

/// An error in an input file, pointing at the place to fix.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub file: String,
    pub pos: Option<Pos>,
    /// Field path from the document root, empty for syntax errors.
    pub field: String,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(f, "{}:{}:{}: ", self.file, p.line, p.col)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

impl LoadError {
    pub fn new(
        file: &str,
        pos: Option<Pos>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        LoadError {
            file: file.to_string(),
            pos,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A container's process fields: a simulated container has no process, a
/// live one runs them (`live::pod_spec`).
fn live_runs(path: &str) -> bool {
    [
        "containers[].command",
        "containers[].args",
        "containers[].env",
    ]
    .iter()
    .any(|f| path.ends_with(f))
}

/// What loading noticed besides errors: conversions made and fields that are
/// accepted but not simulated. Reported once per (kind, path).
#[derive(Debug, Default, Clone)]
pub struct FieldReport {
    pub converted: BTreeSet<String>,
    pub not_simulated: BTreeMap<String, BTreeSet<String>>,
    /// Objects of kinds no component acts on, by kind: stored and watched
    /// as the apiserver stores them.
    pub stored: BTreeMap<String, usize>,
    /// Custom resources by kind (with the version they are stored at).
    pub custom: BTreeMap<String, (String, usize)>,
    /// Unknown fields of custom resources pruned, by kind.
    pub pruned: BTreeMap<String, BTreeSet<String>>,
    /// The CustomResourceDefinitions read so far: what custom resources are
    /// decoded against.
    pub crds: super::crd::Registry,
}

impl FieldReport {
    /// Human lines for the summary.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self.converted.iter().cloned().collect();
        for (kind, paths) in &self.not_simulated {
            let (live, rest): (Vec<&str>, Vec<&str>) =
                paths.iter().map(String::as_str).partition(|p| live_runs(p));
            if !rest.is_empty() {
                out.push(format!(
                    "{kind}: accepted, not simulated: {}",
                    rest.join(", ")
                ));
            }
            if !live.is_empty() {
                out.push(format!(
                    "{kind}: not simulated, run by `kubesim live`: {}",
                    live.join(", ")
                ));
            }
        }
        if !self.stored.is_empty() {
            let list: Vec<String> = self
                .stored
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            out.push(format!("stored, not simulated: {}", list.join(", ")));
        }
        for (kind, (version, n)) in &self.custom {
            out.push(format!(
                "{kind} ({version}): {n} custom resource{} stored; nothing reconciles them (their controller is not simulated)",
                if *n == 1 { "" } else { "s" }
            ));
        }
        for (kind, paths) in &self.pruned {
            let list: Vec<&str> = paths.iter().map(String::as_str).collect();
            out.push(format!(
                "{kind}: unknown fields pruned, as the apiserver prunes them: {}",
                list.join(", ")
            ));
        }
        out
    }

    /// Counts an object loaded of a kind no component acts on.
    pub(crate) fn count(&mut self, o: &Object) {
        match o.kind {
            Kind::Custom(c) => {
                let e = self
                    .custom
                    .entry(c.info().kind.clone())
                    .or_insert_with(|| (c.info().api_version.clone(), 0));
                e.1 += 1;
            }
            k if !k.simulated() => *self.stored.entry(k.name().to_string()).or_default() += 1,
            _ => {}
        }
    }
}

/// Parses every YAML document of `file`, a syntax error becoming a [`LoadError`].
pub fn parse_yaml(file: &str, text: &str) -> Result<Vec<Node>, Vec<LoadError>> {
    yaml::parse_documents(text).map_err(|e| {
        vec![LoadError::new(
            file,
            Some(e.pos),
            "",
            format!("YAML syntax error: {}", e.message),
        )]
    })
}

/// Parses a YAML stream of manifests from `file`.
pub fn load_manifests(
    file: &str,
    text: &str,
    report: &mut FieldReport,
) -> Result<Vec<Object>, Vec<LoadError>> {
    let docs = parse_yaml(file, text)?;
    // CRDs first, as `helm install` applies `crds/` before the templates.
    report.crds.scan(&docs);
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for doc in &docs {
        match decode_object(file, doc, report) {
            Ok(mut objs) => out.append(&mut objs),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn scalar_field<'a>(file: &str, doc: &'a Node, key: &str) -> Result<&'a str, LoadError> {
    match doc.get(key) {
        None => Err(LoadError::new(
            file,
            Some(doc.pos),
            key,
            format!("Required value: `{key}` must be set"),
        )),
        Some(n) => match n.resolve() {
            Some(yaml::Resolved::Str(s)) if !s.is_empty() => Ok(s),
            _ => Err(LoadError::new(
                file,
                Some(n.pos),
                key,
                format!("expected a string, found {}", n.describe()),
            )),
        },
    }
}

/// Decodes one document. A `List` (`kind: List`, `v1`) yields its items.
pub fn decode_object(
    file: &str,
    doc: &Node,
    report: &mut FieldReport,
) -> Result<Vec<Object>, Vec<LoadError>> {
    if !matches!(doc.value, Value::Map(_)) {
        return Err(vec![LoadError::new(
            file,
            Some(doc.pos),
            "",
            format!(
                "a manifest must be a mapping with apiVersion and kind, found {}",
                doc.describe()
            ),
        )]);
    }
    let api_version = scalar_field(file, doc, "apiVersion").map_err(|e| vec![e])?;
    let kind_name = scalar_field(file, doc, "kind").map_err(|e| vec![e])?;
    if kind_name == "List" && api_version == "v1" {
        let mut out = Vec::new();
        let mut errs = Vec::new();
        if let Some(Node {
            value: Value::Seq(items),
            ..
        }) = doc.get("items")
        {
            for item in items {
                match decode_object(file, item, report) {
                    Ok(mut o) => out.append(&mut o),
                    Err(mut e) => errs.append(&mut e),
                }
            }
        }
        return if errs.is_empty() { Ok(out) } else { Err(errs) };
    }
    let kind_pos = doc.get("kind").map(|n| n.pos);
    if kind_name == "KubeSchedulerConfiguration" {
        return Err(vec![LoadError::new(
            file,
            kind_pos,
            "kind",
            "a KubeSchedulerConfiguration configures kube-scheduler and is not an API object: put it under `cluster.scheduler.config` in a scenario (an explain snapshot may hold one)",
        )]);
    }
    if Kind::from_name(kind_name).is_none() && kind_name != "PodSecurityPolicy" {
        let o = super::custom_resource::decode(file, doc, api_version, kind_name, report)?;
        report.count(&o);
        return Ok(vec![o]);
    }
    let (kind, converted_doc) = match resolve_version(api_version, kind_name) {
        VersionVerdict::Served(k) => (k, None),
        VersionVerdict::Converted {
            kind,
            from,
            dropped,
        } => {
            report.converted.insert(format!(
                "{kind_name}: converted from {from} to {}{}",
                kind.api_version(),
                if dropped.is_empty() {
                    String::new()
                } else {
                    format!(" (dropping {})", dropped.join(", "))
                }
            ));
            (kind, Some(convert_document(doc, kind, dropped)))
        }
        VersionVerdict::Refused(why) => {
            return Err(vec![LoadError::new(
                file,
                kind_pos,
                "apiVersion",
                format!("{api_version} {kind_name} is refused: {why}"),
            )])
        }
        VersionVerdict::Unknown(why) => {
            return Err(vec![LoadError::new(file, kind_pos, "kind", why)])
        }
    };
    let doc = converted_doc.as_ref().unwrap_or(doc);
    let aliased = alias_fields(doc, report);
    let doc = aliased.as_ref().unwrap_or(doc);
    let (object, mut errors) = decode_all_errors(file, kind, api_version, kind_name, doc);
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.pos);
        return Err(errors);
    }
    let object = object.expect("decoded without errors");
    if kind == Kind::CustomResourceDefinition {
        register_crd(file, doc, report)?;
    }
    note_unsimulated(kind, doc, report);
    report.count(&object);
    Ok(vec![object])
}

/// The most rounds [`decode_all_errors`] takes over one document.
const MAX_ROUNDS: usize = 16;

/// Decodes `doc`, collecting every error it can in one pass: typed decoding
/// and validation stop at the first bad field, so each round removes that
/// field and decodes again, until the document decodes or a round reports
/// a missing required value (which may only be the removal's doing).
fn decode_all_errors(
    file: &str,
    kind: Kind,
    api_version: &str,
    kind_name: &str,
    doc: &Node,
) -> (Option<Object>, Vec<LoadError>) {
    let mut errors: Vec<LoadError> = Vec::new();
    let mut work: Option<Node> = None;
    for round in 0..MAX_ROUNDS {
        let cur = work.as_ref().unwrap_or(doc);
        let mut unknown = Vec::new();
        let decoded = decode_typed(kind, api_version, cur, &mut unknown).and_then(|o| {
            super::workload_validation::check(&o).map_err(|(p, m)| Failure::Invalid(p, m))?;
            Ok(o)
        });
        for u in &unknown {
            let hint = u
                .suggestion
                .as_ref()
                .map(|s| format!(" (did you mean \"{s}\"?)"))
                .unwrap_or_default();
            let e = LoadError::new(
                file,
                Some(u.pos),
                join_path(&u.path),
                format!("unknown field \"{}\" in {kind_name}{hint}", u.field),
            );
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
        let (path, e) = match decoded {
            Ok(o) => return (errors.is_empty().then_some(o), errors),
            Err(Failure::Decode(e)) => {
                let path = e.path_string();
                (path.clone(), LoadError::new(file, e.pos, path, e.message))
            }
            Err(Failure::Invalid(path, msg)) => {
                let pos = node_at(cur, &path).map(|n| n.pos).or(Some(cur.pos));
                (path.clone(), LoadError::new(file, pos, path, msg))
            }
        };
        let maybe_ours = round > 0
            && (e.message.contains("missing field") || e.message.starts_with("Required value"));
        if maybe_ours || errors.iter().any(|x| x.field == e.field) {
            break;
        }
        errors.push(e);
        let mut next = cur.clone();
        if path.is_empty() || !remove_at(&mut next, &path) {
            break;
        }
        work = Some(next);
    }
    (None, errors)
}

/// Removes the field at `path` (as [`node_at`] reads it); false if absent
/// or a list item.
pub fn remove_at(doc: &mut Node, path: &str) -> bool {
    let (parent, last) = match path.rfind('.') {
        Some(i) if !path[i..].contains('[') => (&path[..i], &path[i + 1..]),
        None if !path.contains('[') => ("", path),
        _ => match path.rfind('[') {
            Some(i) => (&path[..i], &path[i..]),
            None => return false,
        },
    };
    let Some(parent) = node_at_mut(doc, parent) else {
        return false;
    };
    match (&mut parent.value, last.strip_prefix('[')) {
        // A list item is not removed: later items' indices would shift.
        (Value::Seq(_), Some(_)) => false,
        (Value::Map(pairs), None) => {
            let before = pairs.len();
            pairs.retain(|(k, _)| k.as_str() != Some(last));
            pairs.len() < before
        }
        _ => false,
    }
}

fn node_at_mut<'a>(doc: &'a mut Node, path: &str) -> Option<&'a mut Node> {
    let mut cur = doc;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, indices) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            cur = match &mut cur.value {
                Value::Map(pairs) => pairs
                    .iter_mut()
                    .find(|(k, _)| k.as_str() == Some(key))
                    .map(|(_, v)| v)?,
                _ => return None,
            };
        }
        for idx in indices.split('[').filter(|s| !s.is_empty()) {
            let i: usize = idx.trim_end_matches(']').parse().ok()?;
            cur = match &mut cur.value {
                Value::Seq(items) => items.get_mut(i)?,
                _ => return None,
            };
        }
    }
    Some(cur)
}

/// Registers a decoded CRD, or says what the apiserver's CRD validation
/// would refuse, at its line.
fn register_crd(file: &str, doc: &Node, report: &mut FieldReport) -> Result<(), Vec<LoadError>> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crd: CustomResourceDefinition = from_node(doc, &mut Vec::new())
        .map_err(|e| vec![LoadError::new(file, e.pos, e.path_string(), e.message)])?;
    report
        .crds
        .register(&crd)
        .map(|_| ())
        .map_err(|(path, msg)| {
            let pos = node_at(doc, &path).map(|n| n.pos).or(Some(doc.pos));
            vec![LoadError::new(file, pos, path, msg)]
        })
}

enum Failure {
    Decode(DeError),
    Invalid(String, String),
}

impl From<DeError> for Failure {
    fn from(e: DeError) -> Self {
        Failure::Decode(e)
    }
}

/// Rewrites an older-version document into the served version's shape.
fn convert_document(doc: &Node, kind: Kind, dropped: &[&str]) -> Node {
    let mut json = doc.to_json();
    json["apiVersion"] = Json::String(kind.api_version().to_string());
    for path in dropped {
        if let Some(field) = path.strip_prefix("spec.") {
            if let Some(spec) = json.get_mut("spec").and_then(Json::as_object_mut) {
                spec.remove(field);
            }
        }
    }
    // Old workload versions defaulted the selector from the template's labels.
    if matches!(
        kind,
        Kind::Deployment | Kind::DaemonSet | Kind::ReplicaSet | Kind::StatefulSet
    ) && json["spec"].get("selector").is_none()
    {
        if let Some(labels) = json["spec"]["template"]["metadata"].get("labels").cloned() {
            json["spec"]["selector"] = serde_json::json!({"matchLabels": labels});
        }
    }
    // policy/v1beta1 read an empty selector as selecting no pods; policy/v1
    // reads it as selecting all. Keep the old meaning: a null selector.
    if kind == Kind::PodDisruptionBudget
        && json["spec"]
            .get("selector")
            .and_then(Json::as_object)
            .is_some_and(|m| {
                m.values().all(|v| {
                    v.is_null()
                        || v.as_object().is_some_and(|o| o.is_empty())
                        || v.as_array().is_some_and(|a| a.is_empty())
                })
            })
    {
        if let Some(spec) = json.get_mut("spec").and_then(Json::as_object_mut) {
            spec.remove("selector");
        }
    }
    // Re-attach positions: keep the original tree where the shape is unchanged.
    let mut node = Node::from_json(&json, doc.pos);
    copy_positions(doc, &mut node);
    node
}

fn copy_positions(from: &Node, to: &mut Node) {
    to.pos = from.pos;
    match (&from.value, &mut to.value) {
        (Value::Map(a), Value::Map(b)) => {
            for (k, v) in b.iter_mut() {
                if let Some((ka, va)) = a.iter().find(|(ka, _)| ka.as_str() == k.as_str()) {
                    k.pos = ka.pos;
                    copy_positions(va, v);
                }
            }
        }
        (Value::Seq(a), Value::Seq(b)) => {
            for (x, y) in a.iter().zip(b.iter_mut()) {
                copy_positions(x, y);
            }
        }
        _ => {}
    }
}

/// Field spellings that Kubernetes' own documentation uses but the API does
/// not: read as the API's field, and reported. `restartPolicyRules[].onExit.exitCodes`
/// appears in the RestartAllContainers example; the API (through 1.36) has
/// `restartPolicyRules[].exitCodes`.
fn alias_fields(doc: &Node, report: &mut FieldReport) -> Option<Node> {
    fn fix(v: &mut Json, hits: &mut u32) {
        match v {
            Json::Object(m) => {
                if let Some(Json::Array(rules)) = m.get_mut("restartPolicyRules") {
                    for rule in rules.iter_mut() {
                        if let Some(obj) = rule.as_object_mut() {
                            let lifted =
                                obj.get("onExit").and_then(|o| o.get("exitCodes")).cloned();
                            if let Some(codes) = lifted {
                                if !obj.contains_key("exitCodes") {
                                    obj.remove("onExit");
                                    obj.insert("exitCodes".into(), codes);
                                    *hits += 1;
                                }
                            }
                        }
                    }
                }
                for (_, x) in m.iter_mut() {
                    fix(x, hits);
                }
            }
            Json::Array(a) => a.iter_mut().for_each(|x| fix(x, hits)),
            _ => {}
        }
    }
    let mut json = doc.to_json();
    let mut hits = 0;
    fix(&mut json, &mut hits);
    if hits == 0 {
        return None;
    }
    report.converted.insert(
        "Pod: restartPolicyRules[].onExit.exitCodes read as restartPolicyRules[].exitCodes (the API's field)".into(),
    );
    let mut node = Node::from_json(&json, doc.pos);
    copy_positions(doc, &mut node);
    Some(node)
}

/// Finds the node at a field path like `spec.containers[0].image`. A key
/// may itself hold dots (`metadata.annotations.kubesim.io/run-for`,
/// `cluster.images.busybox:1.36`): the shortest key that leads to the rest
/// of the path wins.
pub fn node_at<'a>(doc: &'a Node, path: &str) -> Option<&'a Node> {
    let parts: Vec<&str> = path.split('.').filter(|p| !p.is_empty()).collect();
    node_at_parts(doc, &parts)
}

fn node_at_parts<'a>(cur: &'a Node, parts: &[&str]) -> Option<&'a Node> {
    if parts.is_empty() {
        return Some(cur);
    }
    (1..=parts.len()).find_map(|j| {
        let segment = parts[..j].join(".");
        let next = path_step(cur, &segment)?;
        node_at_parts(next, &parts[j..])
    })
}

/// One `key[0][1]` step of a field path.
fn path_step<'a>(cur: &'a Node, segment: &str) -> Option<&'a Node> {
    let (key, indices) = match segment.find('[') {
        Some(i) => (&segment[..i], &segment[i..]),
        None => (segment, ""),
    };
    let mut cur = if key.is_empty() { cur } else { cur.get(key)? };
    for idx in indices.split('[').filter(|s| !s.is_empty()) {
        let i: usize = idx.trim_end_matches(']').parse().ok()?;
        cur = match &cur.value {
            Value::Seq(items) => items.get(i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Whether `meta`'s name (or generateName) is one `kind` accepts: the
/// check decoding makes, for a decoded object given another name.
pub(crate) fn check_object_name(meta: &Meta, kind: Kind) -> Result<(), ()> {
    check_name(meta, kind).map_err(|_| ())
}

fn check_name(meta: &Meta, kind: Kind) -> Result<(), Failure> {
    if meta.name.is_empty() && meta.generate_name.is_empty() {
        return Err(Failure::Invalid(
            "metadata.name".into(),
            "Required value: name or generateName is required".into(),
        ));
    }
    if !meta.name.is_empty() {
        let label_only = matches!(kind, Kind::Namespace | Kind::Service);
        if let Err(why) = validate_dns_name(&meta.name, label_only) {
            return Err(Failure::Invalid(
                "metadata.name".into(),
                format!("Invalid value: \"{}\": {why}", meta.name),
            ));
        }
    }
    Ok(())
}

/// RFC 1123 subdomain (or label) validation, as Kubernetes applies to names.
pub fn validate_dns_name(name: &str, label_only: bool) -> Result<(), String> {
    let max = if label_only { 63 } else { 253 };
    if name.len() > max {
        return Err(format!("must be no more than {max} characters"));
    }
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.len() <= 63
            && p.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
            && !p.starts_with('-')
            && !p.ends_with('-')
    };
    let fine = if label_only {
        ok_part(name)
    } else {
        name.split('.').all(ok_part)
    };
    if fine {
        Ok(())
    } else {
        Err(format!(
            "a lowercase RFC 1123 {} must consist of lower case alphanumeric characters{}, and must start and end with an alphanumeric character",
            if label_only { "label" } else { "subdomain" },
            if label_only { " or '-'" } else { ", '-' or '.'" }
        ))
    }
}

fn meta_of(
    m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    kind: Kind,
) -> Result<Meta, Failure> {
    let mut meta = Meta::from_api(m);
    if kind.namespaced() {
        if meta.namespace.is_empty() {
            meta.namespace = "default".into();
        }
    } else {
        meta.namespace.clear();
    }
    check_name(&meta, kind)?;
    Ok(meta)
}

fn pod_spec_model(
    spec: &core::PodSpec,
    annotations: &BTreeMap<String, String>,
    prefix: &str,
) -> Result<PodSpecModel, Failure> {
    for (i, c) in spec.containers.iter().enumerate() {
        if c.image.as_deref().unwrap_or("").is_empty() {
            return Err(Failure::Invalid(
                format!("{prefix}containers[{i}].image"),
                "Required value".into(),
            ));
        }
    }
    if spec.containers.is_empty() {
        return Err(Failure::Invalid(
            format!("{prefix}containers"),
            "Required value".into(),
        ));
    }
    PodSpecModel::from_api(spec, annotations).map_err(|(path, msg)| {
        let path = match path.strip_prefix("spec.") {
            Some(rest) => format!("{prefix}{rest}"),
            // The annotations are the template's, beside its spec.
            None => format!("{}{path}", prefix.strip_suffix("spec.").unwrap_or("")),
        };
        Failure::Invalid(path, msg)
    })
}

fn template_check(t: Option<&core::PodTemplateSpec>, prefix: &str) -> Result<(), Failure> {
    if let Some(t) = t {
        let ann = t
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.clone())
            .unwrap_or_default();
        if let Some(spec) = &t.spec {
            pod_spec_model(spec, &ann, &format!("{prefix}spec."))?;
        }
    }
    Ok(())
}

fn selector_check(
    s: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    path: &str,
) -> Result<(), Failure> {
    if let Some(s) = s {
        super::selector::Selector::from_api(s).map_err(|e| Failure::Invalid(path.into(), e))?;
    }
    Ok(())
}

fn generic<T: serde::Serialize>(kind: Kind, meta: Meta, typed: &T) -> Object {
    let mut json = serde_json::to_value(typed).unwrap_or(Json::Null);
    let mut rest = serde_json::Map::new();
    if let Json::Object(m) = &mut json {
        for (k, v) in std::mem::take(m) {
            if !matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                rest.insert(k, v);
            }
        }
    }
    Object {
        kind,
        meta,
        body: Body::Json(Arc::new(rest)),
    }
}

fn decode_typed(
    kind: Kind,
    api_version: &str,
    doc: &Node,
    unknown: &mut Vec<yaml::UnknownField>,
) -> Result<Object, Failure> {
    macro_rules! plain {
        ($t:ty) => {{
            let v: $t = from_node(doc, unknown)?;
            let meta = meta_of(&v.metadata, kind)?;
            generic(kind, meta, &v)
        }};
    }
    Ok(match kind {
        Kind::Pod => {
            let p: core::Pod = from_node(doc, unknown)?;
            let meta = meta_of(&p.metadata, kind)?;
            let spec = p
                .spec
                .clone()
                .ok_or_else(|| Failure::Invalid("spec".into(), "Required value".into()))?;
            let model = pod_spec_model(&spec, &meta.annotations, "spec.")?;
            let node_name = spec.node_name.clone().filter(|n| !n.is_empty());
            Object {
                kind,
                meta,
                body: Body::Pod(PodBody::new(Arc::new(model), node_name)),
            }
        }
        Kind::Node => {
            let n: core::Node = from_node(doc, unknown)?;
            let meta = meta_of(&n.metadata, kind)?;
            let body = NodeBody::from_api(&n).map_err(|(p, m)| Failure::Invalid(p, m))?;
            Object {
                kind,
                meta,
                body: Body::Node(body),
            }
        }
        Kind::Namespace => {
            let n: core::Namespace = from_node(doc, unknown)?;
            Object {
                kind,
                meta: meta_of(&n.metadata, kind)?,
                body: Body::Namespace(crate::api::namespace::NamespaceBody::from_api(&n)),
            }
        }
        Kind::Lease => {
            let l: k8s_openapi::api::coordination::v1::Lease = from_node(doc, unknown)?;
            Object {
                kind,
                meta: meta_of(&l.metadata, kind)?,
                body: Body::Lease(LeaseBody::from_api(&l)),
            }
        }
        Kind::Deployment => {
            let d: apps::Deployment = from_node(doc, unknown)?;
            let spec = d.spec.as_ref();
            selector_check(spec.map(|s| &s.selector), "spec.selector")?;
            template_check(spec.map(|s| &s.template), "spec.template.")?;
            plain_with(kind, &d.metadata, &d)?
        }
        Kind::ReplicaSet => {
            let d: apps::ReplicaSet = from_node(doc, unknown)?;
            let spec = d.spec.as_ref();
            selector_check(spec.map(|s| &s.selector), "spec.selector")?;
            template_check(spec.and_then(|s| s.template.as_ref()), "spec.template.")?;
            plain_with(kind, &d.metadata, &d)?
        }
        Kind::StatefulSet => {
            let d: apps::StatefulSet = from_node(doc, unknown)?;
            let spec = d.spec.as_ref();
            selector_check(spec.map(|s| &s.selector), "spec.selector")?;
            template_check(spec.map(|s| &s.template), "spec.template.")?;
            plain_with(kind, &d.metadata, &d)?
        }
        Kind::DaemonSet => {
            let d: apps::DaemonSet = from_node(doc, unknown)?;
            let spec = d.spec.as_ref();
            selector_check(spec.map(|s| &s.selector), "spec.selector")?;
            template_check(spec.map(|s| &s.template), "spec.template.")?;
            plain_with(kind, &d.metadata, &d)?
        }
        Kind::Job => {
            let d: batch::Job = from_node(doc, unknown)?;
            template_check(d.spec.as_ref().map(|s| &s.template), "spec.template.")?;
            if let Some(s) = &d.spec {
                super::job_validation::check(s, "spec.")
                    .map_err(|(p, m)| Failure::Invalid(p, m))?;
            }
            plain_with(kind, &d.metadata, &d)?
        }
        Kind::CronJob => {
            let d: batch::CronJob = from_node(doc, unknown)?;
            let t = d
                .spec
                .as_ref()
                .and_then(|s| s.job_template.spec.as_ref())
                .map(|s| &s.template);
            template_check(t, "spec.jobTemplate.spec.template.")?;
            // ValidateCronJobSpec's validateScheduleFormat: refused at create,
            // not left to the controller's UnparseableSchedule Event.
            if let Some(s) = &d.spec {
                crate::controllers::cronjob::schedule::Schedule::parse(&s.schedule).map_err(|e| {
                    Failure::Invalid(
                        "spec.schedule".into(),
                        format!("Invalid value: {:?}: {e}", s.schedule),
                    )
                })?;
            }
            if let Some(s) = d.spec.as_ref().and_then(|s| s.job_template.spec.as_ref()) {
                super::job_validation::check(s, "spec.jobTemplate.spec.")
                    .map_err(|(p, m)| Failure::Invalid(p, m))?;
            }
            plain_with(kind, &d.metadata, &d)?
        }
        Kind::ReplicationController => {
            let d: core::ReplicationController = from_node(doc, unknown)?;
            template_check(
                d.spec.as_ref().and_then(|s| s.template.as_ref()),
                "spec.template.",
            )?;
            plain_with(kind, &d.metadata, &d)?
        }
        Kind::HorizontalPodAutoscaler if api_version == "autoscaling/v1" => {
            plain!(k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler)
        }
        Kind::HorizontalPodAutoscaler => {
            plain!(k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler)
        }
        Kind::Service => plain!(core::Service),
        Kind::Endpoints => plain!(core::Endpoints),
        Kind::ConfigMap => plain!(core::ConfigMap),
        Kind::Secret => {
            let mut o = plain!(core::Secret);
            if let Body::Json(m) = &mut o.body {
                super::secret::merge_string_data(Arc::make_mut(m));
            }
            o
        }
        Kind::ServiceAccount => plain!(core::ServiceAccount),
        Kind::PersistentVolumeClaim => plain!(core::PersistentVolumeClaim),
        Kind::PersistentVolume => plain!(core::PersistentVolume),
        Kind::ResourceQuota => plain!(core::ResourceQuota),
        Kind::LimitRange => plain!(core::LimitRange),
        Kind::Event => plain!(core::Event),
        Kind::ControllerRevision => plain!(apps::ControllerRevision),
        Kind::PodDisruptionBudget => {
            let d: k8s_openapi::api::policy::v1::PodDisruptionBudget = from_node(doc, unknown)?;
            let spec = serde_json::to_value(&d.spec).unwrap_or(Json::Null);
            super::disruption_budget::validate_spec(&spec)
                .map_err(|(path, msg)| Failure::Invalid(path, msg))?;
            selector_check(
                d.spec.as_ref().and_then(|s| s.selector.as_ref()),
                "spec.selector",
            )?;
            plain_with(kind, &d.metadata, &d)?
        }
        Kind::PriorityClass => plain!(k8s_openapi::api::scheduling::v1::PriorityClass),
        Kind::ClusterRole => plain!(k8s_openapi::api::rbac::v1::ClusterRole),
        Kind::ClusterRoleBinding => plain!(k8s_openapi::api::rbac::v1::ClusterRoleBinding),
        Kind::Role => plain!(k8s_openapi::api::rbac::v1::Role),
        Kind::RoleBinding => plain!(k8s_openapi::api::rbac::v1::RoleBinding),
        Kind::StorageClass => plain!(k8s_openapi::api::storage::v1::StorageClass),
        Kind::Ingress => plain!(k8s_openapi::api::networking::v1::Ingress),
        Kind::NetworkPolicy => plain!(k8s_openapi::api::networking::v1::NetworkPolicy),
        Kind::EndpointSlice => plain!(k8s_openapi::api::discovery::v1::EndpointSlice),
        Kind::PodTemplate => plain!(core::PodTemplate),
        Kind::IngressClass => plain!(k8s_openapi::api::networking::v1::IngressClass),
        Kind::ServiceCIDR => plain!(k8s_openapi::api::networking::v1::ServiceCIDR),
        Kind::IPAddress => plain!(k8s_openapi::api::networking::v1::IPAddress),
        Kind::ValidatingWebhookConfiguration => {
            plain!(k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration)
        }
        Kind::MutatingWebhookConfiguration => {
            plain!(k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration)
        }
        Kind::ValidatingAdmissionPolicy => {
            plain!(k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy)
        }
        Kind::ValidatingAdmissionPolicyBinding => {
            plain!(k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding)
        }
        Kind::CustomResourceDefinition => plain!(
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition
        ),
        Kind::APIService => {
            plain!(k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService)
        }
        Kind::RuntimeClass => plain!(k8s_openapi::api::node::v1::RuntimeClass),
        Kind::CSIDriver => plain!(k8s_openapi::api::storage::v1::CSIDriver),
        Kind::CSINode => plain!(k8s_openapi::api::storage::v1::CSINode),
        Kind::CSIStorageCapacity => plain!(k8s_openapi::api::storage::v1::CSIStorageCapacity),
        Kind::VolumeAttachment => plain!(k8s_openapi::api::storage::v1::VolumeAttachment),
        Kind::VolumeAttributesClass => {
            plain!(k8s_openapi::api::storage::v1::VolumeAttributesClass)
        }
        Kind::CertificateSigningRequest => {
            plain!(k8s_openapi::api::certificates::v1::CertificateSigningRequest)
        }
        Kind::FlowSchema => plain!(k8s_openapi::api::flowcontrol::v1::FlowSchema),
        Kind::PriorityLevelConfiguration => {
            plain!(k8s_openapi::api::flowcontrol::v1::PriorityLevelConfiguration)
        }
        Kind::ResourceClaim | Kind::ResourceClaimTemplate | Kind::DeviceClass | Kind::ResourceSlice => {
            use k8s_openapi::api::resource::v1 as resource;
            let o = match kind {
                Kind::ResourceClaim => plain!(resource::ResourceClaim),
                Kind::ResourceClaimTemplate => plain!(resource::ResourceClaimTemplate),
                Kind::DeviceClass => plain!(resource::DeviceClass),
                _ => plain!(resource::ResourceSlice),
            };
            crate::dra::validate(&o).map_err(|(p, m)| Failure::Invalid(p, m))?;
            o
        }
        Kind::Custom(_) => {
            return Err(Failure::Invalid("kind".into(), "a custom kind is decoded against its CRD".into()))
        }
    })
}

fn plain_with<T: serde::Serialize>(
    kind: Kind,
    m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    typed: &T,
) -> Result<Object, Failure> {
    Ok(generic(kind, meta_of(m, kind)?, typed))
}

/// Paths of a Pod that the simulation reads; everything else is reported.
/// The scheduler's plugins read the placement fields (NodeAffinity:
/// `nodeSelector`, `affinity.nodeAffinity`; InterPodAffinity: pod
/// (anti-)affinity; TaintToleration; PodTopologySpread; NodePorts: host
/// ports; scheduling gates; profiles by `schedulerName`; preemption by
/// `preemptionPolicy`), Priority admission reads `priorityClassName`, the
/// DaemonSet controller `hostNetwork` (its extra tolerations), the
/// Endpoints controller the container ports, and the kubelet's prober and
/// killContainer the probes and the preStop hook.
const POD_MODELLED: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "spec.nodeName",
    "spec.nodeSelector",
    "spec.affinity",
    "spec.tolerations",
    "spec.topologySpreadConstraints",
    "spec.schedulingGates",
    "spec.resourceClaims",
    "spec.schedulerName",
    "spec.priorityClassName",
    "spec.priority",
    "spec.preemptionPolicy",
    "spec.hostNetwork",
    "spec.restartPolicy",
    "spec.terminationGracePeriodSeconds",
    "spec.overhead",
    "spec.resources",
    "spec.containers[].name",
    "spec.containers[].image",
    "spec.containers[].resources",
    "spec.containers[].ports",
    "spec.containers[].readinessProbe",
    "spec.containers[].livenessProbe",
    "spec.containers[].startupProbe",
    "spec.containers[].lifecycle.preStop",
    "spec.initContainers[].name",
    "spec.initContainers[].image",
    "spec.initContainers[].resources",
    "spec.initContainers[].restartPolicy",
    "spec.initContainers[].ports",
    "spec.initContainers[].readinessProbe",
    "spec.initContainers[].livenessProbe",
    "spec.initContainers[].startupProbe",
    "spec.initContainers[].lifecycle.preStop",
];

const NODE_MODELLED: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "spec.unschedulable",
    "spec.taints",
    "status.capacity",
    "status.allocatable",
    "status.images",
];

/// What each controller reads of its kind (the pod template's own fields
/// are the pod model's).
const DEPLOYMENT_MODELLED: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "status",
    "spec.replicas",
    "spec.selector",
    "spec.template",
    "spec.strategy",
    "spec.minReadySeconds",
    "spec.revisionHistoryLimit",
    "spec.progressDeadlineSeconds",
    "spec.paused",
];
const REPLICASET_MODELLED: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "status",
    "spec.replicas",
    "spec.selector",
    "spec.template",
    "spec.minReadySeconds",
];
const STATEFULSET_MODELLED: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "status",
    "spec.replicas",
    "spec.selector",
    "spec.template",
    "spec.podManagementPolicy",
    "spec.updateStrategy",
    "spec.volumeClaimTemplates",
    "spec.minReadySeconds",
    "spec.ordinals",
    "spec.persistentVolumeClaimRetentionPolicy.whenDeleted",
];
const DAEMONSET_MODELLED: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "status",
    "spec.selector",
    "spec.template",
    "spec.updateStrategy",
    "spec.minReadySeconds",
];
const JOB_MODELLED: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "status",
    "spec.parallelism",
    "spec.completions",
    "spec.backoffLimit",
    "spec.activeDeadlineSeconds",
    "spec.completionMode",
    "spec.suspend",
    "spec.template",
    "spec.podFailurePolicy",
    "spec.successPolicy",
    "spec.backoffLimitPerIndex",
    "spec.maxFailedIndexes",
    "spec.podReplacementPolicy",
];
const CRONJOB_MODELLED: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "status",
    "spec.schedule",
    "spec.timeZone",
    "spec.concurrencyPolicy",
    "spec.startingDeadlineSeconds",
    "spec.suspend",
    "spec.successfulJobsHistoryLimit",
    "spec.failedJobsHistoryLimit",
    "spec.jobTemplate",
];
const HPA_MODELLED: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "status",
    "spec.scaleTargetRef",
    "spec.minReplicas",
    "spec.maxReplicas",
    "spec.metrics",
    "spec.behavior",
    "spec.targetCPUUtilizationPercentage",
];
const PDB_MODELLED: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "status",
    "spec.selector",
    "spec.minAvailable",
    "spec.maxUnavailable",
    "spec.unhealthyPodEvictionPolicy",
];
const SERVICE_MODELLED: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "status",
    "spec.selector",
    "spec.ports",
    "spec.publishNotReadyAddresses",
    "spec.clusterIP",
];

fn note_unsimulated(kind: Kind, doc: &Node, report: &mut FieldReport) {
    let name = kind.name().to_string();
    let modelled: &[&str] = match kind {
        Kind::Pod => POD_MODELLED,
        Kind::Node => NODE_MODELLED,
        Kind::Deployment => DEPLOYMENT_MODELLED,
        Kind::ReplicaSet => REPLICASET_MODELLED,
        Kind::StatefulSet => STATEFULSET_MODELLED,
        Kind::DaemonSet => DAEMONSET_MODELLED,
        Kind::Job => JOB_MODELLED,
        Kind::CronJob => CRONJOB_MODELLED,
        Kind::HorizontalPodAutoscaler => HPA_MODELLED,
        Kind::Service => SERVICE_MODELLED,
        Kind::PodDisruptionBudget => PDB_MODELLED,
        // Kinds no component acts on are counted as stored, not simulated.
        _ => &[""],
    };
    let mut found = BTreeSet::new();
    walk_unmodelled(doc, String::new(), modelled, &mut found);
    if let Some((path, template)) = pod_template(kind, doc) {
        let mut inner = BTreeSet::new();
        walk_unmodelled(template, String::new(), POD_MODELLED, &mut inner);
        found.extend(inner.into_iter().map(|p| format!("{path}.{p}")));
    }
    if !found.is_empty() {
        report.not_simulated.entry(name).or_default().extend(found);
    }
}

/// A workload's pod template and its path: what its controller copies into
/// every pod, so its unmodelled fields are reported as a Pod's would be.
fn pod_template(kind: Kind, doc: &Node) -> Option<(&'static str, &Node)> {
    let path = match kind {
        Kind::Deployment
        | Kind::ReplicaSet
        | Kind::StatefulSet
        | Kind::DaemonSet
        | Kind::Job
        | Kind::ReplicationController
        | Kind::PodTemplate => "spec.template",
        Kind::CronJob => "spec.jobTemplate.spec.template",
        _ => return None,
    };
    let at = if kind == Kind::PodTemplate {
        "template"
    } else {
        path
    };
    node_at(doc, at).map(|n| (at, n))
}

fn walk_unmodelled(node: &Node, path: String, modelled: &[&str], out: &mut BTreeSet<String>) {
    let covered = |p: &str| {
        modelled.iter().any(|m| {
            m.is_empty()
                || p == *m
                || p.starts_with(&format!("{m}."))
                || p.starts_with(&format!("{m}["))
        })
    };
    let inside = |p: &str| {
        modelled
            .iter()
            .any(|m| m.starts_with(&format!("{p}.")) || m.starts_with(&format!("{p}[")))
    };
    match &node.value {
        Value::Map(pairs) => {
            for (k, v) in pairs {
                let key = k.as_str().unwrap_or("");
                let p = if path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
                if covered(&p) {
                    continue;
                }
                if inside(&p) {
                    walk_unmodelled(v, p, modelled, out);
                } else {
                    out.insert(p);
                }
            }
        }
        Value::Seq(items) => {
            let p = format!("{path}[]");
            for item in items {
                walk_unmodelled(item, p.clone(), modelled, out);
            }
        }
        Value::Scalar { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Vec<Object>, Vec<LoadError>> {
        load_manifests("t.yaml", text, &mut FieldReport::default())
    }

    #[test]
    fn a_pod_loads_with_its_effective_requests() {
        let objs = load(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: nginx\n    resources: {requests: {cpu: 250m, memory: 64Mi}}\n  - name: b\n    image: busybox\n    resources: {limits: {cpu: \"1\"}}\n",
        )
        .unwrap();
        let pod = objs[0].as_pod().unwrap();
        assert_eq!(pod.spec.requests["cpu"].milli_value(), 1250);
        assert_eq!(objs[0].meta.namespace, "default");
    }

    #[test]
    fn unknown_fields_name_line_and_suggestion() {
        let errs = load("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    imagee: nginx\n").unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter().any(|t| t
                .contains("t.yaml:7:5: spec.containers[0].imagee: unknown field \"imagee\"")
                && t.contains("did you mean \"image\"")),
            "{text:?}"
        );
    }

    #[test]
    fn bad_quantities_point_at_the_field() {
        let errs = load("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: x\n    resources:\n      requests:\n        cpu: 2 cores\n").unwrap_err();
        assert_eq!(errs[0].field, "spec.containers[0].resources.requests.cpu");
        assert_eq!(errs[0].pos.unwrap().line, 10);
    }

    #[test]
    fn old_versions_convert_and_removed_shapes_are_refused() {
        let mut report = FieldReport::default();
        let objs = load_manifests(
            "c.yaml",
            "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: hello}\nspec:\n  schedule: '*/1 * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: c, image: busybox}]\n          restartPolicy: OnFailure\n",
            &mut report,
        )
        .unwrap();
        assert_eq!(objs[0].kind, Kind::CronJob);
        assert!(report.converted.iter().any(|c| c.contains("batch/v1beta1")));
        let errs = load("apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: i}\n")
            .unwrap_err();
        assert!(errs[0].message.contains("refused"));
    }

    #[test]
    fn unmodelled_fields_are_reported_once() {
        let mut report = FieldReport::default();
        load_manifests(
            "p.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  volumes: [{name: v, emptyDir: {}}]\n  containers:\n  - name: a\n    image: x\n    env: [{name: A, value: b}]\n    ports: [{containerPort: 80}]\n",
            &mut report,
        )
        .unwrap();
        let pod = &report.not_simulated["Pod"];
        assert!(pod.contains("spec.volumes"), "{pod:?}");
        assert!(pod.contains("spec.containers[].env"), "{pod:?}");
        // Container ports are read (the Endpoints controller resolves named
        // target ports, NodePorts reads host ports): not reported.
        assert!(!pod
            .iter()
            .any(|p| p.contains("image") || p.contains("ports")));
    }

    /// The fields the scheduler honours were once listed as not simulated.
    #[test]
    fn placement_fields_the_scheduler_honours_are_not_reported() {
        let mut report = FieldReport::default();
        load_manifests(
            "p.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  nodeSelector: {disk: ssd}\n  tolerations: [{key: k, operator: Exists}]\n  affinity: {podAntiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 1, podAffinityTerm: {topologyKey: zone, labelSelector: {matchLabels: {a: b}}}}]}}\n  priorityClassName: system-cluster-critical\n  schedulingGates: [{name: g}]\n  topologySpreadConstraints: [{maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule}]\n  containers:\n  - {name: a, image: x, livenessProbe: {httpGet: {path: /, port: 80}}}\n",
            &mut report,
        )
        .unwrap();
        // Every field above is read by a plugin, admission or the prober.
        assert!(
            !report.not_simulated.contains_key("Pod"),
            "{:?}",
            report.not_simulated
        );
    }

    #[test]
    fn pod_templates_of_every_workload_are_reported_as_pods_are() {
        let pod = "metadata: {labels: {a: b}}\n      spec:\n        containers: [{name: c, image: x, env: [{name: A, value: b}]}]\n        volumes: [{name: v, emptyDir: {}}]";
        let mut text = String::new();
        for (kind, api) in [
            ("Deployment", "apps/v1"),
            ("ReplicaSet", "apps/v1"),
            ("StatefulSet", "apps/v1"),
            ("DaemonSet", "apps/v1"),
        ] {
            text.push_str(&format!("---\napiVersion: {api}\nkind: {kind}\nmetadata: {{name: w}}\nspec:\n  selector: {{matchLabels: {{a: b}}}}\n  template:\n      {pod}\n"));
        }
        text.push_str(&format!("---\napiVersion: batch/v1\nkind: Job\nmetadata: {{name: j}}\nspec:\n  template:\n      {}\n", pod.replace("volumes", "restartPolicy: Never\n        volumes")));
        text.push_str(&format!("---\napiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: c}}\nspec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n      template:\n          {}\n", pod.replace("\n      ", "\n          ").replace("volumes", "restartPolicy: Never\n            volumes")));
        let mut report = FieldReport::default();
        load_manifests("w.yaml", &text, &mut report).unwrap();
        for kind in [
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
            "DaemonSet",
            "Job",
        ] {
            let paths = &report.not_simulated[kind];
            assert!(
                paths.contains("spec.template.spec.volumes"),
                "{kind}: {paths:?}"
            );
            assert!(
                paths.contains("spec.template.spec.containers[].env"),
                "{kind}: {paths:?}"
            );
        }
        let cron = &report.not_simulated["CronJob"];
        assert!(
            cron.contains("spec.jobTemplate.spec.template.spec.containers[].env"),
            "{cron:?}"
        );
    }

    /// Typed decoding stops at the first bad field; the document's other
    /// errors still come back in the same pass.
    #[test]
    fn one_document_reports_every_bad_field() {
        let errs = load(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n  replicas: three\n  minReadySeconds: soon\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: c, image: x, resources: {requests: {cpu: 2 cores}}}]\n",
        )
        .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        // Three independent errors at lines 5, 6 and 11: all three, in line order.
        assert_eq!(
            fields,
            vec![
                "spec.replicas",
                "spec.minReadySeconds",
                "spec.template.spec.containers[0].resources.requests.cpu"
            ]
        );
    }

    #[test]
    fn a_custom_resource_needs_its_crd_and_follows_its_schema() {
        let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {kind: Widget, plural: widgets}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec: {type: object, properties: {size: {type: integer, maximum: 5}}}\n";
        let cr = "---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 3, colour: red}\n";
        // The CR first, then its CRD: CRDs are read before any CR.
        let mut report = FieldReport::default();
        let objs = load_manifests("c.yaml", &format!("{cr}---\n{crd}"), &mut report).unwrap();
        let w = objs.iter().find(|o| o.kind.name() == "Widget").unwrap();
        assert_eq!(
            w.meta.namespace, "default",
            "Namespaced: defaulted as a built-in's"
        );
        assert_eq!(
            w.to_json()["spec"],
            serde_json::json!({"size": 3}),
            "colour pruned"
        );
        assert!(report.pruned["Widget"].contains("spec.colour"));
        assert_eq!(report.custom["Widget"], ("example.com/v1".to_string(), 1));
        assert_eq!(report.stored["CustomResourceDefinition"], 1);
        // Without the CRD: kubectl's error, at the kind's line (3).
        let errs = load(cr).unwrap_err();
        assert_eq!(errs[0].pos.unwrap().line, 3);
        assert!(errs[0]
            .message
            .starts_with("no matches for kind \"Widget\" in version \"example.com/v1\""));
        // A schema violation, at its line: 16 lines of CRD, `---`, then the
        // CR, whose `spec` is line 21.
        let errs = load(&format!("{crd}{}", cr.replace("size: 3", "size: 9"))).unwrap_err();
        assert_eq!(
            (errs[0].field.as_str(), errs[0].pos.unwrap().line),
            ("spec.size", 21)
        );
    }
}
