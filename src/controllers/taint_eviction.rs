//! The taint eviction controller (the NoExecute taint manager): a pod on a
//! node with NoExecute taints it does not tolerate is deleted at once; one
//! that tolerates them for a while (the 300 s DefaultTolerationSeconds adds)
//! is deleted when the shortest of those tolerations runs out, counted from
//! when the controller first saw the taint on its node. Before deleting it
//! marks the pod with the DisruptionTarget condition.

use std::collections::BTreeMap;

use super::cache::{Cache, CacheEvent};
use super::controller::{Controller, SyncCtx};
use super::workload::{key_of, split_key};
use super::workqueue::WorkQueue;
use crate::api::node::Taint;
use crate::api::pod::Condition;
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, PatchOp, Verb};
use crate::scheduler::plugins::taint_toleration::Toleration;
use crate::sim::{SimDuration, SimTime};

/// When the pod must go: `Some(ZERO)` now, `Some(d)` after `d`, `None` never.
pub fn eviction_delay(
    tolerations: &[(Toleration, Option<i64>)],
    taints: &[Taint],
) -> Option<SimDuration> {
    let mut min: Option<i64> = None;
    let mut bounded = false;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let used: Vec<&Option<i64>> = tolerations
            .iter()
            .filter(|(t, _)| t.tolerates(taint))
            .map(|(_, s)| s)
            .collect();
        if used.is_empty() {
            return Some(SimDuration::ZERO);
        }
        for s in used.into_iter().flatten() {
            bounded = true;
            min = Some(min.map_or(*s, |m| m.min(*s)));
        }
    }
    bounded.then(|| SimDuration::from_secs(min.unwrap_or(0).max(0) as u64))
}

fn tolerations_of(pod: &Object) -> Vec<(Toleration, Option<i64>)> {
    let Some(p) = pod.as_pod() else {
        return Vec::new();
    };
    p.spec
        .api
        .tolerations
        .iter()
        .flatten()
        .map(|t| (Toleration::from_api(t), t.toleration_seconds))
        .collect()
}

#[derive(Default)]
pub struct TaintEvictionController {
    /// Pod key → when its eviction was scheduled to happen.
    due: BTreeMap<String, SimTime>,
}

impl TaintEvictionController {
    fn consider(&mut self, pod: &Object, cache: &Cache, queue: &mut WorkQueue, now: SimTime) {
        let key = key_of(pod);
        let node = pod.as_pod().and_then(|p| p.node_name.clone());
        let taints = node
            .and_then(|n| cache.get(Kind::Node, "", &n).cloned())
            .and_then(|n| n.as_node().map(|b| b.taints.clone()))
            .unwrap_or_default();
        if pod.meta.deletion.is_some() {
            self.due.remove(&key);
            return;
        }
        match eviction_delay(&tolerations_of(pod), &taints) {
            None => {
                self.due.remove(&key);
            }
            Some(d) => {
                let at = now.after(d);
                match self.due.get(&key) {
                    Some(prev) if *prev <= at => {}
                    _ => {
                        self.due.insert(key.clone(), at);
                        queue.add_after(&key, d, now);
                    }
                }
            }
        }
    }
}

impl Controller for TaintEvictionController {
    fn name(&self) -> &'static str {
        "taint-eviction-controller"
    }

    fn workers(&self) -> usize {
        8
    }

    fn on_event(&mut self, ev: &CacheEvent, cache: &Cache, queue: &mut WorkQueue, now: SimTime) {
        match (ev.kind, &ev.new) {
            (Kind::Pod, None) => {
                self.due.remove(&key_of(ev.object()));
            }
            (Kind::Pod, Some(p)) => self.consider(p, cache, queue, now),
            (Kind::Node, Some(n)) => {
                let changed = ev.old.as_ref().and_then(|o| o.as_node().map(|b| &b.taints))
                    != n.as_node().map(|b| &b.taints);
                if !changed {
                    return;
                }
                let pods: Vec<_> = cache
                    .list_all(Kind::Pod)
                    .filter(|p| {
                        p.as_pod().and_then(|b| b.node_name.as_deref()) == Some(&n.meta.name)
                    })
                    .cloned()
                    .collect();
                for p in pods {
                    self.consider(&p, cache, queue, now);
                }
            }
            _ => {}
        }
    }

    fn sync(&mut self, key: &str, cx: &mut SyncCtx<'_>) {
        let Some(at) = self.due.get(key).copied() else {
            return;
        };
        if at > cx.now {
            cx.requeue_after(at.since(cx.now));
            return;
        }
        self.due.remove(key);
        let (ns, name) = split_key(key);
        let Some(pod) = cx.cache.get(Kind::Pod, ns, name).cloned() else {
            return;
        };
        cx.event(
            &pod,
            "Normal",
            "TaintManagerEviction",
            format!("Marking for deletion Pod {key}"),
        );
        let mut mark = ApiRequest::new(Verb::Patch, Kind::Pod, ns, name);
        mark.patch = Some(PatchOp::PodCondition {
            condition: Condition {
                type_: "DisruptionTarget",
                status: true,
                last_transition: cx.now,
                reason: Some("DeletionByTaintManager".into()),
                message: Some("Taint manager: deleting due to NoExecute taint".into()),
            },
            nominated_node: None,
        });
        cx.send(mark);
        cx.send(ApiRequest::new(Verb::Delete, Kind::Pod, ns, name));
    }

    fn reset(&mut self) {
        self.due.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str) -> Taint {
        Taint {
            key: key.into(),
            value: String::new(),
            effect: "NoExecute".into(),
            time_added: None,
        }
    }

    #[test]
    fn untolerated_now_tolerated_after_the_shortest_seconds_forever_without_seconds() {
        let t = |key: &str, secs: Option<i64>| {
            (
                Toleration {
                    key: key.into(),
                    operator: "Exists".into(),
                    value: String::new(),
                    effect: "NoExecute".into(),
                },
                secs,
            )
        };
        let unreachable = [taint("node.kubernetes.io/unreachable")];
        assert_eq!(eviction_delay(&[], &unreachable), Some(SimDuration::ZERO));
        let tols = [
            t("node.kubernetes.io/unreachable", Some(300)),
            t("", Some(60)),
        ];
        assert_eq!(
            eviction_delay(&tols, &unreachable),
            Some(SimDuration::from_secs(60))
        );
        assert_eq!(eviction_delay(&[t("", None)], &unreachable), None);
        assert_eq!(eviction_delay(&tols, &[]), None);
    }
}
