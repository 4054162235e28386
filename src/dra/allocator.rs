//! Upstream's structured allocator, for one node: the claims a pod still
//! needs allocated, against the devices of the ResourceSlices reachable
//! from the node that no allocated claim holds. Requests are taken in
//! order (claims in the pod's order, requests in the claim's), devices in
//! slice-name and then device order, and a request that cannot be met
//! backtracks into the choices before it, as upstream's depth-first search
//! does.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use super::cel::Env;
use super::claim::{Allocation, Claim, DeviceClass, DeviceResult, Mode, Request};
use super::device::Slice;

/// A device as the allocator names it: (driver, pool, device).
pub type DeviceKey = (String, String, String);

/// A selector's verdict on one device (`Err`: a CEL runtime error).
type Verdict = Result<bool, String>;

/// A request of the pod's claims (by claim index) and the devices it may take.
type Want<'a> = (usize, &'a Request, Vec<(usize, usize)>);

/// A slice with its selectors' verdicts per device, kept as long as the
/// slice is unchanged (the scheduler re-reads a slice when it changes),
/// so a selector runs once per device and not once per cycle.
#[derive(Debug)]
pub struct MemoSlice {
    pub slice: Slice,
    memo: Mutex<HashMap<String, Vec<Option<Verdict>>>>,
}

impl MemoSlice {
    pub fn new(slice: Slice) -> MemoSlice {
        MemoSlice {
            slice,
            memo: Mutex::new(HashMap::new()),
        }
    }

    fn matches(
        &self,
        env: &Env,
        sel: &super::cel::Selector,
        device: usize,
    ) -> Result<bool, String> {
        let mut memo = self
            .memo
            .lock()
            .expect("not poisoned: evaluation does not panic");
        let n = self.slice.devices.len();
        let entry = memo
            .entry(sel.expression.clone())
            .or_insert_with(|| vec![None; n]);
        if let Some(v) = &entry[device] {
            return v.clone();
        }
        let v = env.matches(sel, &self.slice.driver, &self.slice.devices[device]);
        entry[device] = Some(v.clone());
        v
    }
}

/// Search steps before an allocation attempt gives up on a node (the
/// real allocator is bounded by the scheduler's filter timeout instead).
const MAX_STEPS: usize = 100_000;

/// Why a node cannot take the pod's claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not enough free matching devices: `cannot allocate all claims`.
    Insufficient,
    /// A class is missing or a selector failed: no node can help.
    Error(String),
}

/// The slices usable from `node`: reachable, and of a complete pool's
/// newest generation (a pool published in several slices is used only
/// once all of them are there).
pub fn usable<'a>(slices: &'a [Arc<MemoSlice>], node: &str) -> Vec<&'a Arc<MemoSlice>> {
    let mut pools: BTreeMap<(&str, &str), (i64, i64, i64)> = BTreeMap::new();
    for s in slices
        .iter()
        .map(|m| &m.slice)
        .filter(|s| s.reachable_from(node))
    {
        let e = pools
            .entry((&s.driver, &s.pool))
            .or_insert((s.generation, s.slice_count, 0));
        if s.generation > e.0 {
            *e = (s.generation, s.slice_count, 0);
        }
        if s.generation == e.0 {
            e.2 += 1;
        }
    }
    slices
        .iter()
        .filter(|m| m.slice.reachable_from(node))
        .filter(|m| {
            let s = &m.slice;
            pools
                .get(&(s.driver.as_str(), s.pool.as_str()))
                .is_some_and(|&(g, count, seen)| s.generation == g && seen == count)
        })
        .collect()
}

/// The devices `request` may take: (slice, device) pairs, in order.
fn candidates(
    env: &Env,
    request: &Request,
    class: &DeviceClass,
    slices: &[&Arc<MemoSlice>],
) -> Result<Vec<(usize, usize)>, String> {
    let mut out = Vec::new();
    for (si, s) in slices.iter().enumerate() {
        'device: for di in 0..s.slice.devices.len() {
            for sel in class.selectors.iter().chain(&request.selectors) {
                if !s.matches(env, sel, di)? {
                    continue 'device;
                }
            }
            out.push((si, di));
        }
    }
    Ok(out)
}

fn key(slices: &[&Arc<MemoSlice>], (si, di): (usize, usize)) -> DeviceKey {
    let s = &slices[si].slice;
    (s.driver.clone(), s.pool.clone(), s.devices[di].name.clone())
}

/// Allocates `claims` on `node`: one allocation per claim, in order.
pub fn allocate(
    env: &Env,
    claims: &[&Claim],
    classes: &BTreeMap<String, Arc<DeviceClass>>,
    node: &str,
    slices: &[Arc<MemoSlice>],
    in_use: &BTreeSet<DeviceKey>,
) -> Result<Vec<Allocation>, Refusal> {
    let slices = usable(slices, node);
    // Every request with its candidate devices; `All` requests are fixed.
    let mut wants: Vec<Want<'_>> = Vec::new();
    for (ci, claim) in claims.iter().enumerate() {
        for r in &claim.requests {
            let class = classes.get(&r.class).ok_or_else(|| {
                Refusal::Error(format!(
                    "request {}: device class {} does not exist",
                    r.name, r.class
                ))
            })?;
            let found = candidates(env, r, class, &slices).map_err(|e| {
                Refusal::Error(format!("claim {}, request {}: {e}", claim.name, r.name))
            })?;
            wants.push((ci, r, found));
        }
    }
    let mut taken: BTreeSet<DeviceKey> = in_use.clone();
    let mut picks: Vec<Vec<(usize, usize)>> = vec![Vec::new(); wants.len()];
    let mut steps = 0usize;
    if !search(&slices, &wants, 0, &mut taken, &mut picks, &mut steps) {
        return Err(Refusal::Insufficient);
    }
    let mut out: Vec<Allocation> = claims
        .iter()
        .map(|_| Allocation {
            results: Vec::new(),
            node: None,
        })
        .collect();
    for ((ci, r, _), chosen) in wants.iter().zip(&picks) {
        for &(si, di) in chosen {
            let s = &slices[si].slice;
            out[*ci].results.push(DeviceResult {
                request: r.name.clone(),
                driver: s.driver.clone(),
                pool: s.pool.clone(),
                device: s.devices[di].name.clone(),
            });
            if s.node.is_some() {
                out[*ci].node = Some(node.to_string());
            }
        }
    }
    Ok(out)
}

/// Depth-first over requests: request `i` takes its devices, then the
/// rest are tried; on failure the next choice for `i` is tried.
fn search(
    slices: &[&Arc<MemoSlice>],
    wants: &[Want<'_>],
    i: usize,
    taken: &mut BTreeSet<DeviceKey>,
    picks: &mut [Vec<(usize, usize)>],
    steps: &mut usize,
) -> bool {
    let Some((_, request, found)) = wants.get(i) else {
        return true;
    };
    *steps += 1;
    if *steps > MAX_STEPS {
        return false;
    }
    match request.mode {
        Mode::All => {
            let keys: Vec<DeviceKey> = found.iter().map(|&d| key(slices, d)).collect();
            if found.is_empty() || keys.iter().any(|k| taken.contains(k)) {
                return false;
            }
            taken.extend(keys.iter().cloned());
            picks[i] = found.clone();
            if search(slices, wants, i + 1, taken, picks, steps) {
                return true;
            }
            for k in &keys {
                taken.remove(k);
            }
            picks[i].clear();
            false
        }
        Mode::ExactCount(n) => choose(slices, wants, i, n as usize, 0, taken, picks, steps),
    }
}

/// Request `i` still needs `left` devices, chosen from `found[from..]`.
#[allow(clippy::too_many_arguments)]
fn choose(
    slices: &[&Arc<MemoSlice>],
    wants: &[Want<'_>],
    i: usize,
    left: usize,
    from: usize,
    taken: &mut BTreeSet<DeviceKey>,
    picks: &mut [Vec<(usize, usize)>],
    steps: &mut usize,
) -> bool {
    if left == 0 {
        return search(slices, wants, i + 1, taken, picks, steps);
    }
    let found = &wants[i].2;
    for j in from..found.len() {
        *steps += 1;
        if *steps > MAX_STEPS || found.len() - j < left {
            return false;
        }
        let k = key(slices, found[j]);
        if taken.contains(&k) {
            continue;
        }
        taken.insert(k.clone());
        picks[i].push(found[j]);
        if choose(slices, wants, i, left - 1, j + 1, taken, picks, steps) {
            return true;
        }
        picks[i].pop();
        taken.remove(&k);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dra::cel::compile;
    use crate::dra::device::{AttrValue, Device};

    fn slice(node: &str, models: &[&str]) -> Arc<MemoSlice> {
        let devices = models
            .iter()
            .enumerate()
            .map(|(i, m)| Device {
                name: format!("gpu-{i}"),
                attributes: [(
                    "gpu.example.com/model".to_string(),
                    AttrValue::Str(m.to_string()),
                )]
                .into_iter()
                .collect(),
                capacity: BTreeMap::new(),
            })
            .collect();
        Arc::new(MemoSlice::new(Slice {
            name: format!("{node}-gpu"),
            driver: "gpu.example.com".into(),
            pool: node.into(),
            generation: 1,
            slice_count: 1,
            node: Some(node.into()),
            all_nodes: false,
            devices,
        }))
    }

    fn claim(name: &str, reqs: &[(&str, Mode, Option<&str>)]) -> Claim {
        Claim {
            namespace: "default".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            resource_version: 1,
            requests: reqs
                .iter()
                .map(|(n, mode, model)| Request {
                    name: n.to_string(),
                    class: "gpu".into(),
                    selectors: model
                        .map(|m| {
                            compile(&format!(
                                "device.attributes[\"gpu.example.com\"].model == \"{m}\""
                            ))
                            .unwrap()
                        })
                        .into_iter()
                        .collect(),
                    mode: *mode,
                })
                .collect(),
            allocation: None,
            reserved_for: Vec::new(),
            deleting: false,
        }
    }

    fn classes() -> BTreeMap<String, Arc<DeviceClass>> {
        let sel = compile("device.driver == \"gpu.example.com\"").unwrap();
        [(
            "gpu".to_string(),
            Arc::new(DeviceClass {
                name: "gpu".into(),
                selectors: vec![sel],
            }),
        )]
        .into_iter()
        .collect()
    }

    #[test]
    fn exact_count_takes_free_devices_in_order() {
        let slices = vec![slice("n1", &["T4", "T4", "A100"])];
        let c = claim("c", &[("gpu", Mode::ExactCount(2), None)]);
        let in_use: BTreeSet<DeviceKey> = [("gpu.example.com".into(), "n1".into(), "gpu-0".into())]
            .into_iter()
            .collect();
        let a = allocate(&Env::default(), &[&c], &classes(), "n1", &slices, &in_use).unwrap();
        let devices: Vec<&str> = a[0].results.iter().map(|r| r.device.as_str()).collect();
        // gpu-0 is in use: the next two in order.
        assert_eq!(devices, ["gpu-1", "gpu-2"]);
        assert_eq!(a[0].node.as_deref(), Some("n1"));
        let three = claim("c", &[("gpu", Mode::ExactCount(3), None)]);
        let r = allocate(
            &Env::default(),
            &[&three],
            &classes(),
            "n1",
            &slices,
            &in_use,
        );
        assert_eq!(r, Err(Refusal::Insufficient));
        // Another node's slice is not reachable.
        let r = allocate(
            &Env::default(),
            &[&c],
            &classes(),
            "n2",
            &slices,
            &BTreeSet::new(),
        );
        assert_eq!(r, Err(Refusal::Insufficient));
    }

    #[test]
    fn a_later_request_backtracks_into_an_earlier_choice() {
        // "any" would greedily take gpu-0 (the only A100); "a100" needs it,
        // so the search moves "any" on to gpu-1.
        let slices = vec![slice("n1", &["A100", "T4"])];
        let c = claim(
            "c",
            &[
                ("any", Mode::ExactCount(1), None),
                ("a100", Mode::ExactCount(1), Some("A100")),
            ],
        );
        let a = allocate(
            &Env::default(),
            &[&c],
            &classes(),
            "n1",
            &slices,
            &BTreeSet::new(),
        )
        .unwrap();
        let got: Vec<(&str, &str)> = a[0]
            .results
            .iter()
            .map(|r| (r.request.as_str(), r.device.as_str()))
            .collect();
        assert_eq!(got, [("any", "gpu-1"), ("a100", "gpu-0")]);
    }

    #[test]
    fn all_mode_needs_every_matching_device_free() {
        let slices = vec![slice("n1", &["T4", "T4", "A100"])];
        let c = claim("c", &[("t4s", Mode::All, Some("T4"))]);
        let a = allocate(
            &Env::default(),
            &[&c],
            &classes(),
            "n1",
            &slices,
            &BTreeSet::new(),
        )
        .unwrap();
        assert_eq!(a[0].results.len(), 2);
        let in_use: BTreeSet<DeviceKey> = [("gpu.example.com".into(), "n1".into(), "gpu-1".into())]
            .into_iter()
            .collect();
        let r = allocate(&Env::default(), &[&c], &classes(), "n1", &slices, &in_use);
        assert_eq!(r, Err(Refusal::Insufficient));
    }

    #[test]
    fn a_missing_class_or_a_failing_selector_is_an_error() {
        let slices = vec![slice("n1", &["T4"])];
        let mut c = claim("c", &[("gpu", Mode::ExactCount(1), None)]);
        c.requests[0].class = "nope".into();
        let r = allocate(
            &Env::default(),
            &[&c],
            &classes(),
            "n1",
            &slices,
            &BTreeSet::new(),
        );
        assert!(
            matches!(r, Err(Refusal::Error(m)) if m.contains("device class nope does not exist"))
        );
        let mut c = claim("c", &[("gpu", Mode::ExactCount(1), None)]);
        c.requests[0].selectors =
            vec![compile("device.attributes[\"x.io\"].model == \"T4\"").unwrap()];
        let r = allocate(
            &Env::default(),
            &[&c],
            &classes(),
            "n1",
            &slices,
            &BTreeSet::new(),
        );
        assert!(matches!(r, Err(Refusal::Error(m)) if m.contains("CEL runtime error")));
    }

    #[test]
    fn an_incomplete_pool_is_not_used() {
        let s = slice("n1", &["T4"]);
        let mut two = s.slice.clone();
        two.slice_count = 2;
        let slices = vec![Arc::new(MemoSlice::new(two))];
        let c = claim("c", &[("gpu", Mode::ExactCount(1), None)]);
        let r = allocate(
            &Env::default(),
            &[&c],
            &classes(),
            "n1",
            &slices,
            &BTreeSet::new(),
        );
        assert_eq!(r, Err(Refusal::Insufficient));
    }
}
