//! How many nodes have each free room, so a cycle that fits a plain pod
//! nowhere costs a walk over the distinct rooms rather than every node.
//!
//! On a full cluster every completion makes every waiting pod worth a retry
//! (NodeResourcesFit's hint queues them all on an assigned pod's deletion),
//! and each retry filters every node to find no room: upstream pays that,
//! and the model charges it in virtual time (`SchedulerConfig::per_node`),
//! but the simulator need not pay it in wall time. Nodes with the same
//! [`FreeRoom`] give a plain pod the same verdict, and a cluster of uniform
//! nodes has a handful of distinct rooms however many nodes it has. When
//! the pod fits in none of them, the cycle's decision (every node
//! evaluated, each one's reasons counted, all of them resolvable) follows
//! from the counts; when it fits somewhere, the cycle scans as before, so
//! which node it finds first, and the next start, are upstream's.
//!
//! The index also keeps the lowest priority of a pod anywhere, so
//! preemption can tell without a walk that no node has a pod it could evict.

use std::collections::BTreeMap;

use super::node_info::NodeSnapshot;
use super::plain_fit::{FreeRoom, PlainAsk, Shortfall};

/// The rooms of the nodes where only resources can reject a plain pod, and
/// the lowest pod priority on each node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FitIndex {
    rooms: BTreeMap<FreeRoom, u32>,
    /// Nodes a plain pod may be rejected on for other reasons (cordoned or
    /// tainted): with any, the cycle takes the full scan.
    uncovered: u32,
    /// Nodes by the lowest priority among their pods (`i32::MAX`: none).
    lowest: BTreeMap<i32, u32>,
    nodes: u32,
}

impl FitIndex {
    pub fn scan(nodes: &[NodeSnapshot]) -> FitIndex {
        let mut index = FitIndex::default();
        for n in nodes {
            index.add(n);
        }
        index
    }

    /// Whether a plain pod's verdict on `node` is the resource check alone,
    /// whatever the pod (nominations aside, which the cycle checks).
    fn covered(node: &NodeSnapshot) -> bool {
        !node.unschedulable && node.taints.is_empty()
    }

    pub fn add(&mut self, node: &NodeSnapshot) {
        self.nodes += 1;
        *self.lowest.entry(node.lowest_priority).or_default() += 1;
        if Self::covered(node) {
            *self.rooms.entry(FreeRoom::of(&node.resources)).or_default() += 1;
        } else {
            self.uncovered += 1;
        }
    }

    /// Takes out a node added before (as it was when added).
    pub fn remove(&mut self, node: &NodeSnapshot) {
        self.nodes -= 1;
        take(&mut self.lowest, node.lowest_priority);
        if Self::covered(node) {
            take(&mut self.rooms, FreeRoom::of(&node.resources));
        } else {
            self.uncovered -= 1;
        }
    }

    pub fn clear(&mut self) {
        *self = FitIndex::default();
    }

    /// The lowest priority of any pod on any node (`i32::MAX` with none).
    pub fn lowest_priority(&self) -> i32 {
        self.lowest.keys().next().copied().unwrap_or(i32::MAX)
    }

    /// Per reason (as [`Shortfall::count_into`] counts them), on how many of
    /// the `total` nodes `ask` fails, when it fails on every node and only
    /// resources reject it anywhere; `None` when some node may fit it, or
    /// the rooms are too many for the walk to be cheaper than the scan.
    pub fn rejects_everywhere(&self, ask: &PlainAsk, total: usize) -> Option<[usize; 4]> {
        if !ask.checks_fit() || self.uncovered > 0 || self.nodes as usize != total {
            return None;
        }
        if self.rooms.len() > total / 4 {
            return None;
        }
        let mut counts = [0usize; 4];
        for (&room, &n) in &self.rooms {
            let short = ask.shortfall_in(room);
            if short.is_empty() {
                return None;
            }
            count_n(short, n, &mut counts);
        }
        Some(counts)
    }
}

/// Decrements `key`'s count, dropping it at zero.
fn take<K: Ord>(map: &mut BTreeMap<K, u32>, key: K) {
    if let std::collections::btree_map::Entry::Occupied(mut e) = map.entry(key) {
        *e.get_mut() -= 1;
        if *e.get() == 0 {
            e.remove();
        }
    }
}

/// Adds `short` to `counts` once for each of `n` nodes.
fn count_n(short: Shortfall, n: u32, counts: &mut [usize; 4]) {
    let mut one = [0usize; 4];
    short.count_into(&mut one);
    for (c, o) in counts.iter_mut().zip(one) {
        *c += o * n as usize;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::api::node::Taint;
    use crate::scheduler::config::Profile;
    use crate::scheduler::pod_info::PodInfo;
    use crate::scheduler::preemption::{dry_run_nodes, preempt};
    use crate::scheduler::profile::{schedule, AffinityCounts, CycleInput};
    use crate::scheduler::resources::{Amounts, PodRequests};
    use crate::sim::RngStream;

    fn amounts(cpu: i64, memory: i64, pods: Option<i64>) -> Amounts {
        let mut a: Amounts = [("cpu", cpu), ("memory", memory)]
            .into_iter()
            .filter(|(_, v)| *v != 0)
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        if let Some(p) = pods {
            a.insert("pods".into(), p);
        }
        a
    }

    fn pod(name: &str, cpu: i64, memory: i64, priority: i32) -> Arc<PodInfo> {
        Arc::new(PodInfo {
            name: name.into(),
            priority,
            requests: PodRequests::from_containers(
                &[amounts(cpu * 500, memory << 29, None)],
                &[],
                &Amounts::new(),
            ),
            ..PodInfo::default()
        })
    }

    /// What a cycle's input borrows besides the pod and the nodes, empty.
    #[derive(Default)]
    struct Empty {
        spec: k8s_openapi::api::core::v1::PodSpec,
        spread: BTreeMap<String, i64>,
        nominated: BTreeMap<String, Vec<Arc<PodInfo>>>,
    }

    impl Empty {
        fn input<'a>(
            &'a self,
            pod: &'a PodInfo,
            nodes: &'a [NodeSnapshot],
            fit_index: Option<&'a FitIndex>,
        ) -> CycleInput<'a> {
            CycleInput {
                pod,
                spec: &self.spec,
                nodes,
                image_spread: &self.spread,
                default_selector: None,
                nominated: &self.nominated,
                counts: AffinityCounts::default(),
                fit_index,
                dra: None,
            }
        }
    }

    /// (allocatable cpu, memory, pod limit), tainted, placed (cpu, memory, priority).
    type NodeShape = ((i64, i64, Option<i64>), bool, Vec<(i64, i64, i32)>);

    fn nodes(shapes: &[NodeShape]) -> Vec<NodeSnapshot> {
        shapes
            .iter()
            .enumerate()
            .map(|(i, ((c, m, p), tainted, placed))| {
                let mut n = NodeSnapshot::new(
                    &format!("n{i}"),
                    BTreeMap::new(),
                    amounts(c * 1000, m << 30, *p),
                );
                if *tainted {
                    n.taints.push(Taint {
                        key: "k".into(),
                        value: String::new(),
                        effect: "NoSchedule".into(),
                        time_added: None,
                    });
                }
                for (k, &(pc, pm, pp)) in placed.iter().enumerate() {
                    n.add_pod(pod(&format!("p{i}-{k}"), pc, pm, pp));
                }
                n
            })
            .collect()
    }

    fn shape() -> impl Strategy<Value = NodeShape> {
        (
            (0i64..3, 0i64..3, proptest::option::of(0i64..3)),
            proptest::bool::weighted(0.1),
            proptest::collection::vec((0i64..4, 0i64..4, -1i32..2), 0..3),
        )
    }

    proptest! {
        /// A cycle with the index decides exactly as the scan does, and
        /// preemption after it finds the same candidate or the same reason.
        #[test]
        fn same_decision_as_the_scan(
            kinds in proptest::collection::vec(shape(), 1..4),
            picks in proptest::collection::vec(0usize..4, 1..24),
            ask in (0i64..5, 0i64..5, -1i32..2),
            start in 0usize..24,
        ) {
            // Nodes of a few shapes, so the rooms are few enough for the
            // index to answer (at most a quarter of the node count).
            let profile = &Profile::default();
            let shapes: Vec<NodeShape> =
                picks.iter().map(|&k| kinds[k % kinds.len()].clone()).collect();
            let nodes = nodes(&shapes);
            let index = FitIndex::scan(&nodes);
            let me = pod("new", ask.0, ask.1, ask.2);
            let empty = Empty::default();
            let input = |fit_index| empty.input(&me, &nodes, fit_index);
            let start = start % nodes.len();
            let run = |fit_index| {
                let input = input(fit_index);
                let mut rng = RngStream::derive(7, "kube-scheduler");
                let (d, next) = schedule(profile, &input, start, &mut rng);
                let dry = dry_run_nodes(&input, &d.resolvable);
                let pre = preempt(profile, &input, &d, &[], &mut rng)
                    .map(|c| (c.node, c.victims.len(), c.pdb_violations));
                format!("{d:?} {next} {dry} {pre:?}")
            };
            prop_assert_eq!(run(Some(&index)), run(None));
        }

        /// Adding and removing nodes as they change keeps the index equal
        /// to one built from scratch.
        #[test]
        fn incremental_upkeep_matches_a_scan(
            shapes in proptest::collection::vec(shape(), 1..8),
            moves in proptest::collection::vec((0usize..8, 0i64..3, -1i32..2, any::<bool>()), 0..20),
        ) {
            let mut nodes = nodes(&shapes);
            let mut index = FitIndex::scan(&nodes);
            for (k, (at, cpu, priority, add)) in moves.into_iter().enumerate() {
                let i = at % nodes.len();
                index.remove(&nodes[i]);
                if add {
                    nodes[i].add_pod(pod(&format!("m{k}"), cpu, 1, priority));
                } else if let Some(p) = nodes[i].pods.first().cloned() {
                    nodes[i].remove_pod(&p.namespace, &p.name);
                }
                index.add(&nodes[i]);
                prop_assert_eq!(&index, &FitIndex::scan(&nodes));
            }
            let last = nodes.pop().unwrap();
            index.remove(&last);
            prop_assert_eq!(&index, &FitIndex::scan(&nodes));
        }
    }

    #[test]
    fn a_full_uniform_cluster_is_a_few_rooms() {
        // 40 nodes of 2 CPU each holding two 1-CPU pods: one room
        // (0 CPU free), so a 1-CPU ask is refused on all 40 from it.
        let shapes: Vec<NodeShape> = (0..40)
            .map(|_| ((2, 2, None), false, vec![(2, 0, 0), (2, 0, 0)]))
            .collect();
        let index = FitIndex::scan(&nodes(&shapes));
        assert_eq!(index.rooms.len(), 1);
        assert_eq!(index.lowest_priority(), 0);
        let nodes = nodes(&shapes);
        let me = pod("new", 2, 0, 0);
        let empty = Empty::default();
        let input = empty.input(&me, &nodes, Some(&index));
        let profile = &Profile::default();
        let state = crate::scheduler::profile::prefilter(profile, &input);
        let ask = PlainAsk::of(profile, &input, &state).unwrap();
        // [too many pods, cpu, memory, ephemeral]
        assert_eq!(index.rejects_everywhere(&ask, 40), Some([0, 40, 0, 0]));
        // An index that disagrees with the cache on the node count scans.
        assert_eq!(index.rejects_everywhere(&ask, 39), None);
    }
}
