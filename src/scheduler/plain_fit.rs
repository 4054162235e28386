//! The filters' verdict where only NodeResourcesFit can say no.
//!
//! A pod that asks for nothing but CPU, memory and ephemeral storage (no
//! node name, node selector, required node affinity, host ports, hard
//! spread constraints or inter-pod terms) passes every other filter on a
//! node that is schedulable, has no taints and has nothing nominated to it.
//! There the verdict is the resource check alone, which this computes
//! without allocating: a cycle that rejects thousands of full nodes then
//! costs a few loads per node instead of a pass through every plugin. The
//! verdict and its reasons are exactly those [`super::profile::filter`]
//! gives (a test below compares the two).

use std::borrow::Cow;

use super::config::{FilterPlugin, Profile};
use super::node_info::NodeSnapshot;
use super::profile::{CycleInput, CycleState};
use super::resources::NodeResources;

/// What a plain pod asks of a node, when the fast verdict applies.
#[derive(Clone, Copy, Debug)]
pub struct PlainAsk {
    cpu: i64,
    memory: i64,
    ephemeral: i64,
    /// Whether the profile runs NodeResourcesFit at all.
    fit: bool,
}

/// The resources a node is short of, as upstream's reasons in its order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shortfall(u8);

const REASONS: [&str; 4] = [
    "Too many pods",
    "Insufficient cpu",
    "Insufficient memory",
    "Insufficient ephemeral-storage",
];

impl Shortfall {
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Adds one to each reason's count in `counts` (indexed as [`REASONS`]).
    pub fn count_into(self, counts: &mut [usize; 4]) {
        for (i, c) in counts.iter_mut().enumerate() {
            *c += usize::from(self.0 & (1 << i) != 0);
        }
    }
}

/// The reasons counted by [`Shortfall::count_into`], with their counts.
pub fn reasons(counts: &[usize; 4]) -> impl Iterator<Item = (Cow<'static, str>, usize)> + '_ {
    REASONS
        .iter()
        .zip(counts)
        .filter(|(_, &n)| n > 0)
        .map(|(r, &n)| (Cow::Borrowed(*r), n))
}

impl PlainAsk {
    /// The pod's ask, if it is plain under `profile` in this cycle.
    pub fn of(profile: &Profile, input: &CycleInput<'_>, state: &CycleState) -> Option<PlainAsk> {
        let (pod, spec) = (input.pod, input.spec);
        let selector = spec.node_selector.as_ref().is_some_and(|s| !s.is_empty());
        let required_affinity = spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .is_some_and(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .is_some()
            });
        let plain = spec.node_name.is_none()
            && !selector
            && !required_affinity
            && profile.added_affinity.is_none()
            && pod.host_ports.is_empty()
            && pod.requests.plain.scalar.is_empty()
            && input.dra.is_none()
            && !state.crosses_nodes();
        plain.then_some(PlainAsk {
            cpu: pod.requests.plain.cpu,
            memory: pod.requests.plain.memory,
            ephemeral: pod.requests.plain.ephemeral,
            fit: profile.filters.contains(&FilterPlugin::NodeResourcesFit),
        })
    }

    /// Whether the fast verdict holds on `node`: nothing but resources can
    /// reject the pod there.
    pub fn covers(&self, node: &NodeSnapshot, input: &CycleInput<'_>) -> bool {
        !node.unschedulable
            && node.taints.is_empty()
            && (input.nominated.is_empty() || !input.nominated.contains_key(&node.name))
    }

    /// What `node` is short of for this pod (empty: it fits).
    #[inline]
    pub fn shortfall(&self, node: &NodeResources) -> Shortfall {
        self.shortfall_in(FreeRoom::of(node))
    }

    /// What a node with `room` left is short of for this pod.
    #[inline]
    pub fn shortfall_in(&self, room: FreeRoom) -> Shortfall {
        if !self.fit {
            return Shortfall::default();
        }
        let short = |want: i64, free: i64| want != 0 && want > free;
        let bits = u8::from(room.pods_full)
            | u8::from(short(self.cpu, room.cpu)) << 1
            | u8::from(short(self.memory, room.memory)) << 2
            | u8::from(short(self.ephemeral, room.ephemeral)) << 3;
        Shortfall(bits)
    }

    /// Whether the profile checks resources at all (without NodeResourcesFit
    /// every node fits a plain pod).
    pub fn checks_fit(&self) -> bool {
        self.fit
    }
}

/// What is left on a node for NodeResourcesFit's plain check: the
/// allocatable less the requested, and whether the pod count is at its
/// limit. Nodes with equal rooms give every plain pod the same verdict,
/// which is what [`super::fit_index::FitIndex`] counts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FreeRoom {
    pub pods_full: bool,
    pub cpu: i64,
    pub memory: i64,
    pub ephemeral: i64,
}

impl FreeRoom {
    pub fn of(node: &NodeResources) -> FreeRoom {
        let (a, r) = (&node.allocatable, &node.requested);
        FreeRoom {
            pods_full: a.has_pods && node.pods + 1 > a.pods,
            cpu: a.cpu - r.cpu,
            memory: a.memory - r.memory,
            ephemeral: a.ephemeral - r.ephemeral,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::scheduler::pod_info::PodInfo;
    use crate::scheduler::profile::{filter, prefilter, AffinityCounts};
    use crate::scheduler::resources::{Amounts, PodRequests};

    fn amounts(cpu: i64, memory: i64, ephemeral: i64, pods: Option<i64>) -> Amounts {
        let mut a: Amounts = [
            ("cpu", cpu),
            ("memory", memory),
            ("ephemeral-storage", ephemeral),
        ]
        .into_iter()
        .filter(|(_, v)| *v != 0)
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Some(p) = pods {
            a.insert("pods".into(), p);
        }
        a
    }

    proptest! {
        /// On random plain nodes and pods the fast verdict is the full
        /// filter's: fits exactly when it fits, the same reasons otherwise.
        #[test]
        fn same_verdict_as_filter(
            alloc in (0i64..8, 0i64..8, 0i64..4, proptest::option::of(0i64..4)),
            placed in proptest::collection::vec((0i64..4, 0i64..4, 0i64..2), 0..4),
            ask in (0i64..6, 0i64..6, 0i64..3),
        ) {
            let profile = &Profile::default();
            let mut node = NodeSnapshot::new(
                "n",
                BTreeMap::new(),
                amounts(alloc.0 * 1000, alloc.1 << 30, alloc.2 << 30, alloc.3),
            );
            for (k, (c, m, e)) in placed.iter().enumerate() {
                let info = PodInfo {
                    name: format!("p{k}"),
                    requests: PodRequests::from_containers(
                        &[amounts(c * 1000, m << 30, e << 30, None)], &[], &Amounts::new()),
                    ..PodInfo::default()
                };
                node.add_pod(Arc::new(info));
            }
            let pod = PodInfo {
                name: "new".into(),
                requests: PodRequests::from_containers(
                    &[amounts(ask.0 * 500, ask.1 << 29, ask.2 << 30, None)], &[], &Amounts::new()),
                ..PodInfo::default()
            };
            let spec = k8s_openapi::api::core::v1::PodSpec::default();
            let nodes = [node];
            let (spread, nominated) = (BTreeMap::new(), BTreeMap::new());
            let input = CycleInput {
                pod: &pod,
                spec: &spec,
                nodes: &nodes,
                image_spread: &spread,
                default_selector: None,
                nominated: &nominated,
                counts: AffinityCounts::default(),
                fit_index: None,
                dra: None,
            };
            let state = prefilter(profile, &input);
            let plain = PlainAsk::of(profile, &input, &state).expect("a plain pod");
            prop_assert!(plain.covers(&nodes[0], &input));
            let mut counts = [0; 4];
            plain.shortfall(&nodes[0].resources).count_into(&mut counts);
            let fast: Vec<_> = reasons(&counts).map(|(r, _)| r).collect();
            let full = filter(profile, &input, &state, &nodes[0]).err().map(|f| f.reasons);
            prop_assert_eq!(fast, full.unwrap_or_default());
        }
    }
}
