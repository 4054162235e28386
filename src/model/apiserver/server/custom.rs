//! Custom resources are served only while their CustomResourceDefinition
//! is: the apiextensions-apiserver installs a CRD's REST handler when the
//! CRD is stored and removes it when the CRD goes, so a request for a kind
//! whose CRD is absent finds no handler.

use super::ApiServer;
use crate::api::{Kind, ObjectKey};
use crate::model::apiserver::request::{ApiRequest, ApiResponse};

impl ApiServer {
    /// The 404 a request for a custom kind gets when its CRD
    /// (`<plural>.<group>`) is not in the watch cache.
    pub(super) fn unserved_custom_kind(&self, req: &ApiRequest, kind: Kind) -> Option<ApiResponse> {
        let Kind::Custom(c) = kind else { return None };
        let crd = ObjectKey {
            kind: Kind::CustomResourceDefinition,
            namespace: String::new(),
            name: format!("{}.{}", c.info().plural, c.group()),
        };
        (!self.cache.contains_key(&crd)).then(|| {
            ApiServer::error(
                req.id,
                404,
                "NotFound",
                "the server could not find the requested resource".into(),
            )
        })
    }
}
