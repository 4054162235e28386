//! The status manager (upstream pkg/kubelet/status): the kubelet's own
//! view of each pod's status, its writes to the apiserver, and the periodic
//! reconciliation that re-posts a status the apiserver lost or another
//! component overwrote.

use super::*;

/// Upstream's `syncPeriod`: every 10 s the status manager compares every
/// pod's status in its pod cache (the watch) with its own (`syncBatch(true)`).
pub(super) const STATUS_SYNC_PERIOD: SimDuration = SimDuration::from_secs(10);

/// Pod conditions the kubelet owns or shares (upstream's
/// `PodConditionByKubelet` and `PodConditionSharedByKubelet`): only these
/// take part in the comparison; other components' conditions are theirs.
const KUBELET_CONDITIONS: [&str; 6] = [
    "PodScheduled",
    "Ready",
    "Initialized",
    "ContainersReady",
    "PodReadyToStartContainers",
    "DisruptionTarget",
];

impl Kubelet {
    /// The status manager: one status write per pod in flight, the latest wins.
    pub(super) fn post_status(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        if rt.posting {
            rt.dirty = true;
            return;
        }
        rt.posting = true;
        rt.dirty = false;
        let mut req = ApiRequest::new(Verb::Patch, Kind::Pod, &rt.key.namespace, &rt.key.name);
        req.patch = Some(PatchOp::PodStatus(Box::new(PodStatus::clone(&rt.status))));
        self.client.request(ctx, req, TAG_POD | slot as u64);
    }

    /// `syncBatch(all=true)` on the sync ticker: a pod whose status in the
    /// kubelet's pod cache differs from the kubelet's own (`needsReconcile`)
    /// has its status posted again. This is what makes a pod Ready again
    /// after the node lifecycle controller marked it NotReady while the node
    /// was unreachable: the kubelet's own status never changed, so nothing
    /// else would post it.
    pub(super) fn sync_pod_statuses(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        for slot in 0..self.pods.len() as u32 {
            let Some(rt) = self.pods[slot as usize].as_ref() else {
                continue;
            };
            // A finished pod whose delete failed: delete it again.
            let deleting = rt.obj.meta.deletion.is_some();
            if deleting && rt.stage == Stage::Done && !rt.posting && !rt.deleted_sent {
                self.finalize_delete(ctx, slot);
                continue;
            }
            // A write in flight, or one acknowledged that the watch has not
            // brought back yet, would be compared with a stale cache.
            if rt.posting || rt.deleted_sent || rt.acked_rv > rt.obj.meta.resource_version {
                continue;
            }
            if rt.in_sync == Some(rt.status.version()) {
                continue;
            }
            let Some(cached) = rt.obj.as_pod() else {
                continue;
            };
            if !needs_reconcile(&cached.status, &rt.status) {
                let version = rt.status.version();
                self.pods[slot as usize].as_mut().expect("slot").in_sync = Some(version);
                continue;
            }
            let key = rt.key.clone();
            self.trace(ctx, "PodStatusReconcile", &key, "");
            self.post_status(ctx, slot);
        }
    }
}

/// Upstream's `isPodStatusByKubeletEqual`, negated: the kubelet's own
/// conditions must match in status, reason and message, and everything else
/// it writes must be equal. `nominatedNodeName` is the scheduler's, kept by
/// the patch, so it is not compared.
fn needs_reconcile(cached: &PodStatus, own: &PodStatus) -> bool {
    let condition_differs = own
        .conditions
        .iter()
        .filter(|c| KUBELET_CONDITIONS.contains(&c.type_))
        .any(|c| {
            cached.condition(c.type_).is_none_or(|o| {
                o.status != c.status || o.reason != c.reason || o.message != c.message
            })
        });
    condition_differs
        || cached.phase != own.phase
        || cached.init_container_statuses != own.init_container_statuses
        || cached.container_statuses != own.container_statuses
        || cached.host_ip != own.host_ip
        || cached.pod_ip != own.pod_ip
        || cached.start_time != own.start_time
        || cached.reason != own.reason
        || cached.message != own.message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(status: bool) -> PodStatus {
        let mut s = PodStatus {
            phase: PodPhase::Running,
            ..Default::default()
        };
        s.set_condition("Ready", status, SimTime::ZERO, None);
        s
    }

    #[test]
    fn a_ready_condition_another_component_flipped_needs_reconcile() {
        assert!(needs_reconcile(&ready(false), &ready(true)));
        assert!(!needs_reconcile(&ready(true), &ready(true)));
    }

    #[test]
    fn conditions_the_kubelet_does_not_own_and_the_nomination_are_ignored() {
        let mut cached = ready(true);
        cached.set_condition("example.com/Gate", false, SimTime::ZERO, None);
        cached.nominated_node_name = Some("w-2".into());
        assert!(!needs_reconcile(&cached, &ready(true)));
        // Transition times are not compared either: only status, reason, message.
        let mut later = ready(true);
        later.conditions[0].last_transition = SimTime::ZERO.after(SimDuration::from_secs(5));
        assert!(!needs_reconcile(&later, &ready(true)));
    }
}
