//! End to end through the modelled control plane: kubelets register, renew
//! their Leases every 10 s through apiserver → etcd Raft → watch cache, and
//! the same seed gives the same trace.

use crate::common;

use common::{run_full, scenario};
use kubesim::api::{Kind, ObjectKey};
use kubesim::sim::{SimDuration, SimTime};

const CLUSTER: &str = r#"
name: heartbeat
duration: 60s
cluster:
  etcd: {members: 3}
  nodePools:
    - {name: node, count: 3, capacity: {cpu: "4", memory: 16Gi}}
"#;

#[test]
fn leases_renew_through_raft_and_runs_replay_exactly() {
    let s = scenario(CLUSTER);
    let a = run_full(&s, Some(7));
    let b = run_full(&s, Some(7));
    let c = run_full(&s, Some(8));
    assert_eq!(a.digest(), b.digest(), "same seed, same trace");
    assert_ne!(a.digest(), c.digest(), "another seed draws other latencies");
    let store = &a.finished.engine.shared.etcd;
    // Each kubelet registered its Node and holds a Lease renewed within 10 s.
    for n in 1..=3 {
        let key = ObjectKey {
            kind: Kind::Lease,
            namespace: "kube-node-lease".into(),
            name: format!("node-{n}"),
        };
        let lease = store.get(&key).expect("lease committed");
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
        assert!(store.get(&node).unwrap().as_node().unwrap().is_ready());
    }
    // About 6 renewals per node per minute, each committed through etcd.
    assert!(a.finished.summary.etcd.commit.count >= 3 * 5);
    assert_eq!(
        a.finished.summary.etcd.leader_changes, 1,
        "one election at start-up"
    );
    assert!(a.events(None, "RaftLeaderElected").count() == 1);
    assert!(
        a.writes("Lease/").any(|w| w["object"]["kind"] == "Lease"),
        "full objects are traced"
    );
}
