//! End to end through the modelled control plane: kubelets register, renew
//! their Leases every 10 s through apiserver → etcd Raft → watch cache, and
//! the same seed gives the same trace.

use std::collections::BTreeMap;
use std::sync::Arc;

use kubesim::api::node::NodeBody;
use kubesim::api::object::{Body, Meta};
use kubesim::api::quantity::Quantity;
use kubesim::api::{Kind, Object, ObjectKey};
use kubesim::model::apiserver::{ApiServer, ApiServerConfig};
use kubesim::model::etcd::{EtcdConfig, EtcdMember, EtcdStore};
use kubesim::model::kubelet::{Kubelet, KubeletConfig};
use kubesim::model::msg::Payload;
use kubesim::model::network::{datacenter_link, Network};
use kubesim::model::world::World;
use kubesim::sim::{Engine, SimDuration, SimTime, Trace, TraceLevel, TraceSink};

fn namespace(name: &str) -> Object {
    Object {
        kind: Kind::Namespace,
        meta: Meta {
            name: name.into(),
            ..Default::default()
        },
        body: Body::Namespace,
    }
}

fn node_body() -> NodeBody {
    let mut alloc = BTreeMap::new();
    alloc.insert("cpu".to_string(), Quantity::from_units(4));
    alloc.insert("memory".to_string(), Quantity::parse("16Gi").unwrap());
    alloc.insert("pods".to_string(), Quantity::from_units(110));
    NodeBody {
        unschedulable: false,
        taints: vec![],
        pod_cidr: None,
        capacity: alloc.clone(),
        allocatable: alloc,
        conditions: vec![],
        addresses: vec![],
        images: vec![],
        kubelet_version: "v1.34.0".into(),
    }
}

/// Builds etcd ×3, an apiserver and `nodes` kubelets; runs for `secs`.
fn run(seed: u64, nodes: usize, secs: u64) -> (String, Engine<Payload, World>) {
    let mut etcd = EtcdStore::new();
    let initial = etcd.seed(
        ["default", "kube-system", "kube-node-lease"]
            .iter()
            .map(|n| namespace(n))
            .collect(),
    );
    let world = World::new(Network::new(datacenter_link()), etcd);
    let trace = Trace::new(TraceLevel::Full, TraceSink::Memory(Vec::new()));
    let mut e: Engine<Payload, World> = Engine::new(seed, world, trace);
    let cfg = Arc::new(EtcdConfig::default());
    let members: Vec<u32> = (0..3).collect();
    let api_id = 3;
    for i in 0..3u32 {
        let id = e.add(Box::new(EtcdMember::new(i, members.clone(), cfg.clone())));
        e.shared.net.add_endpoint(id, seed, &format!("etcd-{i}"));
    }
    let id = e.add(Box::new(ApiServer::new(
        ApiServerConfig::default(),
        members.clone(),
        initial,
    )));
    assert_eq!(id, api_id);
    e.shared.net.add_endpoint(id, seed, "kube-apiserver");
    let kcfg = Arc::new(KubeletConfig::default());
    for n in 0..nodes {
        let name = format!("node-{n}");
        let id = e.add(Box::new(Kubelet::new(
            &name,
            api_id,
            node_body(),
            BTreeMap::new(),
            kcfg.clone(),
        )));
        e.shared
            .net
            .add_endpoint(id, seed, &format!("kubelet/{name}"));
    }
    e.run_until(SimTime(SimDuration::from_secs(secs).nanos()), |_| {});
    (e.trace.digest(), e)
}

#[test]
fn leases_renew_through_raft_and_runs_replay_exactly() {
    let (d1, e) = run(7, 3, 60);
    let (d2, _) = run(7, 3, 60);
    let (d3, _) = run(8, 3, 60);
    assert_eq!(d1, d2, "same seed, same trace");
    assert_ne!(d1, d3, "another seed draws other latencies");
    // Each kubelet registered its Node and holds a Lease renewed within 10 s.
    for n in 0..3 {
        let key = ObjectKey {
            kind: Kind::Lease,
            namespace: "kube-node-lease".into(),
            name: format!("node-{n}"),
        };
        let lease = e.shared.etcd.get(&key).expect("lease committed");
        let renew = lease.as_lease().unwrap().renew_time.unwrap();
        assert!(
            SimTime(60_000_000_000).since(renew) <= SimDuration::from_secs(11),
            "renewed at {renew}"
        );
        let node = ObjectKey {
            kind: Kind::Node,
            namespace: String::new(),
            name: format!("node-{n}"),
        };
        assert!(e
            .shared
            .etcd
            .get(&node)
            .unwrap()
            .as_node()
            .unwrap()
            .is_ready());
    }
    // ~6 renewals per node per minute, each committed through etcd.
    assert!(
        e.shared.stats.etcd_commit.len() >= 3 * 5,
        "{}",
        e.shared.stats.etcd_commit.len()
    );
    assert_eq!(e.shared.stats.leader_changes, 1, "one election at start-up");
    let text = String::from_utf8(e.trace.memory().unwrap().to_vec()).unwrap();
    assert!(text.contains("\"event\":\"RaftLeaderElected\""));
    assert!(
        text.contains("\"kind\":\"Lease\""),
        "full objects are traced"
    );
}
