//! DynamicResources (GA in v1.34): the scheduler's view of ResourceClaims,
//! ResourceSlices and DeviceClasses, and the plugin's PreFilter, Filter
//! and Reserve over it. PreBind (writing `status.allocation` and
//! `status.reservedFor` with one UpdateStatus) is the component's, as it
//! talks to the apiserver.
//!
//! Claims allocated in Reserve are *in flight* until their PreBind write
//! answers, then *assumed* until the informer delivers that version, so a
//! device is never handed out twice in between (upstream's assume cache
//! and `inFlightAllocations`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::api::{Kind, Object, ObjectKey};
use crate::dra::allocator::{self, DeviceKey, MemoSlice, Refusal};
use crate::dra::cel::Env;
use crate::dra::claim::{pod_claim_names, Allocation, Claim, DeviceClass};
use crate::dra::device::Slice;
use crate::scheduler::node_info::NodeSnapshot;

/// One claim as the scheduler holds it: the object, and its parse (a
/// claim kubesim cannot read is never allocated).
#[derive(Clone)]
struct Held {
    obj: Arc<Object>,
    claim: Option<Arc<Claim>>,
}

impl Held {
    fn new(obj: Arc<Object>) -> Held {
        let claim = Claim::from_object(&obj).ok().map(Arc::new);
        Held { obj, claim }
    }
}

/// The DRA informers' objects, and the allocations not yet seen back.
#[derive(Default)]
pub struct DraCache {
    claims: BTreeMap<ObjectKey, Held>,
    /// Written by PreBind, newer than the informer's copy (by resourceVersion).
    assumed: BTreeMap<ObjectKey, Held>,
    /// Allocated in Reserve, PreBind not answered yet.
    pub in_flight: BTreeMap<ObjectKey, Allocation>,
    slices: BTreeMap<String, Arc<MemoSlice>>,
    classes: BTreeMap<String, Arc<DeviceClass>>,
}

/// The kinds the plugin's informers watch.
pub const KINDS: [Kind; 3] = [Kind::ResourceClaim, Kind::ResourceSlice, Kind::DeviceClass];

impl DraCache {
    pub fn clear(&mut self) {
        *self = DraCache::default();
    }

    /// One watched change (`deleted`: a delete event).
    pub fn apply(&mut self, obj: Arc<Object>, deleted: bool) {
        let key = obj.key();
        match obj.kind {
            Kind::ResourceClaim if deleted => {
                self.claims.remove(&key);
                self.assumed.remove(&key);
            }
            Kind::ResourceClaim => {
                let newer = self
                    .assumed
                    .get(&key)
                    .is_some_and(|a| a.obj.meta.resource_version > obj.meta.resource_version);
                if !newer {
                    self.assumed.remove(&key);
                }
                self.claims.insert(key, Held::new(obj));
            }
            Kind::ResourceSlice if deleted => {
                self.slices.remove(&key.name);
            }
            Kind::ResourceSlice => match Slice::from_object(&obj) {
                Ok(s) => {
                    self.slices.insert(key.name, Arc::new(MemoSlice::new(s)));
                }
                Err(_) => {
                    self.slices.remove(&key.name);
                }
            },
            Kind::DeviceClass if deleted => {
                self.classes.remove(&key.name);
            }
            Kind::DeviceClass => match DeviceClass::from_object(&obj) {
                Ok(c) => {
                    self.classes.insert(key.name, Arc::new(c));
                }
                Err(_) => {
                    self.classes.remove(&key.name);
                }
            },
            _ => {}
        }
    }

    /// A relist of `kind`: what the list lacks is gone.
    pub fn replace(&mut self, kind: Kind, items: Vec<Arc<Object>>) {
        match kind {
            Kind::ResourceClaim => self.claims.clear(),
            Kind::ResourceSlice => self.slices.clear(),
            Kind::DeviceClass => self.classes.clear(),
            _ => return,
        }
        for o in items {
            self.apply(o, false);
        }
    }

    /// A PreBind write answered with `obj`: the claim as written.
    pub fn assume(&mut self, obj: Arc<Object>) {
        let key = obj.key();
        self.in_flight.remove(&key);
        let informer_rv = self
            .claims
            .get(&key)
            .map_or(0, |h| h.obj.meta.resource_version);
        if obj.meta.resource_version > informer_rv {
            self.assumed.insert(key, Held::new(obj));
        }
    }

    fn held(&self, key: &ObjectKey) -> Option<&Held> {
        self.assumed.get(key).or_else(|| self.claims.get(key))
    }

    /// Every device an allocated or in-flight claim holds.
    fn allocated_devices(&self) -> BTreeSet<DeviceKey> {
        let written = self
            .claims
            .keys()
            .filter_map(|k| self.held(k)?.claim.as_ref());
        let allocations = written
            .filter_map(|c| c.allocation.as_ref())
            .chain(self.in_flight.values());
        allocations
            .flat_map(|a| a.results.iter())
            .map(|r| (r.driver.clone(), r.pool.clone(), r.device.clone()))
            .collect()
    }

    /// PreFilter for `pod`: `Ok(None)` when it has no claims (Skip), else
    /// its claims with what each still needs; `Err` is the status message.
    pub fn prefilter(&self, pod: &Object) -> Result<Option<DraCycle>, String> {
        let (ns, name) = (&pod.meta.namespace, &pod.meta.name);
        let Some(spec) = pod
            .as_pod()
            .and_then(|p| p.spec.api.resource_claims.as_ref())
        else {
            return Ok(None);
        };
        if spec.is_empty() {
            return Ok(None);
        }
        let names = pod_claim_names(pod)
            .map_err(|_| format!("pod \"{ns}/{name}\": ResourceClaim not created yet"))?;
        let mut claims = Vec::new();
        for (entry, claim_name) in spec.iter().zip(&names) {
            let key = ObjectKey {
                kind: Kind::ResourceClaim,
                namespace: ns.clone(),
                name: claim_name.clone(),
            };
            let held = self
                .held(&key)
                .ok_or_else(|| format!("could not find ResourceClaim \"{ns}/{claim_name}\""))?;
            if held.obj.meta.deletion.is_some() {
                return Err(format!("resourceclaim \"{claim_name}\" is being deleted"));
            }
            let owned = held
                .obj
                .meta
                .owner_references
                .iter()
                .any(|r| r.controller && r.uid == pod.meta.uid);
            if entry.resource_claim_template_name.is_some() && !owned {
                return Err(format!(
                    "ResourceClaim {ns}/{claim_name} was not created for pod {ns}/{name} (pod is not owner)"
                ));
            }
            let claim = held.claim.clone().ok_or_else(|| {
                format!("resourceclaim \"{claim_name}\": kubesim cannot read its spec")
            })?;
            if claim.allocation.is_none() {
                if self.in_flight.contains_key(&key) {
                    return Err(format!(
                        "resource claim {ns}/{claim_name} is in the process of being allocated"
                    ));
                }
                for r in &claim.requests {
                    if !self.classes.contains_key(&r.class) {
                        return Err(format!(
                            "request {}: device class {} does not exist",
                            r.name, r.class
                        ));
                    }
                }
            }
            claims.push((key, held.obj.clone(), claim));
        }
        Ok(Some(DraCycle {
            claims,
            in_use: self.allocated_devices(),
            slices: self.slices.values().cloned().collect(),
            classes: self.classes.clone(),
            env: Env::default(),
        }))
    }
}

/// One cycle's DRA state: the pod's claims, and the devices taken.
pub struct DraCycle {
    /// Claim key, object (to write back) and parse, in the pod's order.
    pub claims: Vec<(ObjectKey, Arc<Object>, Arc<Claim>)>,
    in_use: BTreeSet<DeviceKey>,
    slices: Vec<Arc<MemoSlice>>,
    classes: BTreeMap<String, Arc<DeviceClass>>,
    env: Env,
}

/// Filter's verdict on a node: the reason, and whether it is unresolvable.
pub type Rejection = (String, bool);

impl DraCycle {
    fn to_allocate(&self) -> Vec<&Claim> {
        self.claims
            .iter()
            .map(|(_, _, c)| &**c)
            .filter(|c| c.allocation.is_none())
            .collect()
    }

    /// Filter: claims allocated elsewhere rule the node out; the rest
    /// must be allocatable from its devices.
    pub fn filter(&self, node: &NodeSnapshot) -> Result<(), Rejection> {
        let elsewhere = self.claims.iter().any(|(_, _, c)| {
            c.allocation
                .as_ref()
                .is_some_and(|a| a.node.as_ref().is_some_and(|n| *n != node.name))
        });
        let pending = self.to_allocate();
        if !pending.is_empty() {
            self.allocate_on(&pending, &node.name)?;
        }
        if elsewhere {
            return Err(("resourceclaim not available on the node".into(), true));
        }
        Ok(())
    }

    fn allocate_on(&self, pending: &[&Claim], node: &str) -> Result<Vec<Allocation>, Rejection> {
        allocator::allocate(
            &self.env,
            pending,
            &self.classes,
            node,
            &self.slices,
            &self.in_use,
        )
        .map_err(|r| match r {
            Refusal::Insufficient => ("cannot allocate all claims".into(), true),
            Refusal::Error(e) => (e, true),
        })
    }

    /// Reserve on `node`: the allocation of each claim not yet allocated.
    pub fn reserve(&self, node: &str) -> Vec<(ObjectKey, Allocation)> {
        let pending = self.to_allocate();
        let Ok(allocations) = self.allocate_on(&pending, node) else {
            return Vec::new();
        };
        let keys = self
            .claims
            .iter()
            .filter(|(_, _, c)| c.allocation.is_none())
            .map(|(k, _, _)| k.clone());
        keys.zip(allocations).collect()
    }
}
