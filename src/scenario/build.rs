//! Wiring a loaded scenario into an engine: which components exist, in which
//! order, with which configuration. The order only fixes component ids; RNG
//! streams derive from names, so adding a node never changes another's draws.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::driver::ScenarioDriver;
use super::{Scenario, BUILTIN_NAMESPACES};
use crate::api::object::{Body, Meta};
use crate::api::{Kind, Object};
use crate::controllers::ControllerManager;
use crate::model::apiserver::ApiServer;
use crate::model::etcd::{EtcdMember, EtcdStore};
use crate::model::kubelet::Kubelet;
use crate::model::msg::Payload;
use crate::model::network::{self, Network};
use crate::model::world::World;
use crate::report::bootstrap::Bootstrap;
use crate::scheduler::component::Scheduler;
use crate::sim::{ComponentId, Engine, SimTime, Trace, TraceLevel};

/// Where each component sits in the engine.
#[derive(Clone, Debug)]
pub struct Layout {
    pub etcd: Vec<ComponentId>,
    pub apiserver: ComponentId,
    /// Node name → its kubelet.
    pub kubelets: BTreeMap<String, ComponentId>,
    pub scheduler: Option<ComponentId>,
    pub controller_manager: Option<ComponentId>,
    /// The `kubectl … -w` watcher, when controllers run.
    pub watcher: Option<ComponentId>,
    pub driver: ComponentId,
    /// The workload submitter, when the scenario has a `workload:`.
    pub workload: Option<ComponentId>,
    /// The cluster autoscaler's process and the cloud it calls, when a
    /// pool autoscales.
    pub autoscaler: Option<(ComponentId, ComponentId)>,
}

impl Layout {
    /// Component ids by the names a scenario uses for them.
    pub fn by_name(&self) -> BTreeMap<String, ComponentId> {
        let mut m: BTreeMap<String, ComponentId> = self
            .kubelets
            .iter()
            .map(|(n, id)| (n.clone(), *id))
            .collect();
        for (i, id) in self.etcd.iter().enumerate() {
            m.insert(format!("etcd-{i}"), *id);
        }
        m.insert("kube-apiserver".into(), self.apiserver);
        if let Some(s) = self.scheduler {
            m.insert("kube-scheduler".into(), s);
        }
        if let Some(c) = self.controller_manager {
            m.insert("kube-controller-manager".into(), c);
        }
        if let Some(w) = self.workload {
            m.insert(crate::workload::submitter::NAME.into(), w);
        }
        if let Some((ca, cloud)) = self.autoscaler {
            m.insert(crate::autoscaler::cluster_autoscaler::PROCESS.into(), ca);
            m.insert(crate::autoscaler::cloud::NAME.into(), cloud);
        }
        m
    }
}

fn namespace(name: &str) -> Object {
    Object {
        kind: Kind::Namespace,
        meta: Meta {
            name: name.into(),
            ..Default::default()
        },
        body: Body::Namespace(Default::default()),
    }
}

/// Builds the engine for `scenario` with `seed`, recording into `trace`.
pub fn build(scenario: &Scenario, seed: u64, mut trace: Trace) -> (Engine<Payload, World>, Layout) {
    let mut store = EtcdStore::new();
    let initial = store.seed(BUILTIN_NAMESPACES.iter().map(|n| namespace(n)).collect());
    // The bootstrap state is part of the trace, so that replaying the trace's
    // writes rebuilds the whole store.
    for o in &initial {
        let full = trace.enabled(TraceLevel::Full);
        let json = full.then(|| o.to_json());
        let key = o.key().to_string();
        trace.record(TraceLevel::Events, SimTime::ZERO, "etcd", "Seed", |r| {
            r.str("key", &key).u64("rv", o.meta.resource_version);
            if let Some(j) = &json {
                r.json("object", j);
            }
        });
    }
    let world = World::new(Network::new(scenario.link.clone()), store);
    let mut e: Engine<Payload, World> = Engine::new(seed, world, trace);
    // The nodes a real cluster would have before anyone applies to it.
    let present = scenario
        .nodes
        .iter()
        .filter(|n| n.join_at.is_none() && !n.standby);
    e.shared.stats.bootstrap = Bootstrap::new(present.map(|n| n.name.clone()));
    let prices = scenario.nodes.iter().filter(|n| n.price_per_hour > 0.0);
    e.shared
        .stats
        .over_time
        .set_prices(prices.map(|n| (n.name.clone(), n.price_per_hour)).collect());
    let etcd_cfg = Arc::new(scenario.etcd.clone());
    let members: Vec<ComponentId> = (0..scenario.etcd_members).collect();
    for i in 0..scenario.etcd_members {
        let id = e.add(Box::new(EtcdMember::new(
            i,
            members.clone(),
            etcd_cfg.clone(),
        )));
        e.shared.net.add_endpoint(id, seed, &format!("etcd-{i}"));
        e.shared
            .net
            .set_keepalive(id, network::RAFT_STREAM_KEEPALIVE);
    }
    let apiserver = e.add(Box::new(ApiServer::new(
        scenario.apiserver.clone(),
        members.clone(),
        initial,
    )));
    e.shared.net.add_endpoint(apiserver, seed, "kube-apiserver");
    e.shared
        .net
        .set_keepalive(apiserver, network::ETCD_CLIENT_KEEPALIVE);
    let mut kubelets = BTreeMap::new();
    let dra = scenario.uses_dra();
    for n in &scenario.nodes {
        let kubelet = Box::new(
            Kubelet::new(
                &n.name,
                apiserver,
                n.body.clone(),
                n.labels.clone(),
                scenario.kubelet.clone(),
            )
            .with_drivers(n.drivers.clone()),
        );
        let id = if n.join_at.is_some() || n.standby {
            e.add_down(kubelet)
        } else {
            e.add(kubelet)
        };
        e.shared
            .net
            .add_endpoint(id, seed, &format!("kubelet/{}", n.name));
        kubelets.insert(n.name.clone(), id);
    }
    let scheduler = scenario.scheduler.as_ref().map(|cfg| {
        let scheduler = Scheduler::new(apiserver, cfg.clone());
        let scheduler = if dra { scheduler.with_dra() } else { scheduler };
        let id = e.add(Box::new(scheduler));
        e.shared.net.add_endpoint(id, seed, "kube-scheduler");
        id
    });
    let controller_manager = scenario.controller_manager.as_ref().map(|cfg| {
        let mut controllers = crate::controllers::default_controllers(cfg);
        let mut watched = crate::controllers::manager::WATCHED.to_vec();
        if dra {
            // After the others, so the rest keep their clients and tags.
            use crate::controllers::resource_claim::ResourceClaimController;
            controllers.push(Box::new(ResourceClaimController::default()));
            watched.extend([
                Kind::ResourceClaim,
                Kind::ResourceClaimTemplate,
                Kind::ResourceSlice,
            ]);
        }
        let id = e.add(Box::new(ControllerManager::process(
            "kube-controller-manager",
            &watched,
            apiserver,
            controllers,
            cfg.api,
        )));
        e.shared
            .net
            .add_endpoint(id, seed, "kube-controller-manager");
        id
    });
    // `kubectl rollout status -w` and `kubectl get endpoints -w` at a
    // terminal, so the trace holds what a person watching would read.
    let watcher = scenario.controller_manager.as_ref().map(|_| {
        use crate::controllers::rollout_status::{RolloutStatusWatcher, PROCESS, WATCHED};
        let id = e.add(Box::new(ControllerManager::process(
            PROCESS,
            WATCHED,
            apiserver,
            vec![Box::new(RolloutStatusWatcher::default())],
            super::driver::KUBECTL,
        )));
        e.shared.net.add_endpoint(id, seed, PROCESS);
        id
    });
    let mut layout = Layout {
        etcd: members,
        apiserver,
        kubelets,
        scheduler,
        controller_manager,
        watcher,
        driver: 0,
        workload: None,
        autoscaler: None,
    };
    // Before the driver, which addresses it by name; a scenario without
    // autoscaling adds nothing here and keeps its ids.
    if let Some(a) = &scenario.autoscaling {
        layout.autoscaler = Some(add_autoscaler(&mut e, a, apiserver, &layout.kubelets, seed));
    }
    let driver =
        ScenarioDriver::new(scenario, &layout).with_steps(crate::faults::timeline(scenario, seed));
    layout.driver = e.add(Box::new(driver));
    e.shared.net.add_endpoint(layout.driver, seed, "kubectl");
    // After every other component, so a scenario without a workload keeps
    // its ids (and digest) unchanged.
    if let Some(w) = &scenario.workload {
        use crate::workload::submitter::{WorkloadSubmitter, NAME};
        let id = e.add(Box::new(WorkloadSubmitter::new(apiserver, w)));
        e.shared.net.add_endpoint(id, seed, NAME);
        layout.workload = Some(id);
    }
    (e, layout)
}

/// The cloud provider and the cluster autoscaler: (autoscaler, cloud).
fn add_autoscaler(
    e: &mut Engine<Payload, World>,
    a: &crate::autoscaler::Autoscaling,
    apiserver: ComponentId,
    kubelets: &BTreeMap<String, ComponentId>,
    seed: u64,
) -> (ComponentId, ComponentId) {
    use crate::autoscaler::cloud::{CloudProvider, NAME};
    use crate::autoscaler::cluster_autoscaler::{ClusterAutoscaler, CLIENT, PROCESS, WATCHED};
    let cloud = e.add(Box::new(CloudProvider::new(
        apiserver,
        a.groups.clone(),
        kubelets,
    )));
    e.shared.net.add_endpoint(cloud, seed, NAME);
    let ca = ClusterAutoscaler::new(a.config.clone(), seed);
    let id = e.add(Box::new(
        ControllerManager::process(PROCESS, WATCHED, apiserver, vec![Box::new(ca)], CLIENT)
            .with_cloud(cloud),
    ));
    e.shared.net.add_endpoint(id, seed, PROCESS);
    (id, cloud)
}
