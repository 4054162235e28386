//! The scenario driver: plays the timeline. API actions go through the
//! modelled apiserver as kubectl would send them (with kubectl's client rate
//! limit, and client-go's retry of throttled requests); faults act on the
//! engine (crash, restart) and the network (partition, heal).
//!
//! `apply` is create-or-merge: a POST, and on `409 AlreadyExists` a merge
//! patch of the manifest's labels, annotations and spec, which is what
//! `kubectl apply` amounts to for a manifest that only adds or changes fields.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{json, Map, Value as Json};

use super::build::Layout;
use super::component_faults::ProcessFaults;
use super::drain::{DrainRun, Stage as DrainStage, Step as DrainStep};
use super::leader_wait::{self, LeaderWait};
use super::{Action, EtcdTarget, RolloutOp, Scenario, Step};
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, ApiResponse, PatchOp, Verb};
use crate::model::client::{ApiClient, RateLimit};
use crate::model::msg::{Message, Payload, Timer};
use crate::model::world::World;
use crate::report::stats::ActionOutcome;
use crate::sim::{Actor, ComponentId, Ctx, Lifecycle, SimDuration, SimTime, TraceLevel};

/// kubectl's client: QPS 50, burst 300 (raised from client-go's 5/10 in 1.27).
pub const KUBECTL: RateLimit = RateLimit {
    qps: 50.0,
    burst: 300,
};

/// kubectl's request deadline: the apiserver's own 60 s request timeout.
const REQUEST_TIMEOUT: SimDuration = SimDuration::from_secs(60);

/// What a request in flight was for.
struct Pending {
    /// Index into the timeline, or `None` for the initial `objects:`.
    step: Option<u32>,
    what: String,
    req: ApiRequest,
    /// For apply: the object, to merge on `AlreadyExists`.
    apply: Option<Arc<Object>>,
    /// What kubectl does with the answer before the action is finished.
    then: Option<Then>,
}

/// The second half of a kubectl command that reads before it writes.
#[derive(Clone, Debug)]
pub(super) enum Then {
    /// `set image`: the object was read; patch the container's image.
    SetImage { container: String, image: String },
    /// `rollout undo`: the Deployment was read; list its ReplicaSets.
    UndoRead { to_revision: Option<i64> },
    /// `rollout undo`: the ReplicaSets were listed; patch the template back.
    UndoListed {
        deployment: Arc<Object>,
        to_revision: Option<i64>,
    },
    /// A request of the drain at this index.
    Drain { drain: u32, stage: DrainStage },
    /// `apply` of an object that exists: it was read; patch it three ways.
    ApplyRead,
    /// `crashContainer`: the namespace's pods were listed; pick one.
    CrashContainer(super::workload_faults::ContainerCrash),
}

/// The objects of one apply still to send: kubectl sends one request at a
/// time and waits for its answer, so a Namespace exists before its Pods.
struct ApplyBatch {
    step: Option<u32>,
    rest: VecDeque<Arc<Object>>,
}

pub struct ScenarioDriver {
    name: String,
    client: ApiClient,
    initial: Vec<Arc<Object>>,
    steps: Vec<Step>,
    pub(super) nodes: BTreeMap<String, ComponentId>,
    etcd: Vec<ComponentId>,
    pub(super) components: BTreeMap<String, ComponentId>,
    pending: BTreeMap<u64, Pending>,
    next_tag: u64,
    /// Request tag of the apply in flight → the rest of its batch.
    batches: BTreeMap<u64, ApplyBatch>,
    /// Every drain started, with the timeline index it came from.
    drains: Vec<(Option<u32>, DrainRun)>,
    /// etcd's `--election-timeout`: what bounds a wait for a leader.
    election_timeout: SimDuration,
    /// Every `crashEtcd: leader` that found an election under way.
    leader_waits: Vec<LeaderWait>,
    /// Kubelets crashed or hung (see [`super::component_faults`]).
    process_faults: ProcessFaults,
}

impl ScenarioDriver {
    pub fn new(scenario: &Scenario, layout: &Layout) -> Self {
        // Namespaces first, then CustomResourceDefinitions (as `helm
        // install` applies `crds/` before the templates), then the rest in
        // file order, as `kubectl apply -f` on a directory would need them.
        let first = |o: &&Object| o.kind == Kind::Namespace;
        let crd = |o: &&Object| o.kind == Kind::CustomResourceDefinition;
        let initial: Vec<Arc<Object>> = (scenario.objects.iter().filter(first))
            .chain(scenario.objects.iter().filter(crd))
            .chain(scenario.objects.iter().filter(|o| !first(o) && !crd(o)))
            .cloned()
            .map(Arc::new)
            .collect();
        ScenarioDriver {
            name: "kubectl".into(),
            client: ApiClient::new(layout.apiserver, scenario.kubectl, REQUEST_TIMEOUT),
            initial,
            steps: scenario.timeline.clone(),
            nodes: layout.kubelets.clone(),
            etcd: layout.etcd.clone(),
            components: layout.by_name(),
            pending: BTreeMap::new(),
            next_tag: 1,
            batches: BTreeMap::new(),
            drains: Vec::new(),
            election_timeout: scenario
                .etcd
                .heartbeat_interval
                .saturating_mul(scenario.etcd.election_ticks as u64),
            leader_waits: Vec::new(),
            process_faults: ProcessFaults::default(),
        }
    }

    /// Plays `steps` instead of the scenario's own timeline (the timeline
    /// with the faults drawn from the seed merged in).
    pub fn with_steps(mut self, steps: Vec<Step>) -> Self {
        self.steps = steps;
        self
    }

    pub(super) fn steps_line(&self, index: u32) -> u32 {
        self.steps[index as usize].line
    }

    fn line_of(&self, step: Option<u32>) -> u32 {
        step.map(|i| self.steps[i as usize].line).unwrap_or(0)
    }

    pub(super) fn outcome(
        &self,
        ctx: &mut Ctx<'_, Payload, World>,
        step: Option<u32>,
        what: &str,
        result: String,
    ) {
        let line = self.line_of(step);
        ctx.trace.record(
            TraceLevel::Events,
            ctx.now,
            &self.name,
            "ActionResult",
            |r| {
                r.u64("line", line as u64)
                    .str("action", what)
                    .str("result", &result);
            },
        );
        ctx.shared.stats.actions.push(ActionOutcome {
            at_s: ctx.now.0 as f64 / 1e9,
            line,
            action: what.to_string(),
            result,
        });
    }

    fn send(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        step: Option<u32>,
        what: String,
        req: ApiRequest,
        apply: Option<Arc<Object>>,
    ) -> u64 {
        let tag = self.next_tag;
        self.next_tag += 1;
        self.client.request(ctx, req.clone(), tag);
        self.pending.insert(
            tag,
            Pending {
                step,
                what,
                req,
                apply,
                then: None,
            },
        );
        tag
    }

    /// Sends a read whose answer `then` continues.
    pub(super) fn send_then(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        step: Option<u32>,
        what: String,
        req: ApiRequest,
        then: Then,
    ) {
        let tag = self.send(ctx, step, what, req, None);
        if let Some(p) = self.pending.get_mut(&tag) {
            p.then = Some(then);
        }
    }

    /// Continues a read-then-write command; `Err` is kubectl's error message.
    fn follow_up(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        p: &Pending,
        then: Then,
        resp: &ApiResponse,
    ) -> Result<(), String> {
        let (ns, name) = (p.req.namespace.clone(), p.req.name.clone());
        match then {
            Then::SetImage { container, image } => {
                let obj = resp.object.as_ref().ok_or("no object in the answer")?;
                let json = obj.to_json();
                let base = if obj.kind == Kind::Pod {
                    "/spec"
                } else {
                    "/spec/template/spec"
                };
                for list in ["containers", "initContainers"] {
                    let found = json
                        .pointer(&format!("{base}/{list}"))
                        .and_then(Json::as_array)
                        .and_then(|cs| cs.iter().position(|c| c["name"] == container.as_str()));
                    if let Some(i) = found {
                        let mut req = ApiRequest::new(Verb::Patch, obj.kind, &ns, &name);
                        req.patch = Some(PatchOp::JsonPatch(vec![(
                            format!("{base}/{list}/{i}/image"),
                            json!(image),
                        )]));
                        self.send(ctx, p.step, p.what.clone(), req, None);
                        return Ok(());
                    }
                }
                Err(format!("unable to find container named {container:?}"))
            }
            Then::UndoRead { to_revision } => {
                let d = resp.object.clone().ok_or("no object in the answer")?;
                let paused = d.to_json()["spec"]["paused"].as_bool().unwrap_or(false);
                if paused {
                    return Err(format!("you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume deployment/{name}' and try again"));
                }
                let req = ApiRequest::new(Verb::List, Kind::ReplicaSet, &ns, "");
                let then = Then::UndoListed {
                    deployment: d,
                    to_revision,
                };
                self.send_then(ctx, p.step, p.what.clone(), req, then);
                Ok(())
            }
            Then::UndoListed {
                deployment,
                to_revision,
            } => {
                let (template, annotations) =
                    rollback_target(&deployment, &resp.items, to_revision)?;
                let mut req =
                    ApiRequest::new(Verb::Patch, Kind::Deployment, &ns, &deployment.meta.name);
                req.patch = Some(PatchOp::JsonPatch(vec![
                    ("/spec/template".into(), template),
                    ("/metadata/annotations".into(), annotations),
                ]));
                self.send(ctx, p.step, p.what.clone(), req, None);
                Ok(())
            }
            Then::CrashContainer(c) => self.crash_listed(ctx, p.step, &p.what, &c, &resp.items),
            // Answered in `on_response` before any follow-up.
            Then::Drain { .. } | Then::ApplyRead => Ok(()),
        }
    }

    /// Starts applying `objs` one after another.
    fn apply_all(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        step: Option<u32>,
        objs: Vec<Arc<Object>>,
    ) {
        let mut rest: VecDeque<Arc<Object>> = objs.into();
        if let Some(first) = rest.pop_front() {
            let tag = self.apply(ctx, step, first);
            self.batches.insert(tag, ApplyBatch { step, rest });
        }
    }

    fn apply(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        step: Option<u32>,
        obj: Arc<Object>,
    ) -> u64 {
        let mut req = ApiRequest::new(Verb::Create, obj.kind, &obj.meta.namespace, &obj.meta.name);
        let mut annotated = (*obj).clone();
        Arc::make_mut(&mut annotated.meta.annotations)
            .insert(LAST_APPLIED.into(), applied_config(&obj).to_string());
        req.body = Some(Arc::new(annotated));
        let what = format!(
            "apply {}",
            describe(obj.kind, &obj.meta.namespace, &obj.meta.name)
        );
        self.send(ctx, step, what, req, Some(obj))
    }

    /// The request `tag` is finished: send the next object of its batch.
    fn continue_batch(&mut self, ctx: &mut Ctx<'_, Payload, World>, tag: u64) {
        if let Some(mut batch) = self.batches.remove(&tag) {
            if let Some(next) = batch.rest.pop_front() {
                let tag = self.apply(ctx, batch.step, next);
                self.batches.insert(tag, batch);
            }
        }
    }

    /// The request `old` continues as `new` (a retry, or apply's merge).
    fn move_batch(&mut self, old: u64, new: u64) {
        if let Some(b) = self.batches.remove(&old) {
            self.batches.insert(new, b);
        }
    }

    fn run_step(&mut self, ctx: &mut Ctx<'_, Payload, World>, index: u32) {
        let step = self.steps[index as usize].clone();
        let line = step.line as u64;
        if let Some(note) = &step.note {
            ctx.trace
                .record(TraceLevel::Faults, ctx.now, &self.name, "Note", |r| {
                    r.u64("line", line).str("text", note);
                });
        }
        let Some(action) = step.action else {
            return;
        };
        let what = action.to_string();
        // When the command was typed: charts mark actions here, whenever
        // they finish.
        ctx.trace
            .record(TraceLevel::Faults, ctx.now, &self.name, "Action", |r| {
                r.u64("line", line).str("action", &what);
            });
        let step = Some(index);
        if self.network_fault(ctx, step, &what, &action)
            || self.workload_fault(ctx, step, &what, &action)
        {
            return;
        }
        match action {
            Action::Apply(objs) => self.apply_all(ctx, step, objs),
            Action::Delete {
                kind,
                namespace,
                name,
                grace_seconds,
                propagation,
            } => {
                let mut req = ApiRequest::new(Verb::Delete, kind, &namespace, &name);
                req.grace_seconds = grace_seconds;
                req.propagation = propagation;
                self.send(ctx, step, what, req, None);
            }
            Action::Scale {
                kind,
                namespace,
                name,
                replicas,
            } => {
                let mut req = ApiRequest::new(Verb::Patch, kind, &namespace, &name);
                req.patch = Some(PatchOp::Merge(json!({"spec": {"replicas": replicas}})));
                self.send(ctx, step, what, req, None);
            }
            Action::Patch {
                kind,
                namespace,
                name,
                patch,
            } => {
                let mut req = ApiRequest::new(Verb::Patch, kind, &namespace, &name);
                req.patch = Some(PatchOp::Merge(patch));
                self.send(ctx, step, what, req, None);
            }
            Action::SetImage {
                kind,
                namespace,
                name,
                container,
                image,
            } => {
                let req = ApiRequest::new(Verb::Get, kind, &namespace, &name);
                self.send_then(ctx, step, what, req, Then::SetImage { container, image });
            }
            Action::Rollout {
                op,
                namespace,
                name,
                to_revision,
            } => {
                let mut req = ApiRequest::new(Verb::Patch, Kind::Deployment, &namespace, &name);
                match op {
                    RolloutOp::Undo => {
                        let req = ApiRequest::new(Verb::Get, Kind::Deployment, &namespace, &name);
                        return self.send_then(
                            ctx,
                            step,
                            what,
                            req,
                            Then::UndoRead { to_revision },
                        );
                    }
                    RolloutOp::Pause => {
                        req.patch = Some(PatchOp::Merge(json!({"spec": {"paused": true}})))
                    }
                    RolloutOp::Resume => {
                        req.patch = Some(PatchOp::Merge(json!({"spec": {"paused": null}})))
                    }
                    RolloutOp::Restart => {
                        req.patch = Some(PatchOp::Merge(json!({"spec": {"template": {"metadata": {
                            "annotations": {"kubectl.kubernetes.io/restartedAt": ctx.now.rfc3339()}}}}})))
                    }
                }
                self.send(ctx, step, what, req, None);
            }
            Action::Cordon(node, on) => {
                let mut req = ApiRequest::new(Verb::Patch, Kind::Node, "", &node);
                let v = if on { json!(true) } else { Json::Null };
                req.patch = Some(PatchOp::Merge(json!({"spec": {"unschedulable": v}})));
                self.send(ctx, step, what, req, None);
            }
            Action::Drain(opts) => {
                let timeout = opts.timeout;
                let (run, steps) = DrainRun::start(opts, ctx.now);
                let d = self.drains.len() as u32;
                self.drains.push((step, run));
                if let Some(t) = timeout {
                    ctx.timer(t, Payload::Timer(Timer::DrainTimeout { drain: d }));
                }
                self.drain_steps(ctx, d, steps);
            }
            Action::JoinNode(n) => {
                let id = self.nodes[&n];
                let already = ctx.is_alive(id);
                self.fault(ctx, step, &what, "NodeJoin", &n, already);
                if !already {
                    ctx.lifecycle(Lifecycle::Restart(id));
                }
            }
            Action::CrashNode(n) | Action::RestartNode(n) => {
                let id = self.nodes[&n];
                let crash = what.starts_with("crash");
                let (op, event) = if crash {
                    (Lifecycle::Crash(id), "NodeCrash")
                } else {
                    (Lifecycle::Restart(id), "NodeRestart")
                };
                let already = ctx.is_alive(id) != crash;
                self.fault(ctx, step, &what, event, &n, already);
                if !already {
                    if crash {
                        // The machine dies: nothing closes its connections.
                        crate::model::network::close_connections(ctx, id, false);
                    }
                    ctx.lifecycle(op);
                }
            }
            Action::CrashEtcd(target) => {
                let id = match target {
                    EtcdTarget::Member(i) => Some(self.etcd[i as usize]),
                    EtcdTarget::Leader => ctx.shared.etcd_leader,
                };
                match id {
                    // No member leads: wait for the election to finish.
                    None => {
                        let w = LeaderWait::new(step, &what, ctx.now, self.election_timeout);
                        self.leader_waits.push(w);
                        let wait = (self.leader_waits.len() - 1) as u32;
                        ctx.timer(
                            leader_wait::POLL,
                            Payload::Timer(Timer::LeaderWait { wait }),
                        );
                    }
                    Some(id) => self.crash_etcd(ctx, step, &what, id, None),
                }
            }
            Action::RestartEtcd(which) => {
                self.end_leader_waits(ctx, step);
                let targets: Vec<u32> = match which {
                    Some(i) => vec![i],
                    None => (0..self.etcd.len() as u32)
                        .filter(|i| !ctx.is_alive(self.etcd[*i as usize]))
                        .collect(),
                };
                if targets.is_empty() {
                    self.fault(ctx, step, &what, "EtcdRestart", "no member", true);
                }
                for i in targets {
                    let id = self.etcd[i as usize];
                    let already = ctx.is_alive(id);
                    self.fault(
                        ctx,
                        step,
                        &what,
                        "EtcdRestart",
                        &format!("etcd-{i}"),
                        already,
                    );
                    if !already {
                        ctx.lifecycle(Lifecycle::Restart(id));
                    }
                }
            }
            Action::Partition(names) => {
                let ids: Vec<ComponentId> = names.iter().map(|n| self.components[n]).collect();
                crate::model::network::partition(ctx, &ids);
                self.fault(ctx, step, &what, "Partition", &names.join(","), false);
            }
            Action::Heal => {
                crate::model::network::heal(ctx);
                self.fault(ctx, step, &what, "Heal", "all", false);
            }
            a @ (Action::CrashComponent(_)
            | Action::RestartComponent(_)
            | Action::CrashKubelet(_)
            | Action::RestartKubelet(_)
            | Action::HangKubelet(_)
            | Action::ResumeKubelet(_)
            | Action::SlowDisk { .. }
            | Action::HealDisk(_)) => {
                let done = self
                    .process_faults
                    .inject(ctx, &a, &self.components, &self.etcd);
                self.fault(ctx, step, &what, done.event, &done.target, done.already);
            }
            // Played above.
            Action::PartitionOneWay { .. }
            | Action::PartitionBetween(_)
            | Action::DegradeLinks(_)
            | Action::RestoreLinks(_)
            | Action::CrashContainer(_)
            | Action::FailImagePulls(_)
            | Action::RestoreImagePulls(_) => {}
        }
    }

    /// Carries out what a drain asked for.
    fn drain_steps(&mut self, ctx: &mut Ctx<'_, Payload, World>, d: u32, steps: Vec<DrainStep>) {
        let step = self.drains[d as usize].0;
        let what = self.drains[d as usize].1.opts.to_string();
        let node = self.drains[d as usize].1.opts.node.clone();
        let line = self.line_of(step) as u64;
        for s in steps {
            match s {
                DrainStep::Send(req, stage) => {
                    let tag = self.send(ctx, step, what.clone(), *req, None);
                    if let Some(p) = self.pending.get_mut(&tag) {
                        p.then = Some(Then::Drain { drain: d, stage });
                    }
                }
                DrainStep::Wake(after, pod) => {
                    ctx.timer(after, Payload::Timer(Timer::DrainWake { drain: d, pod }));
                }
                DrainStep::Say(text) => {
                    ctx.trace
                        .record(TraceLevel::Events, ctx.now, &self.name, "Drain", |r| {
                            r.u64("line", line).str("node", &node).str("output", &text);
                        });
                }
                DrainStep::Finish(result) => {
                    let result = match result {
                        Ok(m) => format!("ok: {m}"),
                        Err(m) => format!("failed: {m}"),
                    };
                    self.outcome(ctx, step, &what, result);
                }
            }
        }
    }

    /// Crashes etcd member `id`; `result` replaces the plain "ok" (a crash
    /// that waited for an election says how long).
    fn crash_etcd(
        &self,
        ctx: &mut Ctx<'_, Payload, World>,
        step: Option<u32>,
        what: &str,
        id: ComponentId,
        result: Option<String>,
    ) {
        let member = self.member_name(id);
        let already = !ctx.is_alive(id);
        match result {
            Some(result) if !already => {
                let line = self.line_of(step) as u64;
                ctx.trace
                    .record(TraceLevel::Faults, ctx.now, &self.name, "EtcdCrash", |r| {
                        r.u64("line", line).str("target", &member);
                    });
                self.outcome(ctx, step, what, result);
            }
            _ => self.fault(ctx, step, what, "EtcdCrash", &member, already),
        }
        if !already {
            if ctx.shared.etcd_leader == Some(id) {
                ctx.shared.etcd_leader = None;
            }
            // The process exits: its sockets close.
            crate::model::network::close_connections(ctx, id, true);
            ctx.lifecycle(Lifecycle::Crash(id));
        }
    }

    /// A waiting `crashEtcd: leader` looks again: crash the leader if one
    /// was elected, give up at the deadline, or look again in a millisecond.
    /// A restart heals the crashes before it: a `crashEtcd: leader` still
    /// waiting for an election gives up rather than crash a member after
    /// its heal.
    fn end_leader_waits(&mut self, ctx: &mut Ctx<'_, Payload, World>, restart: Option<u32>) {
        let line = self.line_of(restart);
        for i in 0..self.leader_waits.len() {
            if self.leader_waits[i].done {
                continue;
            }
            self.leader_waits[i].done = true;
            let w = self.leader_waits[i].clone();
            self.outcome(ctx, w.step, &w.what, w.overtaken(ctx.now, line));
        }
    }

    fn on_leader_wait(&mut self, ctx: &mut Ctx<'_, Payload, World>, wait: u32) {
        let w = self.leader_waits[wait as usize].clone();
        if w.done {
            return;
        }
        if let Some(id) = ctx.shared.etcd_leader {
            self.leader_waits[wait as usize].done = true;
            let result = w.crashed(ctx.now, &self.member_name(id));
            return self.crash_etcd(ctx, w.step, &w.what, id, Some(result));
        }
        if ctx.now >= w.deadline {
            self.leader_waits[wait as usize].done = true;
            return self.outcome(ctx, w.step, &w.what, w.gave_up(ctx.now));
        }
        ctx.timer(
            leader_wait::POLL,
            Payload::Timer(Timer::LeaderWait { wait }),
        );
    }

    fn member_name(&self, id: ComponentId) -> String {
        let i = self.etcd.iter().position(|m| *m == id).unwrap_or(0);
        format!("etcd-{i}")
    }

    /// Records a fault injection, or that it changed nothing.
    pub(super) fn fault(
        &self,
        ctx: &mut Ctx<'_, Payload, World>,
        step: Option<u32>,
        what: &str,
        event: &str,
        target: &str,
        already: bool,
    ) {
        if already {
            self.outcome(
                ctx,
                step,
                what,
                format!("ok: nothing to do, {target} was already in that state"),
            );
            return;
        }
        let line = self.line_of(step) as u64;
        ctx.trace
            .record(TraceLevel::Faults, ctx.now, &self.name, event, |r| {
                r.u64("line", line).str("target", target);
            });
        let fault = crate::faults::Observation::Fault { event, target };
        ctx.shared.observe(ctx.now, fault);
        self.outcome(ctx, step, what, "ok".into());
    }

    fn on_response(&mut self, ctx: &mut Ctx<'_, Payload, World>, resp: &ApiResponse) {
        let Some(tag) = self.client.on_response(ctx, resp) else {
            return;
        };
        let Some(p) = self.pending.remove(&tag) else {
            return;
        };
        if let Some(Then::Drain { drain, stage }) = p.then {
            let steps = self.drains[drain as usize]
                .1
                .on_response(stage, Some(resp), ctx.now);
            return self.drain_steps(ctx, drain, steps);
        }
        if let (Some(Then::ApplyRead), Some(obj), Some(live)) = (
            &p.then,
            p.apply.clone(),
            resp.object.as_ref().filter(|_| resp.ok()),
        ) {
            let mut req =
                ApiRequest::new(Verb::Patch, obj.kind, &obj.meta.namespace, &obj.meta.name);
            req.patch = Some(PatchOp::Merge(apply_patch(&obj, live)));
            let new = self.send(ctx, p.step, p.what, req, Some(obj));
            return self.move_batch(tag, new);
        }
        if resp.ok() {
            if let Some(then) = p.then.clone() {
                if let Err(msg) = self.follow_up(ctx, &p, then, resp) {
                    self.outcome(ctx, p.step, &p.what, format!("failed: {msg}"));
                }
                return;
            }
            let detail = match (p.req.verb, resp.code) {
                (Verb::Create, _) => "created".to_string(),
                (Verb::Patch, _) if p.apply.is_some() => "configured".to_string(),
                (Verb::Delete, _) => "deleted".to_string(),
                (_, _) => "done".to_string(),
            };
            let rv = resp.resource_version;
            self.outcome(
                ctx,
                p.step,
                &p.what,
                format!("ok: {detail} at resourceVersion {rv}"),
            );
            return self.continue_batch(ctx, tag);
        }
        if resp.code == 409 && resp.reason == "AlreadyExists" && p.req.verb == Verb::Create {
            if let Some(obj) = p.apply.clone() {
                // kubectl apply reads the live object for its last-applied
                // configuration before it patches.
                let req = ApiRequest::new(Verb::Get, obj.kind, &obj.meta.namespace, &obj.meta.name);
                let new = self.send(ctx, p.step, p.what, req, Some(obj));
                if let Some(q) = self.pending.get_mut(&new) {
                    q.then = Some(Then::ApplyRead);
                }
                return self.move_batch(tag, new);
            }
        }
        self.outcome(
            ctx,
            p.step,
            &p.what,
            format!("failed: {} {}: {}", resp.code, resp.reason, resp.message),
        );
        // kubectl reports the failure and goes on with the next object.
        self.continue_batch(ctx, tag);
    }

    fn on_lost(&mut self, ctx: &mut Ctx<'_, Payload, World>, tag: Option<u64>, why: &str) {
        let Some(tag) = tag else { return };
        if let Some(p) = self.pending.remove(&tag) {
            if let Some(Then::Drain { drain, stage }) = p.then {
                let steps = self.drains[drain as usize]
                    .1
                    .on_response(stage, None, ctx.now);
                return self.drain_steps(ctx, drain, steps);
            }
            self.outcome(ctx, p.step, &p.what, format!("failed: {why}"));
        }
        self.continue_batch(ctx, tag);
    }
}

fn describe(kind: Kind, ns: &str, name: &str) -> String {
    if ns.is_empty() {
        format!("{} {name}", kind.name())
    } else {
        format!("{} {ns}/{name}", kind.name())
    }
}

/// kubectl's rollback: the ReplicaSet of the wanted revision (default the
/// one before the current), its template without the hash label, and the
/// Deployment's annotations with the ReplicaSet's.
fn rollback_target(
    d: &Object,
    sets: &[Arc<Object>],
    to_revision: Option<i64>,
) -> Result<(Json, Json), String> {
    use crate::controllers::deployment::util::REVISION;
    use crate::controllers::deployment::NOT_COPIED as skip;
    let owned: Vec<&Arc<Object>> = sets
        .iter()
        .filter(|rs| {
            rs.meta
                .owner_references
                .iter()
                .any(|r| r.controller && r.uid == d.meta.uid)
        })
        .collect();
    let rev = |rs: &Object| {
        rs.meta
            .annotations
            .get(REVISION)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let wanted = match to_revision {
        Some(r) if r > 0 => r,
        _ => {
            let mut revs: Vec<i64> = owned.iter().map(|rs| rev(rs)).collect();
            revs.sort_unstable();
            revs.dedup();
            if revs.len() < 2 {
                return Err(format!(
                    "no rollout history found for deployment {:?}",
                    d.meta.name
                ));
            }
            revs[revs.len() - 2]
        }
    };
    let rs = owned
        .iter()
        .find(|rs| rev(rs) == wanted)
        .ok_or_else(|| format!("unable to find specified revision {wanted} in history"))?;
    let mut template = rs.to_json()["spec"]["template"].clone();
    if let Some(l) = template
        .pointer_mut("/metadata/labels")
        .and_then(Json::as_object_mut)
    {
        l.remove(crate::controllers::deployment::TEMPLATE_HASH_LABEL);
    }
    let mut annotations = Map::new();
    for (k, v) in d.meta.annotations.iter() {
        if skip.contains(&k.as_str()) {
            annotations.insert(k.clone(), json!(v));
        }
    }
    for (k, v) in rs.meta.annotations.iter() {
        if !skip.contains(&k.as_str()) {
            annotations.insert(k.clone(), json!(v));
        }
    }
    Ok((template, Json::Object(annotations)))
}

/// The annotation where `kubectl apply` keeps what it last applied.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What `kubectl apply` records of a manifest: its identity, labels and
/// annotations (not this one), and every top-level field but status.
fn applied_config(obj: &Object) -> Json {
    let full = obj.to_json();
    let mut out = Map::new();
    let mut meta = Map::new();
    for k in ["name", "namespace", "labels", "annotations"] {
        if let Some(v) = full["metadata"].get(k) {
            meta.insert(k.into(), v.clone());
        }
    }
    if let Some(Json::Object(a)) = meta.get_mut("annotations") {
        a.remove(LAST_APPLIED);
        if a.is_empty() {
            meta.remove("annotations");
        }
    }
    if let Json::Object(m) = &full {
        for (k, v) in m {
            match k.as_str() {
                "metadata" => {
                    out.insert(k.clone(), Json::Object(meta.clone()));
                }
                "status" => {}
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
    }
    Json::Object(out)
}

/// `kubectl apply`'s three-way patch against `live`: the manifest's labels,
/// annotations and fields, null for every field the last applied
/// configuration set that the manifest no longer does, and the new last
/// applied configuration. (Lists are replaced whole: a JSON merge patch,
/// not a strategic one.)
fn apply_patch(obj: &Object, live: &Object) -> Json {
    let config = applied_config(obj);
    let mut patch = Map::new();
    if let Json::Object(m) = &config {
        for (k, v) in m {
            if !matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                patch.insert(k.clone(), v.clone());
            }
        }
    }
    let mut meta = Map::new();
    for k in ["labels", "annotations"] {
        if let Some(v) = config["metadata"].get(k) {
            meta.insert(k.into(), v.clone());
        }
    }
    // Always maps, so a removed label or annotation is nulled key by key
    // and keys others added stay.
    for k in ["labels", "annotations"] {
        meta.entry(k).or_insert_with(|| Json::Object(Map::new()));
    }
    let mut patch = Json::Object(patch);
    patch["metadata"] = Json::Object(meta);
    patch["metadata"]["annotations"][LAST_APPLIED] = json!(config.to_string());
    let last: Option<Json> = live
        .meta
        .annotations
        .get(LAST_APPLIED)
        .and_then(|s| serde_json::from_str(s).ok());
    if let Some(last) = last {
        let mut last = last;
        if let Json::Object(m) = &mut last {
            for k in ["apiVersion", "kind"] {
                m.remove(k);
            }
            if let Some(Json::Object(md)) = m.get_mut("metadata") {
                md.retain(|k, _| k == "labels" || k == "annotations");
            }
        }
        null_removed(&last, &mut patch);
    }
    patch
}

/// Sets to null in `patch` every key `last` has that `patch` lacks, down
/// through nested objects.
fn null_removed(last: &Json, patch: &mut Json) {
    let (Json::Object(l), Json::Object(p)) = (last, patch) else {
        return;
    };
    for (k, v) in l {
        match p.get_mut(k) {
            None => {
                p.insert(k.clone(), Json::Null);
            }
            Some(pv) => null_removed(v, pv),
        }
    }
}

impl Actor<Payload, World> for ScenarioDriver {
    fn name(&self) -> &str {
        &self.name
    }

    fn start(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        let initial = self.initial.clone();
        self.apply_all(ctx, None, initial);
        for (i, s) in self.steps.iter().enumerate() {
            let after = s.at.since(SimTime::ZERO);
            ctx.timer(after, Payload::Timer(Timer::Action { index: i as u32 }));
        }
    }

    fn handle(&mut self, payload: Payload, ctx: &mut Ctx<'_, Payload, World>) {
        match payload {
            Payload::Timer(Timer::Action { index }) => self.run_step(ctx, index),
            Payload::Timer(Timer::DrainWake { drain, pod }) => {
                let steps = self.drains[drain as usize].1.on_timer(pod);
                self.drain_steps(ctx, drain, steps);
            }
            Payload::Timer(Timer::DrainTimeout { drain }) => {
                let steps = self.drains[drain as usize].1.on_timeout();
                self.drain_steps(ctx, drain, steps);
            }
            Payload::Timer(Timer::LeaderWait { wait }) => self.on_leader_wait(ctx, wait),
            Payload::Timer(Timer::ClientRelease) => self.client.on_release(ctx),
            Payload::Timer(Timer::ClientRetry { req }) => self.client.on_retry(ctx, req),
            Payload::Timer(Timer::ClientDeadline { req }) => {
                let tag = self.client.on_deadline(ctx.now, req);
                self.on_lost(ctx, tag, "no answer within kubectl's 60s request timeout");
            }
            Payload::Msg {
                msg: Message::ApiResp(resp),
                ..
            } => self.on_response(ctx, &resp),
            Payload::Msg {
                msg: Message::Refused { req },
                ..
            } => {
                let tag = self.client.on_refused(ctx, req);
                self.on_lost(ctx, tag, "connection refused: the apiserver is down");
            }
            Payload::Msg {
                from,
                msg: Message::ConnectionLost { stall },
            } if crate::model::network::connection_lost(ctx, from, stall) => {
                self.client.on_connection_lost(ctx)
            }
            _ => {}
        }
    }

    fn crash(&mut self, _now: SimTime) {
        // The driver stands outside the cluster and is never crashed.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::manifest::{load_manifests, FieldReport};

    fn object(yaml: &str) -> Object {
        load_manifests("t.yaml", yaml, &mut FieldReport::default())
            .expect("valid manifest")
            .remove(0)
    }

    #[test]
    fn apply_nulls_what_the_last_apply_set_and_this_one_does_not() {
        let first = object("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: zk, labels: {a: '1', b: '2'}}\nspec: {minAvailable: 2, selector: {matchLabels: {app: zk}}}\n");
        let second = object("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: zk, labels: {a: '1'}}\nspec: {maxUnavailable: 1, selector: {matchLabels: {app: zk}}}\n");
        let mut live = first.clone();
        Arc::make_mut(&mut live.meta.annotations)
            .insert(LAST_APPLIED.into(), applied_config(&first).to_string());
        // Someone else labelled it too; apply leaves that label alone.
        Arc::make_mut(&mut live.meta.labels).insert("team".into(), "x".into());
        let patch = apply_patch(&second, &live);
        assert_eq!(patch["spec"]["minAvailable"], Json::Null);
        assert!(
            patch["spec"].get("minAvailable").is_some(),
            "explicitly null"
        );
        assert_eq!(patch["spec"]["maxUnavailable"], 1);
        assert_eq!(patch["metadata"]["labels"], json!({"a": "1", "b": null}));
        let recorded: Json = serde_json::from_str(
            patch["metadata"]["annotations"][LAST_APPLIED]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(recorded["spec"]["maxUnavailable"], 1);
        assert!(recorded["metadata"].get("annotations").is_none());
        // Without a recorded configuration, nothing is nulled.
        let bare = apply_patch(&second, &first);
        assert!(bare["spec"].get("minAvailable").is_none());
    }
}
