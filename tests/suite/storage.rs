//! The apiserver's storage after faults: etcd compaction on the
//! compactor's interval, a restarted apiserver rebuilding its watch cache
//! from etcd's snapshot, and every client resuming (relisting when its
//! revision left the rebuilt history), with no acknowledged write unwatched.

use crate::common;

use std::path::Path;

use kubesim::model::msg::{Payload, Timer};
use kubesim::model::network::close_connections;
use kubesim::model::world::World;
use kubesim::scenario::{build, load_str};
use kubesim::sim::{
    Actor, ComponentId, Ctx, Lifecycle, SimDuration, SimTime, Trace, TraceLevel, TraceSink,
};
use serde_json::Value;

/// Crashes the apiserver's process at 40 s and starts it again at 45 s, as
/// a fault injector would: the process exits, so its sockets close.
struct Restarter {
    apiserver: ComponentId,
}

impl Actor<Payload, World> for Restarter {
    fn name(&self) -> &str {
        "restarter"
    }
    fn start(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        ctx.timer(
            SimDuration::from_secs(40),
            Payload::Timer(Timer::Action { index: 0 }),
        );
        ctx.timer(
            SimDuration::from_secs(45),
            Payload::Timer(Timer::Action { index: 1 }),
        );
    }
    fn handle(&mut self, payload: Payload, ctx: &mut Ctx<'_, Payload, World>) {
        match payload {
            Payload::Timer(Timer::Action { index: 0 }) => {
                close_connections(ctx, self.apiserver, true);
                ctx.lifecycle(Lifecycle::Crash(self.apiserver));
            }
            Payload::Timer(Timer::Action { .. }) => {
                ctx.lifecycle(Lifecycle::Restart(self.apiserver))
            }
            _ => {}
        }
    }
    fn crash(&mut self, _now: SimTime) {}
}

const SCENARIO: &str = r#"
name: apiserver-restart
duration: 3m
cluster:
  apiserver: {etcdCompactionInterval: 10s}
  images: {nginx:1.27: 70Mi}
  nodePools: [{name: worker, count: 3, capacity: {cpu: "4", memory: 8Gi}}]
objects:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: default}
    spec:
      replicas: 3
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec: {containers: [{name: web, image: "nginx:1.27"}]}
timeline:
  - {at: 60s, scale: {kind: Deployment, name: web, replicas: 5}}
"#;

#[test]
fn a_restarted_apiserver_rebuilds_its_cache_from_etcd_and_every_client_resumes() {
    let s = load_str("restart.yaml", SCENARIO, Path::new(".")).unwrap();
    let trace = Trace::new(TraceLevel::Full, TraceSink::Memory(Vec::new()));
    let (mut e, layout) = build(&s, 1, trace);
    let id = e.add(Box::new(Restarter {
        apiserver: layout.apiserver,
    }));
    e.shared.net.add_endpoint(id, 1, "restarter");
    e.run_until(SimTime::ZERO.after(SimDuration::from_secs(180)), |_| {});
    let text = String::from_utf8(e.trace.memory().unwrap().to_vec()).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    // Compaction every 10 s to the revision seen 10 s earlier: by 3 min the
    // store is compacted well past the start.
    assert!(e.shared.etcd.compacted_revision() > 10);
    // The rebuilt cache serves the world as etcd has it: the scale-up at
    // 60 s (after the restart) reaches five ready pods, and the nodes stay
    // Ready (a 5 s outage is far inside the 50 s node grace).
    let etcd = &e.shared.etcd;
    let d = etcd
        .keys()
        .find(|k| k.to_string() == "Deployment/default/web")
        .map(|k| etcd.get(k).unwrap().to_json())
        .unwrap();
    assert_eq!(d["status"]["readyReplicas"], 5, "{}", d["status"]);
    // Clients found their connections closed at 40 s and resumed; after the
    // snapshot the apiserver's history starts at its revision, so each
    // informer's resume from an older revision got 410 Gone and relisted.
    let st = &e.shared.stats;

    assert!(st.watch_restarts > 0, "watches resumed");
    assert!(st.watch_relists > 0, "410 Gone made informers relist");
    assert_eq!(st.watch_gaps, 0);
    // A request reaching the apiserver while its cache rebuilds would get 429
    // "storage is (re)initializing"; here the snapshot is back within a
    // millisecond, before any client's first 800 ms back-off ends. No
    // acknowledged write was lost: each was watched (Write records carry
    // the revision the answer named).
    assert_eq!(st.api_codes.get(&429), None);
    let unseen = common::unseen_acks(&records);
    assert!(unseen.is_empty(), "{unseen:?}");
    // Leases kept being renewed after the restart (the watch cache follows
    // etcd again).
    let renewals_after = records
        .iter()
        .filter(|r| r["event"] == "Write" && r["key"].as_str().unwrap().starts_with("Lease/"))
        .filter(|r| r["t"].as_u64().unwrap() > 50_000_000_000)
        .count();
    // 3 nodes renewing every 10 s for 130 s: about 39.
    assert!(renewals_after >= 30, "{renewals_after}");
}
