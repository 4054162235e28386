//! No write acknowledged to a client is missing from the final history: a
//! 2xx answer to a create, update, patch, delete, bind, eviction or
//! finalize names a resourceVersion, and etcd must have committed that
//! revision for that object (the group's history is what etcd applied,
//! every revision once; nothing applied is ever undone, so what was
//! committed when the answer arrived is in the final history).
//!
//! An answer that wrote nothing (a no-op patch, a repeated delete) names
//! the object's current revision, an older commit of the same object, and
//! passes the same check. Revisions older than [`WINDOW`] are forgotten
//! (an answer naming one is not judged), and the bootstrap namespaces,
//! restored from a snapshot rather than committed, are never judged.

use std::collections::VecDeque;
use std::sync::Arc;

use super::read::write_ref;
use super::Checker;
use crate::api::{Object, ObjectKey};
use crate::faults::observe::{Observation, RecordRef, Violation};
use crate::model::apiserver::request::{ApiRequest, ApiResponse};
use crate::sim::{SimDuration, SimTime};

const NAME: &str = "acked-writes";

/// How long a commit is kept to judge answers naming it: far beyond any
/// client's request timeout, so only no-op answers about old objects go
/// unjudged.
pub const WINDOW: SimDuration = SimDuration::from_secs(600);

#[derive(Default)]
pub struct AckedWrites {
    /// (revision, commit time, the object written or deleted), in
    /// revision order.
    committed: VecDeque<(u64, SimTime, Arc<Object>)>,
    /// The first revision ever committed: answers below it name snapshot
    /// objects.
    first: Option<u64>,
}

impl AckedWrites {
    fn acked(&self, at: SimTime, req: &ApiRequest, resp: &ApiResponse, out: &mut Vec<Violation>) {
        let rv = resp.resource_version;
        let oldest = self.committed.front().map_or(u64::MAX, |c| c.0);
        if rv == 0 || self.first.is_none_or(|f| rv < f) || rv < oldest {
            return;
        }
        // The object the answer is about: its body when it has one (a
        // create's generated name), else the request's.
        let (kind, ns, name) = match &resp.object {
            Some(o) => (o.kind, o.meta.namespace.as_str(), o.meta.name.as_str()),
            None => (req.kind, req.namespace.as_str(), req.name.as_str()),
        };
        let found = self
            .committed
            .binary_search_by_key(&rv, |c| c.0)
            .ok()
            .map(|i| &self.committed[i].2);
        let same =
            found.is_some_and(|o| o.kind == kind && o.meta.namespace == ns && o.meta.name == name);
        if same {
            return;
        }
        let key = ObjectKey {
            kind,
            namespace: ns.to_string(),
            name: name.to_string(),
        };
        let what = match found {
            Some(o) => format!("etcd committed {} at that revision", o.key()),
            None => "etcd never committed that revision".to_string(),
        };
        let mut records = vec![RecordRef {
            at,
            event: "Request",
            key: Some(key.to_string()),
            rv: Some(rv),
        }];
        if let Some(o) = found {
            records.push(write_ref(at, &o.key(), rv));
        }
        out.push(Violation {
            checker: NAME,
            at,
            objects: vec![key.to_string()],
            message: format!(
                "{} of {key} was answered {} at resourceVersion {rv}, but {what}",
                req.verb.as_str(),
                resp.code
            ),
            records,
        });
    }
}

impl Checker for AckedWrites {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, at: SimTime, o: &Observation<'_>, out: &mut Vec<Violation>) {
        match *o {
            Observation::Committed(c) => {
                let Some(obj) = c.value.as_ref().or(c.prev.as_ref()) else {
                    return;
                };
                self.first.get_or_insert(c.revision);
                self.committed.push_back((c.revision, at, obj.clone()));
                while self
                    .committed
                    .front()
                    .is_some_and(|f| at.since(f.1) > WINDOW)
                {
                    self.committed.pop_front();
                }
            }
            Observation::Acked { req, resp, .. } => self.acked(at, req, resp, out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::read::fixtures::{change, pod};
    use super::*;
    use crate::api::Kind;
    use crate::model::apiserver::request::Verb;

    fn answer(rv: u64) -> ApiResponse {
        ApiResponse {
            id: 1,
            code: 200,
            reason: "",
            message: String::new(),
            cause: String::new(),
            retry_after: None,
            object: None,
            items: Vec::new(),
            resource_version: rv,
        }
    }

    #[test]
    fn an_answer_naming_another_objects_revision_is_caught() {
        let mut c = AckedWrites::default();
        let mut out = Vec::new();
        let (a, b) = (pod("a", 1, None), pod("b", 1, None));
        c.observe(
            SimTime(1),
            &Observation::Committed(&change(10, None, Some(&a))),
            &mut out,
        );
        c.observe(
            SimTime(1),
            &Observation::Committed(&change(11, None, Some(&b))),
            &mut out,
        );
        let req = ApiRequest::new(Verb::Patch, Kind::Pod, "default", "a");
        let mut ack = |resp: &ApiResponse, out: &mut Vec<Violation>| {
            let o = Observation::Acked {
                client: 1,
                req: &req,
                resp,
            };
            c.observe(SimTime(2), &o, out);
        };
        // a at 10: committed so.
        ack(&answer(10), &mut out);
        assert!(out.is_empty());
        // a at 11: that revision wrote b.
        ack(&answer(11), &mut out);
        // a at 12: never committed.
        ack(&answer(12), &mut out);
        assert_eq!(out.len(), 2);
        assert!(
            out[0].message.contains("committed Pod/default/b"),
            "{}",
            out[0]
        );
        assert!(out[1].message.contains("never committed"), "{}", out[1]);
    }
}
