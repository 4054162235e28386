//! JSON and merge patches: applied to an object's JSON form and decoded back
//! strictly, as the apiserver decodes a patched object, keeping what a patch
//! cannot change (identity, status).

use crate::api::object::Body;
use crate::api::{Kind, Object};

use super::server::namespace;

/// Applies RFC 6902 `replace` operations; a missing last key of an object is
/// added (as `add` would), a missing parent is an error.
pub fn json_patch(cur: &Object, ops: &[(String, serde_json::Value)]) -> Result<Object, String> {
    let mut json = cur.to_json();
    for (path, value) in ops {
        let (parent, last) = path
            .rsplit_once('/')
            .ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
        let target = json
            .pointer_mut(parent)
            .ok_or_else(|| format!("doc is missing path: {parent:?}"))?;
        match target {
            serde_json::Value::Object(m) => {
                m.insert(last.replace("~1", "/").replace("~0", "~"), value.clone());
            }
            serde_json::Value::Array(a) => {
                let i: usize = last
                    .parse()
                    .map_err(|_| format!("invalid index in {path:?}"))?;
                let slot = a
                    .get_mut(i)
                    .ok_or_else(|| format!("index out of range in {path:?}"))?;
                *slot = value.clone();
            }
            _ => return Err(format!("doc is missing path: {path:?}")),
        }
    }
    read_back(cur, json)
}

/// Applies an RFC 7386 merge patch to an object's JSON form and reads it back
/// strictly, as the apiserver decodes a patched object.
pub fn merge_patch(cur: &Object, patch: &serde_json::Value) -> Result<Object, String> {
    if let Some(finalizers) = finalizers_only(patch) {
        let mut obj = cur.clone();
        obj.meta.finalizers = finalizers;
        return Ok(obj);
    }
    let mut json = cur.to_json();
    merge(&mut json, patch);
    read_back(cur, json)
}

/// RFC 7386 on JSON values: objects merge key by key, `null` removes a key,
/// anything else replaces the target.
fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match patch {
        serde_json::Value::Object(p) => {
            if !target.is_object() {
                *target = serde_json::Value::Object(Default::default());
            }
            let t = target.as_object_mut().expect("made an object above");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// The finalizers a patch of `metadata.finalizers` alone sets, when every
/// entry is a string (`null` clears them). Such a patch, the Job and garbage
/// collectors' finalizer removal, changes one list the decoder takes as it
/// is, so the stored object with that list is what decoding the patched
/// JSON would give back; anything else (or a malformed list) goes through
/// the full decode and its errors.
fn finalizers_only(patch: &serde_json::Value) -> Option<Vec<String>> {
    let top = patch.as_object()?;
    let meta = top.get("metadata")?.as_object()?;
    if top.len() != 1 || meta.len() != 1 {
        return None;
    }
    match meta.get("finalizers")? {
        serde_json::Value::Null => Some(Vec::new()),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|f| f.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

/// Decodes a patched object's JSON, keeping what a patch cannot change.
fn read_back(cur: &Object, json: serde_json::Value) -> Result<Object, String> {
    let mut obj = if let Kind::Custom(_) = cur.kind {
        // No CRD registry here: the stored object's kind stands.
        crate::api::custom_resource::from_json(cur.kind, &json)?
    } else {
        let node = crate::api::yaml::Node::from_json(&json, Default::default());
        let mut report = crate::api::manifest::FieldReport::default();
        let mut objs =
            crate::api::manifest::decode_object("patch", &node, &mut report).map_err(|errs| {
                errs.iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            })?;
        objs.pop().ok_or("patch produced no object")?
    };
    obj.meta.uid = cur.meta.uid.clone();
    obj.meta.creation = cur.meta.creation;
    obj.meta.generation = cur.meta.generation;
    obj.meta.resource_version = cur.meta.resource_version;
    obj.meta.deletion = cur.meta.deletion;
    obj.meta.deletion_grace_seconds = cur.meta.deletion_grace_seconds;
    // Status is not part of a manifest: keep the stored one.
    if let (Body::Pod(new), Body::Pod(old)) = (&mut obj.body, &cur.body) {
        new.status = old.status.clone();
        if new.node_name.is_none() {
            new.node_name = old.node_name.clone();
        }
        // The decoded spec carries its defaults in its typed form, so the
        // JSON the API shows is what says whether the patch changed it.
        if new.spec.json == old.spec.json {
            new.spec = old.spec.clone();
        }
    }
    if let (Body::Namespace(new), Body::Namespace(old)) = (&mut obj.body, &cur.body) {
        namespace::merge_status(new, old);
    }
    if let (Body::Node(new), Body::Node(old)) = (&mut obj.body, &cur.body) {
        new.conditions = old.conditions.clone();
        new.images = old.images.clone();
        new.capacity = old.capacity.clone();
        new.allocatable = old.allocatable.clone();
        new.addresses = old.addresses.clone();
        new.kubelet_version = old.kubelet_version.clone();
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod() -> Object {
        let yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: jobs\n  \
                    labels: {job-name: j}\n  finalizers: [batch.kubernetes.io/job-tracking, keep.me/x]\n\
                    spec:\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: busybox\n    \
                    resources: {requests: {cpu: 500m, memory: 1Gi}}\n";
        let docs = crate::api::manifest::parse_yaml("t.yaml", yaml).expect("yaml");
        let mut report = Default::default();
        let mut objs =
            crate::api::manifest::decode_object("t.yaml", &docs[0], &mut report).expect("pod");
        let mut p = objs.remove(0);
        p.meta.uid = "u-1".into();
        p.meta.resource_version = 42;
        p
    }

    /// The general path (merge, then the full decode), which the
    /// finalizers-only path must agree with.
    fn decoded(cur: &Object, patch: &serde_json::Value) -> Object {
        let mut json = cur.to_json();
        merge(&mut json, patch);
        read_back(cur, json).expect("decodes")
    }

    #[test]
    fn a_finalizers_patch_gives_what_the_full_decode_gives() {
        let cur = pod();
        for patch in [
            json!({"metadata": {"finalizers": ["keep.me/x"]}}),
            json!({"metadata": {"finalizers": []}}),
            json!({"metadata": {"finalizers": null}}),
        ] {
            // The decode fills the typed spec's defaults in and orders its
            // JSON's keys, so the two are compared as the API shows them.
            let fast = merge_patch(&cur, &patch).unwrap();
            assert_eq!(fast.to_json(), decoded(&cur, &patch).to_json(), "{patch}");
            assert!(!fast.spec_differs(&cur));
        }
        let kept = merge_patch(&cur, &json!({"metadata": {"finalizers": ["keep.me/x"]}})).unwrap();
        assert_eq!(kept.meta.finalizers, vec!["keep.me/x".to_string()]);
        assert_eq!(kept.meta.resource_version, 42);
    }

    #[test]
    fn other_patches_take_the_full_decode_and_its_errors() {
        let cur = pod();
        // A finalizer that is not a string is the decoder's to refuse.
        assert!(finalizers_only(&json!({"metadata": {"finalizers": [1]}})).is_none());
        assert!(merge_patch(&cur, &json!({"metadata": {"finalizers": [1]}})).is_err());
        // Finalizers beside another field: the general path.
        let both = json!({"metadata": {"finalizers": [], "labels": {"a": "b"}}});
        assert!(finalizers_only(&both).is_none());
        let patched = merge_patch(&cur, &both).unwrap();
        assert!(patched.meta.finalizers.is_empty());
        assert_eq!(patched.meta.labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(
            patched.meta.labels.get("job-name").map(String::as_str),
            Some("j")
        );
    }
}
