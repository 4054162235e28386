//! The kinds kubesim reads, the API version each is served at, and what
//! happens to older versions a user may still have lying around.
//!
//! Built-in kinds are listed with the scope the real API gives them; kinds
//! no component acts on are still stored, watched, listed and versioned as
//! the apiserver does. A CustomResourceDefinition adds a [`Kind::Custom`].

pub use super::custom_kind::{CustomKind, CustomKindInfo};

/// A kind kubesim accepts, at the version it stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Namespace,
    Node,
    Pod,
    Lease,
    Service,
    Endpoints,
    ConfigMap,
    Secret,
    ServiceAccount,
    PersistentVolumeClaim,
    PersistentVolume,
    ReplicationController,
    ResourceQuota,
    LimitRange,
    Event,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    ControllerRevision,
    Job,
    CronJob,
    PodDisruptionBudget,
    HorizontalPodAutoscaler,
    PriorityClass,
    ClusterRole,
    ClusterRoleBinding,
    Role,
    RoleBinding,
    StorageClass,
    Ingress,
    NetworkPolicy,
    EndpointSlice,
    PodTemplate,
    IngressClass,
    ServiceCIDR,
    IPAddress,
    ValidatingWebhookConfiguration,
    MutatingWebhookConfiguration,
    ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding,
    CustomResourceDefinition,
    APIService,
    RuntimeClass,
    CSIDriver,
    CSINode,
    CSIStorageCapacity,
    VolumeAttachment,
    VolumeAttributesClass,
    CertificateSigningRequest,
    FlowSchema,
    PriorityLevelConfiguration,
    ResourceClaim,
    ResourceClaimTemplate,
    DeviceClass,
    ResourceSlice,
    /// A kind a CustomResourceDefinition serves.
    Custom(CustomKind),
}

/// Static facts about a kind.
pub struct KindInfo {
    pub kind: Kind,
    pub name: &'static str,
    pub api_version: &'static str,
    pub namespaced: bool,
    /// Whether kubesim simulates objects of this kind (others are stored and
    /// watched like any object, but no component acts on them yet).
    pub simulated: bool,
}

macro_rules! kinds {
    ($( $k:ident, $v:literal, $ns:literal, $sim:literal; )*) => {
        /// Every kind, in a fixed order.
        pub const KINDS: &[KindInfo] = &[
            $( KindInfo { kind: Kind::$k, name: stringify!($k), api_version: $v, namespaced: $ns, simulated: $sim }, )*
        ];

        /// Each built-in kind's place in [`KINDS`], so a lookup is a
        /// `match` rather than a scan (every write's key names its kind).
        #[allow(clippy::enum_variant_names)]
        #[repr(usize)]
        enum Place { $( $k, )* }

        impl Kind {
            /// The kind's place in [`KINDS`]; `None` for a custom kind.
            fn place(self) -> Option<usize> {
                match self {
                    $( Kind::$k => Some(Place::$k as usize), )*
                    Kind::Custom(_) => None,
                }
            }
        }
    };
}

kinds! {
    Namespace, "v1", false, true;
    Node, "v1", false, true;
    Pod, "v1", true, true;
    Lease, "coordination.k8s.io/v1", true, true;
    Service, "v1", true, true;
    Endpoints, "v1", true, true;
    ConfigMap, "v1", true, false;
    Secret, "v1", true, false;
    ServiceAccount, "v1", true, false;
    PersistentVolumeClaim, "v1", true, false;
    PersistentVolume, "v1", false, false;
    ReplicationController, "v1", true, false;
    ResourceQuota, "v1", true, false;
    LimitRange, "v1", true, false;
    Event, "v1", true, false;
    Deployment, "apps/v1", true, true;
    ReplicaSet, "apps/v1", true, true;
    StatefulSet, "apps/v1", true, true;
    DaemonSet, "apps/v1", true, true;
    ControllerRevision, "apps/v1", true, true;
    Job, "batch/v1", true, true;
    CronJob, "batch/v1", true, true;
    PodDisruptionBudget, "policy/v1", true, true;
    HorizontalPodAutoscaler, "autoscaling/v2", true, true;
    PriorityClass, "scheduling.k8s.io/v1", false, false;
    ClusterRole, "rbac.authorization.k8s.io/v1", false, false;
    ClusterRoleBinding, "rbac.authorization.k8s.io/v1", false, false;
    Role, "rbac.authorization.k8s.io/v1", true, false;
    RoleBinding, "rbac.authorization.k8s.io/v1", true, false;
    StorageClass, "storage.k8s.io/v1", false, false;
    Ingress, "networking.k8s.io/v1", true, false;
    NetworkPolicy, "networking.k8s.io/v1", true, false;
    EndpointSlice, "discovery.k8s.io/v1", true, false;
    PodTemplate, "v1", true, false;
    IngressClass, "networking.k8s.io/v1", false, false;
    ServiceCIDR, "networking.k8s.io/v1", false, false;
    IPAddress, "networking.k8s.io/v1", false, false;
    ValidatingWebhookConfiguration, "admissionregistration.k8s.io/v1", false, false;
    MutatingWebhookConfiguration, "admissionregistration.k8s.io/v1", false, false;
    ValidatingAdmissionPolicy, "admissionregistration.k8s.io/v1", false, false;
    ValidatingAdmissionPolicyBinding, "admissionregistration.k8s.io/v1", false, false;
    CustomResourceDefinition, "apiextensions.k8s.io/v1", false, false;
    APIService, "apiregistration.k8s.io/v1", false, false;
    RuntimeClass, "node.k8s.io/v1", false, false;
    CSIDriver, "storage.k8s.io/v1", false, false;
    CSINode, "storage.k8s.io/v1", false, false;
    CSIStorageCapacity, "storage.k8s.io/v1", true, false;
    VolumeAttachment, "storage.k8s.io/v1", false, false;
    VolumeAttributesClass, "storage.k8s.io/v1", false, false;
    CertificateSigningRequest, "certificates.k8s.io/v1", false, false;
    FlowSchema, "flowcontrol.apiserver.k8s.io/v1", false, false;
    PriorityLevelConfiguration, "flowcontrol.apiserver.k8s.io/v1", false, false;
    ResourceClaim, "resource.k8s.io/v1", true, true;
    ResourceClaimTemplate, "resource.k8s.io/v1", true, true;
    DeviceClass, "resource.k8s.io/v1", false, true;
    ResourceSlice, "resource.k8s.io/v1", false, true;
}

impl Kind {
    /// The static facts of a built-in kind (`None` for a custom one).
    pub fn builtin(self) -> Option<&'static KindInfo> {
        self.place().map(|i| &KINDS[i])
    }
    pub fn name(self) -> &'static str {
        match self {
            Kind::Custom(c) => &c.info().kind,
            _ => self.builtin().map_or("", |k| k.name),
        }
    }
    pub fn namespaced(self) -> bool {
        match self {
            Kind::Custom(c) => c.info().namespaced,
            _ => self.builtin().is_some_and(|k| k.namespaced),
        }
    }
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Custom(c) => &c.info().api_version,
            _ => self.builtin().map_or("", |k| k.api_version),
        }
    }
    /// A number per built-in kind (its place in [`KINDS`]); every custom
    /// kind shares the one after them. Reflectors derive stream ids from it.
    pub fn ordinal(self) -> u64 {
        self.place().unwrap_or(KINDS.len()) as u64
    }
    /// Whether a component acts on objects of this kind.
    pub fn simulated(self) -> bool {
        self.builtin().is_some_and(|k| k.simulated)
    }
    /// The resource name, as URLs and error messages spell it (`endpoints`,
    /// `networkpolicies`, a CRD's `spec.names.plural`).
    pub fn plural(self) -> String {
        if let Kind::Custom(c) = self {
            return c.info().plural.clone();
        }
        let n = self.name().to_lowercase();
        if self == Kind::Endpoints {
            n
        } else if n.ends_with('s') {
            format!("{n}es")
        } else if let Some(stem) = n.strip_suffix('y') {
            format!("{stem}ies")
        } else {
            format!("{n}s")
        }
    }
    /// `resource.group` as `schema.GroupResource.String()` writes it.
    pub fn group_resource(self) -> String {
        match self.api_version().split_once('/') {
            Some((group, _)) => format!("{}.{group}", self.plural()),
            None => self.plural(),
        }
    }
    /// Finds a kind by its name (`Deployment`), case-sensitively as the API does.
    pub fn from_name(name: &str) -> Option<Kind> {
        KINDS.iter().find(|k| k.name == name).map(|k| k.kind)
    }
}

/// What to do with a document's `apiVersion`/`kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionVerdict {
    /// Served as is.
    Served(Kind),
    /// An older version with the same shape: read as the served version.
    /// `dropped` lists fields of the old version that the served one lacks.
    Converted {
        kind: Kind,
        from: String,
        dropped: &'static [&'static str],
    },
    /// An older version whose shape changed: refused with advice.
    Refused(String),
    /// An `apiVersion` this kind was never served at, or a kind we do not know.
    Unknown(String),
}

/// Decides how to read `api_version`/`kind`.
pub fn resolve_version(api_version: &str, kind: &str) -> VersionVerdict {
    if let Some(k) = Kind::from_name(kind) {
        if k.api_version() == api_version {
            return VersionVerdict::Served(k);
        }
        // autoscaling/v1 HPA is still served next to v2; read both.
        if k == Kind::HorizontalPodAutoscaler && api_version == "autoscaling/v1" {
            return VersionVerdict::Served(k);
        }
        let converted = |dropped| VersionVerdict::Converted {
            kind: k,
            from: api_version.to_string(),
            dropped,
        };
        match (api_version, kind) {
            ("extensions/v1beta1" | "apps/v1beta1" | "apps/v1beta2", "Deployment") => {
                return converted(&["spec.rollbackTo", "spec.templateGeneration"])
            }
            ("extensions/v1beta1" | "apps/v1beta2", "DaemonSet" | "ReplicaSet") => {
                return converted(&["spec.templateGeneration"])
            }
            ("apps/v1beta1" | "apps/v1beta2", "StatefulSet" | "ControllerRevision") => return converted(&[]),
            ("batch/v1beta1" | "batch/v2alpha1", "CronJob") => return converted(&[]),
            ("policy/v1beta1", "PodDisruptionBudget") => {
                // `convert_document` removes an empty selector; the message says why.
                return converted(&["spec.selector when empty (it selected no pods in policy/v1beta1 and would select all in policy/v1)"])
            }
            ("autoscaling/v2beta2", "HorizontalPodAutoscaler") => return converted(&[]),
            ("scheduling.k8s.io/v1beta1" | "scheduling.k8s.io/v1alpha1", "PriorityClass") => return converted(&[]),
            ("coordination.k8s.io/v1beta1", "Lease") => return converted(&[]),
            ("rbac.authorization.k8s.io/v1beta1" | "rbac.authorization.k8s.io/v1alpha1", _) => return converted(&[]),
            ("storage.k8s.io/v1beta1", "StorageClass") => return converted(&[]),
            ("discovery.k8s.io/v1beta1", "EndpointSlice") => return converted(&[]),
            ("autoscaling/v2beta1", "HorizontalPodAutoscaler") => {
                return VersionVerdict::Refused(
                    "autoscaling/v2beta1 HorizontalPodAutoscaler was removed in Kubernetes 1.25 and its metric targets \
                     changed shape (targetAverageUtilization became target.averageUtilization); rewrite it as autoscaling/v2"
                        .into(),
                )
            }
            ("extensions/v1beta1" | "networking.k8s.io/v1beta1", "Ingress") => {
                return VersionVerdict::Refused(
                    "Ingress at this version was removed in Kubernetes 1.22 and its backends changed shape \
                     (serviceName/servicePort became service.name/service.port); rewrite it as networking.k8s.io/v1"
                        .into(),
                )
            }
            _ => {}
        }
        return VersionVerdict::Unknown(format!(
            "{kind} is not served at apiVersion `{api_version}`; use `{}`",
            k.api_version()
        ));
    }
    match kind {
        "PodSecurityPolicy" => VersionVerdict::Refused(
            "PodSecurityPolicy was removed in Kubernetes 1.25 with no replacement kind; use Pod Security Admission labels on the Namespace".into(),
        ),
        _ => VersionVerdict::Unknown(format!("unknown kind `{kind}` (apiVersion `{api_version}`)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_kind_finds_its_own_entry() {
        // The `match` lookup agrees with the table, entry by entry.
        for (i, info) in KINDS.iter().enumerate() {
            assert_eq!(info.kind.builtin().map(|k| k.name), Some(info.name));
            assert_eq!(info.kind.ordinal(), i as u64);
        }
    }

    #[test]
    fn old_versions_are_converted_or_refused() {
        assert_eq!(
            resolve_version("apps/v1", "Deployment"),
            VersionVerdict::Served(Kind::Deployment)
        );
        assert!(matches!(
            resolve_version("batch/v1beta1", "CronJob"),
            VersionVerdict::Converted {
                kind: Kind::CronJob,
                ..
            }
        ));
        assert!(matches!(
            resolve_version("extensions/v1beta1", "Deployment"),
            VersionVerdict::Converted { .. }
        ));
        assert!(matches!(
            resolve_version("autoscaling/v2beta1", "HorizontalPodAutoscaler"),
            VersionVerdict::Refused(_)
        ));
        assert!(matches!(
            resolve_version("v1", "Deployment"),
            VersionVerdict::Unknown(_)
        ));
        assert!(matches!(
            resolve_version("v1", "Gizmo"),
            VersionVerdict::Unknown(_)
        ));
    }
}
