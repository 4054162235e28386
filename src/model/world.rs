//! What components share through the engine: the network model, the etcd
//! group's applied store (touched only by etcd members), and measurements.

use super::etcd::EtcdStore;
use super::network::Network;
use crate::faults::{Checks, Observation};
use crate::report::stats::Stats;
use crate::sim::{ComponentId, SimDuration, SimTime};
use std::collections::BTreeMap;

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
    /// Stalled disks (`slowDisk`): per etcd member, what one WAL fsync
    /// takes while its disk stalls. Hardware, like the network: the fault
    /// injector sets it and only the member on that disk reads it.
    pub slow_fsync: BTreeMap<ComponentId, SimDuration>,
    /// Which image pulls fail (faults on the registry outside the cluster).
    pub registry: super::registry::Registry,
}

impl World {
    pub fn new(net: Network, etcd: EtcdStore) -> Self {
        World {
            net,
            etcd,
            stats: Stats::default(),
            etcd_leader: None,
            checks: None,
            slow_fsync: BTreeMap::new(),
            registry: Default::default(),
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
