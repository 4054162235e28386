//! What components share through the engine: the network model, the etcd
//! group's applied store (touched only by etcd members), and measurements.

use super::etcd::EtcdStore;
use super::network::Network;
use crate::faults::{Checks, Observation};
use crate::report::stats::Stats;
use crate::sim::{ComponentId, SimTime};

pub struct World {
    pub net: Network,
    pub etcd: EtcdStore,
    pub stats: Stats,
    /// The member that last won an election and has not stepped down: what
    /// `etcdctl endpoint status` would tell a fault injector. No cluster
    /// component reads it; they learn leadership through Raft messages.
    pub etcd_leader: Option<ComponentId>,
    /// The invariant checkers, when the run is checked (`kubesim fuzz`).
    pub checks: Option<Box<Checks>>,
}

impl World {
    pub fn new(net: Network, etcd: EtcdStore) -> Self {
        World {
            net,
            etcd,
            stats: Stats::default(),
            etcd_leader: None,
            checks: None,
        }
    }

    /// Hands `o` to the checkers, if the run has them.
    #[inline]
    pub fn observe(&mut self, at: SimTime, o: Observation<'_>) {
        if let Some(c) = &mut self.checks {
            c.observe(at, o);
        }
    }
}
