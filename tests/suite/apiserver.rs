//! The modelled apiserver seen from a client: optimistic concurrency, watch
//! delivery order, and recovery of a watch that was cut off.

use crate::common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use common::{run_full, scenario};
use kubesim::api::manifest::{load_manifests, FieldReport};
use kubesim::api::{Kind, Object};
use kubesim::model::apiserver::request::{ApiRequest, EventType, Verb};
use kubesim::model::client::{ApiClient, SCHEDULER};
use kubesim::model::msg::{Message, Payload, Timer};
use kubesim::model::world::World;
use kubesim::scenario::build;
use kubesim::sim::{Actor, Ctx, SimDuration, SimTime, Trace, TraceLevel, TraceSink};

fn config_map(name: &str, value: &str) -> Object {
    let yaml = format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: default}}\ndata: {{k: \"{value}\"}}\n");
    load_manifests("t.yaml", &yaml, &mut FieldReport::default())
        .unwrap()
        .remove(0)
}

/// What the probe saw.
#[derive(Default, Debug)]
struct Seen {
    /// (tag, HTTP code, reason, resourceVersion) per response.
    responses: Vec<(u64, u16, &'static str, u64)>,
    /// (type, key, rv) per watch event, and the list's revision.
    watched: Vec<(EventType, String, u64)>,
    list_rv: u64,
}

/// A test client: creates a ConfigMap, updates it, updates it again with the
/// stale resourceVersion; and lists then watches Leases.
struct Probe {
    client: ApiClient,
    seen: Rc<RefCell<Seen>>,
    rv1: u64,
}

const CREATE: u64 = 1;
const UPDATE: u64 = 2;
const STALE: u64 = 3;
const LIST: u64 = 4;

impl Probe {
    fn update(&mut self, ctx: &mut Ctx<'_, Payload, World>, rv: u64, value: &str, tag: u64) {
        let mut req = ApiRequest::new(Verb::Update, Kind::ConfigMap, "default", "cm");
        let mut obj = config_map("cm", value);
        obj.meta.resource_version = rv;
        req.body = Some(Arc::new(obj));
        req.resource_version = rv;
        self.client.request(ctx, req, tag);
    }
}

impl Actor<Payload, World> for Probe {
    fn name(&self) -> &str {
        "probe"
    }

    fn start(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        // Wait for etcd to elect a leader and the kubelets to register.
        ctx.timer(
            SimDuration::from_secs(5),
            Payload::Timer(Timer::Action { index: 0 }),
        );
    }

    fn handle(&mut self, payload: Payload, ctx: &mut Ctx<'_, Payload, World>) {
        match payload {
            Payload::Timer(Timer::Action { .. }) => {
                let mut req = ApiRequest::new(Verb::Create, Kind::ConfigMap, "default", "cm");
                req.body = Some(Arc::new(config_map("cm", "1")));
                self.client.request(ctx, req, CREATE);
                let list = ApiRequest::new(Verb::List, Kind::Lease, "", "");
                self.client.request(ctx, list, LIST);
            }
            Payload::Timer(Timer::ClientRelease) => self.client.on_release(ctx),
            Payload::Timer(Timer::ClientRetry { req }) => self.client.on_retry(ctx, req),
            Payload::Msg {
                msg: Message::ApiResp(resp),
                ..
            } => {
                let Some(tag) = self.client.on_response(ctx, &resp) else {
                    return;
                };
                self.seen.borrow_mut().responses.push((
                    tag,
                    resp.code,
                    resp.reason,
                    resp.resource_version,
                ));
                match tag {
                    CREATE => {
                        self.rv1 = resp.resource_version;
                        self.update(ctx, self.rv1, "2", UPDATE);
                    }
                    UPDATE => self.update(ctx, self.rv1, "3", STALE),
                    LIST => {
                        self.seen.borrow_mut().list_rv = resp.resource_version;
                        let mut w = ApiRequest::new(Verb::Watch, Kind::Lease, "", "");
                        w.resource_version = resp.resource_version;
                        w.watch_id = 1;
                        self.client.request(ctx, w, 99);
                    }
                    _ => {}
                }
            }
            Payload::Msg {
                msg: Message::Watch(batch),
                ..
            } => {
                let mut seen = self.seen.borrow_mut();
                for ev in &batch.events {
                    if ev.type_ == EventType::Bookmark {
                        continue;
                    }
                    let key = ev
                        .object
                        .as_ref()
                        .map(|o| o.key().to_string())
                        .unwrap_or_default();
                    seen.watched.push((ev.type_, key, ev.resource_version));
                }
            }
            _ => {}
        }
    }

    fn crash(&mut self, _now: SimTime) {}
}

const CLUSTER: &str = r#"
name: probe
duration: 60s
cluster:
  nodePools:
    - {name: n, count: 3, capacity: {cpu: "2", memory: 4Gi}}
"#;

fn run_probe(seed: u64) -> (Rc<RefCell<Seen>>, Vec<serde_json::Value>) {
    let s = scenario(CLUSTER);
    let trace = Trace::new(TraceLevel::Full, TraceSink::Memory(Vec::new()));
    let (mut e, layout) = build(&s, seed, trace);
    let seen = Rc::new(RefCell::new(Seen::default()));
    let id = e.add(Box::new(Probe {
        client: ApiClient::new(layout.apiserver, SCHEDULER, SimDuration::from_secs(60)),
        seen: seen.clone(),
        rv1: 0,
    }));
    e.shared.net.add_endpoint(id, seed, "probe");
    e.run_until(SimTime(60_000_000_000), |_| {});
    let text = String::from_utf8(e.trace.memory().unwrap().to_vec()).unwrap();
    let records = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (seen, records)
}

#[test]
fn a_stale_resource_version_gets_409_conflict() {
    let (seen, _) = run_probe(1);
    let seen = seen.borrow();
    let by_tag = |t: u64| {
        seen.responses
            .iter()
            .find(|r| r.0 == t)
            .unwrap_or_else(|| panic!("no response for {t}: {:?}", seen.responses))
    };
    let (_, code, _, rv1) = *by_tag(CREATE);
    assert_eq!(code, 201);
    let (_, code, _, rv2) = *by_tag(UPDATE);
    assert_eq!(code, 200, "update at the current resourceVersion succeeds");
    assert!(rv2 > rv1, "the update got a new resourceVersion");
    let (_, code, reason, _) = *by_tag(STALE);
    assert_eq!(
        (code, reason),
        (409, "Conflict"),
        "update at {rv1} after {rv2}"
    );
}

#[test]
fn a_watch_delivers_every_committed_write_in_order() {
    for seed in 1..=3 {
        let (seen, records) = run_probe(seed);
        let seen = seen.borrow();
        let committed: Vec<(String, u64)> = records
            .iter()
            .filter(|r| r["event"] == "Write" && r["key"].as_str().unwrap().starts_with("Lease/"))
            .map(|r| {
                (
                    r["key"].as_str().unwrap().to_string(),
                    r["rv"].as_u64().unwrap(),
                )
            })
            .filter(|(_, rv)| *rv > seen.list_rv)
            .collect();
        let watched: Vec<(String, u64)> = seen
            .watched
            .iter()
            .map(|(_, k, rv)| (k.clone(), *rv))
            .collect();
        assert!(committed.len() > 10, "leases renew during the run");
        // The watch may trail the trace by the in-flight batch at the horizon.
        assert!(watched.len() + 3 >= committed.len());
        assert_eq!(
            watched[..],
            committed[..watched.len()],
            "seed {seed}: the watch saw exactly the committed writes, in order"
        );
        assert!(watched.windows(2).all(|w| w[0].1 < w[1].1));
    }
}

#[test]
fn a_cut_off_watch_relists_and_misses_nothing() {
    // worker-1 is partitioned from the control plane for longer than the
    // watch cache's history; meanwhile a pod is bound to it and another of
    // its pods is deleted. After the heal its kubelet must notice the gap,
    // relist, start the new pod and finish deleting the old one.
    let s = scenario(
        r#"
name: relist
duration: 240s
cluster:
  nodePools:
    - {name: worker, count: 2, capacity: {cpu: "2", memory: 4Gi}}
objects:
  - apiVersion: v1
    kind: Pod
    metadata: {name: old}
    spec:
      nodeName: worker-1
      containers: [{name: c, image: busybox}]
timeline:
  - {at: 30s, partition: [worker-1]}
  - at: 40s
    apply:
      apiVersion: v1
      kind: Pod
      metadata: {name: new}
      spec:
        nodeName: worker-1
        containers: [{name: c, image: busybox}]
  - {at: 50s, delete: {kind: Pod, name: old}}
  - {at: 150s, heal: true}
"#,
    );
    let ran = run_full(&s, None);
    let summary = &ran.finished.summary;
    assert!(
        summary.watch.relists >= 1,
        "the kubelet relisted: {summary:?}"
    );
    let store = &ran.finished.engine.shared.etcd;
    let pods: Vec<String> = store
        .keys()
        .filter(|k| k.kind == Kind::Pod)
        .map(|k| k.name.clone())
        .collect();
    assert_eq!(pods, vec!["new".to_string()], "old finished deleting");
    let new = store
        .keys()
        .find(|k| k.name == "new")
        .and_then(|k| store.get(k))
        .unwrap();
    assert_eq!(new.as_pod().unwrap().status.phase.as_str(), "Running");
    // Nothing about the new pod reached the kubelet before the heal.
    let admitted = ran
        .events(Some("kubelet/worker-1"), "PodAdmitted")
        .filter(|r| r["pod"] == "default/new")
        .map(common::secs)
        .next()
        .unwrap();
    assert!(admitted >= 150.0, "admitted at {admitted}");
}
