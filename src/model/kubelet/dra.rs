//! The kubelet's side of DRA: the node's modelled drivers publish their
//! ResourceSlices once the Node is registered (owned by the Node, so they
//! go with it), and before a pod's sandbox is made its claims are fetched
//! and checked (`PrepareDynamicResources`: reserved for this pod, then
//! allocated), then prepared by the driver (`NodePrepareResources`). A
//! failure is the `FailedPrepareDynamicResources` event and another try
//! after the pod worker's 10 s back-off; the pod stays ContainerCreating.

use std::sync::Arc;

use super::{Kubelet, Stage, TAG_CLAIM_GET, TAG_NODE_GET, TAG_SLICE};
use crate::api::{Kind, Object};
use crate::dra::claim::{pod_claim_names, Claim};
use crate::dra::driver::DriverSpec;
use crate::model::apiserver::request::{ApiRequest, ApiResponse, Verb};
use crate::model::msg::{Payload, Timer};
use crate::model::world::World;
use crate::sim::{Ctx, SimDuration};

/// The pod worker's `backOffPeriod` after a failed sync.
pub const PREPARE_RETRY: SimDuration = SimDuration::from_secs(10);

/// A pod's claim checks in flight.
pub(super) struct Preparing {
    pub gen: u32,
    /// The claims, by the index their GET's tag carries.
    pub names: Vec<String>,
    pub left: usize,
    pub error: Option<String>,
}

impl Kubelet {
    /// The node's drivers, with the Node's uid known: publish each slice
    /// (an existing one, a restart's, is left as it is).
    pub(super) fn publish_slices(&mut self, ctx: &mut Ctx<'_, Payload, World>, node_uid: &str) {
        let drivers: Vec<DriverSpec> = self.drivers.iter().cloned().collect();
        for d in drivers {
            let slice = d.resource_slice(&self.node_name, node_uid);
            let mut req = ApiRequest::new(Verb::Create, Kind::ResourceSlice, "", &slice.meta.name);
            req.body = Some(Arc::new(slice));
            self.client.request(ctx, req, TAG_SLICE);
        }
    }

    /// After registering: publish with the uid the answer carries, or
    /// read the Node first (a 409: it was there already).
    pub(super) fn after_register(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        resp: Option<&ApiResponse>,
    ) {
        if self.drivers.is_empty() {
            return;
        }
        match resp
            .and_then(|r| r.object.as_ref())
            .filter(|o| o.kind == Kind::Node)
        {
            Some(node) => {
                let uid = node.meta.uid.clone();
                self.publish_slices(ctx, &uid);
            }
            None => {
                let req = ApiRequest::new(Verb::Get, Kind::Node, "", &self.node_name);
                self.client.request(ctx, req, TAG_NODE_GET);
            }
        }
    }

    /// `PrepareDynamicResources` for the pod in `slot`: GET each claim.
    pub(super) fn prepare_resources(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let Some(rt) = self.pods.get(slot as usize).and_then(Option::as_ref) else {
            return;
        };
        let gen = rt.gen;
        let (key, obj) = (rt.key.clone(), rt.obj.clone());
        let names = match pod_claim_names(&obj) {
            Ok(n) => n,
            Err(_) => {
                let err = format!(
                    "pod \"{}/{}\": ResourceClaim not created yet",
                    key.namespace, key.name
                );
                return self.prepare_failed(ctx, slot, gen, &err);
            }
        };
        for (i, n) in names.iter().enumerate() {
            let req = ApiRequest::new(Verb::Get, Kind::ResourceClaim, &key.namespace, n);
            // A pod has at most 32 claims (the API's limit): six bits.
            let tag = TAG_CLAIM_GET | ((i as u64 & 0x3f) << 35) | u64::from(slot);
            self.client.request(ctx, req, tag);
        }
        self.preparing.insert(
            slot,
            Preparing {
                gen,
                left: names.len(),
                names,
                error: None,
            },
        );
    }

    /// One claim's GET answered.
    pub(super) fn on_claim_get(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        index: usize,
        resp: Option<&ApiResponse>,
    ) {
        let Some(obj) = self
            .pods
            .get(slot as usize)
            .and_then(Option::as_ref)
            .map(|rt| rt.obj.clone())
        else {
            return;
        };
        let Some(p) = self.preparing.get_mut(&slot) else {
            return;
        };
        let name = p.names.get(index).cloned().unwrap_or_default();
        let verdict = check_claim(&obj, &name, resp);
        if let Err(e) = verdict {
            p.error.get_or_insert(e);
        }
        p.left = p.left.saturating_sub(1);
        if p.left > 0 {
            return;
        }
        let p = self.preparing.remove(&slot).expect("looked up above");
        match p.error {
            Some(e) => self.prepare_failed(ctx, slot, p.gen, &e),
            None => {
                // NodePrepareResources, then the sandbox.
                let d = self
                    .drivers
                    .iter()
                    .map(|d| d.prepare)
                    .max()
                    .unwrap_or_default();
                let gen = p.gen;
                ctx.timer(
                    d,
                    Payload::Timer(Timer::DraPrepare {
                        slot,
                        gen,
                        retry: false,
                    }),
                );
            }
        }
    }

    fn prepare_failed(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        gen: u32,
        err: &str,
    ) {
        let Some(key) = self
            .pods
            .get(slot as usize)
            .and_then(Option::as_ref)
            .map(|rt| rt.key.clone())
        else {
            return;
        };
        let msg = format!("Failed to prepare dynamic resources: prepare dynamic resources: {err}");
        self.event(ctx, &key, "Warning", "FailedPrepareDynamicResources", &msg);
        let t = Timer::DraPrepare {
            slot,
            gen,
            retry: true,
        };
        ctx.timer(PREPARE_RETRY, Payload::Timer(t));
    }

    /// The prepare step's timer: try again, or go on to the sandbox.
    pub(super) fn on_prepare_timer(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        gen: u32,
        retry: bool,
    ) {
        let current = self
            .pods
            .get(slot as usize)
            .and_then(Option::as_ref)
            .is_some_and(|rt| rt.gen == gen && rt.stage == Stage::Sandbox);
        if !current {
            return;
        }
        if retry {
            self.prepare_resources(ctx, slot);
        } else {
            self.start_sandbox(ctx, slot);
        }
    }
}

/// The kubelet's checks, in its order: the claim is there, reserved for
/// this pod, and allocated.
fn check_claim(pod: &Object, name: &str, resp: Option<&ApiResponse>) -> Result<(), String> {
    let r = resp.ok_or_else(|| format!("fetch ResourceClaim {name}: the request timed out"))?;
    if !r.ok() {
        return Err(format!("fetch ResourceClaim {name}: {}", r.message));
    }
    let obj = r
        .object
        .as_ref()
        .ok_or_else(|| format!("fetch ResourceClaim {name}: empty answer"))?;
    let claim =
        Claim::from_object(obj).map_err(|(f, m)| format!("ResourceClaim {name}: {f}: {m}"))?;
    if !claim.reserved_for_pod(&pod.meta.uid) {
        return Err(format!(
            "pod {} ({}) is not allowed to use ResourceClaim {name} ({})",
            pod.meta.name, pod.meta.uid, claim.uid
        ));
    }
    if claim.allocation.is_none() {
        return Err(format!("ResourceClaim {name}: not allocated"));
    }
    Ok(())
}
