//! What components share through the engine: the network model, the etcd
//! group's applied store (touched only by etcd members), and measurements.

use super::etcd::EtcdStore;
use super::network::Network;
use crate::report::stats::Stats;

pub struct World {
    pub net: Network,
    pub etcd: EtcdStore,
    pub stats: Stats,
}
