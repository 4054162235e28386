//! The cluster's bootstrap, reported apart from the run.
//!
//! A simulated cluster starts from nothing at t=0: etcd elects its first
//! leader (an election timeout or so), and only then can the apiserver
//! commit anything, so the first writes queue behind the election and the
//! kubelets register afterwards. A real cluster has done all that before
//! anyone applies to it. Mixed into the run's figures, those first writes
//! make every healthy run's etcd commit p99 about a second and a half.
//!
//! The bootstrap ends at the first instant at which etcd has had a leader
//! and every node that exists from the start (a pool without `joinAt`) has
//! been written Ready=True by the apiserver. That instant is traced as
//! `BootstrapEnd` (trace level `faults`). A latency sample belongs to the
//! bootstrap when it *began* before that instant (a proposal's arrival at
//! etcd, a request's admission, a pod's creation), else to the run; the
//! summary's headline figures are the run's, and the bootstrap has a line of
//! its own. The scenario's clock is unchanged: timeline `at:` and `objects:`
//! keep their times.

use std::collections::BTreeSet;

use super::stats::Latencies;
use crate::sim::{SimTime, Trace, TraceLevel};

#[derive(Default)]
pub struct Bootstrap {
    initial_nodes: BTreeSet<String>,
    ready: BTreeSet<String>,
    /// When etcd first had a leader.
    pub leader_at: Option<SimTime>,
    /// When the last of the initial nodes was first written Ready.
    pub nodes_ready_at: Option<SimTime>,
    /// When both held: the bootstrap's end.
    pub end: Option<SimTime>,
    /// Latencies of what began before the end.
    pub latencies: Latencies,
}

impl Bootstrap {
    /// A bootstrap that waits for these nodes (the ones present at t=0).
    pub fn new(initial_nodes: impl IntoIterator<Item = String>) -> Self {
        Bootstrap {
            initial_nodes: initial_nodes.into_iter().collect(),
            ..Default::default()
        }
    }

    /// The number of nodes the bootstrap waits for.
    pub fn nodes(&self) -> usize {
        self.initial_nodes.len()
    }

    /// Whether something that began at `start` is part of the bootstrap.
    pub fn during(&self, start: SimTime) -> bool {
        self.end.is_none_or(|e| start < e)
    }

    /// An etcd member won an election.
    pub fn leader_elected(&mut self, trace: &mut Trace, now: SimTime) {
        if self.leader_at.is_none() {
            self.leader_at = Some(now);
            self.check(trace, now);
        }
    }

    /// The apiserver committed a write of Node `name`, Ready or not.
    pub fn node_written(&mut self, trace: &mut Trace, name: &str, ready: bool, now: SimTime) {
        if self.end.is_some() || !ready || !self.initial_nodes.contains(name) {
            return;
        }
        self.ready.insert(name.to_string());
        if self.ready.len() == self.initial_nodes.len() {
            self.nodes_ready_at = Some(now);
            self.check(trace, now);
        }
    }

    fn check(&mut self, trace: &mut Trace, now: SimTime) {
        let nodes_done = self.initial_nodes.is_empty() || self.nodes_ready_at.is_some();
        let (Some(leader), None, true) = (self.leader_at, self.end, nodes_done) else {
            return;
        };
        self.end = Some(now);
        let (nodes, ready) = (self.initial_nodes.len() as u64, self.nodes_ready_at);
        trace.record(TraceLevel::Faults, now, "kubesim", "BootstrapEnd", |r| {
            r.u64("etcdLeader", leader.0).u64("nodes", nodes);
            if let Some(t) = ready {
                r.u64("nodesReady", t.0);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{SimDuration, TraceSink};

    fn at(ms: u64) -> SimTime {
        SimTime::ZERO.after(SimDuration::from_millis(ms))
    }

    #[test]
    fn ends_when_etcd_has_a_leader_and_every_initial_node_is_ready() {
        let mut trace = Trace::new(TraceLevel::Faults, TraceSink::Memory(Vec::new()));
        let mut b = Bootstrap::new(["w-1".to_string(), "w-2".to_string()]);
        b.leader_elected(&mut trace, at(1100));
        assert!(b.end.is_none() && b.during(at(5000)));
        b.node_written(&mut trace, "w-1", true, at(1500));
        // A node that joins later, or a NotReady write, does not count.
        b.node_written(&mut trace, "late", true, at(1600));
        b.node_written(&mut trace, "w-2", false, at(1700));
        assert!(b.end.is_none());
        b.node_written(&mut trace, "w-2", true, at(2400));
        assert_eq!(b.end, Some(at(2400)));
        // A second leader is not the bootstrap's.
        b.leader_elected(&mut trace, at(9000));
        assert_eq!(b.leader_at, Some(at(1100)));
        // Began before 2.4 s: bootstrap; at or after: the run.
        assert!(b.during(at(2399)) && !b.during(at(2400)));
        let text = String::from_utf8(trace.memory().unwrap().to_vec()).unwrap();
        assert_eq!(text.matches("BootstrapEnd").count(), 1, "{text}");
        assert!(text.contains("\"etcdLeader\":1100000000,\"nodes\":2,\"nodesReady\":2400000000"));
    }
}
