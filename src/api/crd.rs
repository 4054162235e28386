//! CustomResourceDefinitions as the apiextensions-apiserver reads them: a
//! CRD in the input registers its kind, and its custom resources are then
//! decoded against it (served versions, scope, schema).
//!
//! The registry is filled before any custom resource is decoded (every
//! file's CRDs first, as `helm install` applies `crds/` before templates),
//! so a file may list a CR before its CRD. A CR whose CRD is not in the input
//! is refused as `kubectl apply` refuses it, with
//! `no matches for kind "X" in version "Y"`.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value as Json;

use super::custom_kind::{CustomKind, CustomKindInfo};
use super::yaml::{from_node, Node, Value};

/// One served version of a CRD.
#[derive(Debug, Clone)]
pub struct CrdVersion {
    pub name: String,
    pub served: bool,
    /// `schema.openAPIV3Schema`, as JSON.
    pub schema: Option<Arc<Json>>,
}

/// What a CRD defines.
#[derive(Debug, Clone)]
pub struct CrdEntry {
    /// `metadata.name` (`sealedsecrets.bitnami.com`).
    pub name: String,
    pub kind: CustomKind,
    pub versions: Vec<CrdVersion>,
}

/// The CRDs read so far, by (group, kind).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    by_kind: BTreeMap<(String, String), CrdEntry>,
}

/// How a custom resource's `apiVersion`/`kind` resolves.
pub enum Lookup<'a> {
    Found(&'a CrdEntry, &'a CrdVersion),
    /// The group and kind are defined, not at this version (or not served).
    NotServed(&'a CrdEntry),
    Missing,
}

impl Registry {
    /// Registers `crd`, or says what makes it invalid (path, message) as
    /// the apiserver's CRD validation would.
    pub fn register(
        &mut self,
        crd: &CustomResourceDefinition,
    ) -> Result<CustomKind, (String, String)> {
        let entry = entry_of(crd)?;
        let kind = entry.kind;
        let key = (kind.group().to_string(), kind.info().kind.clone());
        self.by_kind.insert(key, entry);
        Ok(kind)
    }

    /// Registers the CRDs among `docs` (and inside `List`s), ignoring any
    /// that do not decode: the main pass reports those at their line.
    pub fn scan(&mut self, docs: &[Node]) {
        for doc in docs {
            let field = |k: &str| doc.get(k).and_then(Node::as_str);
            match (field("apiVersion"), field("kind")) {
                (Some("apiextensions.k8s.io/v1"), Some("CustomResourceDefinition")) => {
                    let mut unknown = Vec::new();
                    if let Ok(crd) = from_node::<CustomResourceDefinition>(doc, &mut unknown) {
                        let _ = self.register(&crd);
                    }
                }
                (Some("v1"), Some("List")) => {
                    if let Some(Node {
                        value: Value::Seq(items),
                        ..
                    }) = doc.get("items")
                    {
                        self.scan(items);
                    }
                }
                _ => {}
            }
        }
    }

    pub fn lookup(&self, api_version: &str, kind: &str) -> Lookup<'_> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let Some(entry) = self.by_kind.get(&(group.to_string(), kind.to_string())) else {
            return Lookup::Missing;
        };
        match entry
            .versions
            .iter()
            .find(|v| v.name == version && v.served)
        {
            Some(v) => Lookup::Found(entry, v),
            None => Lookup::NotServed(entry),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_kind.is_empty()
    }
}

fn entry_of(crd: &CustomResourceDefinition) -> Result<CrdEntry, (String, String)> {
    let spec = &crd.spec;
    let invalid = |p: &str, m: String| Err((p.to_string(), m));
    let expected = format!("{}.{}", spec.names.plural, spec.group);
    let name = crd.metadata.name.clone().unwrap_or_default();
    if name != expected {
        return invalid(
            "metadata.name",
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        );
    }
    if spec.group.is_empty() || !spec.group.contains('.') {
        return invalid(
            "spec.group",
            format!(
                "Invalid value: \"{}\": should be a domain with at least one dot",
                spec.group
            ),
        );
    }
    let namespaced = match spec.scope.as_str() {
        "Namespaced" => true,
        "Cluster" => false,
        other => {
            return invalid(
                "spec.scope",
                format!(
                    "Unsupported value: \"{other}\": supported values: \"Cluster\", \"Namespaced\""
                ),
            )
        }
    };
    if spec.versions.is_empty() {
        return invalid(
            "spec.versions",
            "Invalid value: null: must have exactly one version marked as storage version".into(),
        );
    }
    let storage: Vec<_> = spec.versions.iter().filter(|v| v.storage).collect();
    if storage.len() != 1 {
        return invalid(
            "spec.versions",
            format!(
                "Invalid value: {}: must have exactly one version marked as storage version",
                storage.len()
            ),
        );
    }
    let mut versions = Vec::new();
    for (i, v) in spec.versions.iter().enumerate() {
        let schema = v
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref());
        let Some(schema) = schema else {
            return invalid(
                &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "Required value: schemas are required".into(),
            );
        };
        let json = serde_json::to_value(schema).unwrap_or(Json::Null);
        versions.push(CrdVersion {
            name: v.name.clone(),
            served: v.served,
            schema: Some(Arc::new(json)),
        });
    }
    let stored = storage[0];
    let kind = CustomKind::intern(CustomKindInfo {
        api_version: format!("{}/{}", spec.group, stored.name),
        kind: spec.names.kind.clone(),
        plural: spec.names.plural.clone(),
        namespaced,
        status_subresource: stored
            .subresources
            .as_ref()
            .is_some_and(|s| s.status.is_some()),
    });
    Ok(CrdEntry {
        name,
        kind,
        versions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::yaml::parse_documents;

    const CRD: &str = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\nspec:\n  group: example.com\n  scope: Cluster\n  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}\n  versions:\n  - {name: v1beta1, served: true, storage: false, schema: {openAPIV3Schema: {type: object}}}\n  - name: v1\n    served: true\n    storage: true\n    subresources: {status: {}}\n    schema: {openAPIV3Schema: {type: object}}\n  - {name: v1alpha1, served: false, storage: false, schema: {openAPIV3Schema: {type: object}}}\n";

    #[test]
    fn a_crd_registers_its_kind_at_its_storage_version() {
        let mut r = Registry::default();
        r.scan(&parse_documents(CRD).unwrap());
        let Lookup::Found(entry, version) = r.lookup("example.com/v1beta1", "Widget") else {
            panic!("v1beta1 is served");
        };
        assert_eq!(version.name, "v1beta1");
        // Stored at the storage version, cluster-scoped, with a status subresource.
        assert_eq!(entry.kind.info().api_version, "example.com/v1");
        assert!(!entry.kind.info().namespaced);
        assert!(entry.kind.info().status_subresource);
        assert!(matches!(
            r.lookup("example.com/v1alpha1", "Widget"),
            Lookup::NotServed(_)
        ));
        assert!(matches!(
            r.lookup("example.com/v1", "Gadget"),
            Lookup::Missing
        ));
    }

    #[test]
    fn a_crd_named_other_than_plural_dot_group_is_invalid() {
        let text = CRD.replace("name: widgets.example.com", "name: widget.example.com");
        let doc = &parse_documents(&text).unwrap()[0];
        let crd: CustomResourceDefinition = from_node(doc, &mut Vec::new()).unwrap();
        let err = Registry::default().register(&crd).unwrap_err();
        assert_eq!(err.0, "metadata.name");
    }
}
