//! The cloud provider: the machines of every autoscaled node group, the
//! node-group API the cluster autoscaler calls over the network, and the
//! part of cloud-controller-manager that removes the Node of a machine the
//! cloud terminated.
//!
//! A group's machines are pre-named slots (`<pool>-1` … `<pool>-<max>`),
//! each with a kubelet that is down while its machine is off. IncreaseSize
//! turns off slots to Creating; after the group's provisioning delay
//! (drawn from this component's stream) the machine boots and its kubelet
//! starts and registers. DeleteNodes terminates machines at once: the
//! kubelet dies with its machine and nothing closes its connections.
//! Like cloud-controller-manager's node lifecycle controller (5 s
//! `--node-monitor-period`), the provider then looks at each terminated
//! machine's Node every 5 s and deletes it once it is no longer Ready,
//! which the node lifecycle controller decides after its grace period.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::cloud_api::{
    CloudAnswer, CloudCall, CloudReply, CloudRequest, GroupStatus, Instance, InstanceState,
};
use super::config::NodeGroupPlan;
use crate::api::Kind;
use crate::model::apiserver::request::{ApiRequest, ApiResponse, Verb};
use crate::model::client::{ApiClient, Dispatch, CONTROLLER_MANAGER};
use crate::model::msg::{Message, Payload, Timer};
use crate::model::world::World;
use crate::sim::{Actor, ComponentId, Ctx, Lifecycle, SimDuration, SimTime, TraceLevel};

/// The component's name (its stream, its trace lines).
pub const NAME: &str = "cloud-provider";

/// cloud-controller-manager's `--node-monitor-period`.
const NODE_MONITOR_PERIOD: SimDuration = SimDuration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Machine {
    Off,
    Creating,
    Running,
}

struct Slot {
    name: String,
    kubelet: ComponentId,
    machine: Machine,
    /// Bumped by every create and delete, so a stale boot timer is ignored.
    gen: u32,
    requested: SimTime,
}

struct Group {
    plan: Arc<NodeGroupPlan>,
    /// Index of its first slot in the provider's flat slot list.
    first: usize,
}

/// What the node lifecycle pass is doing with a terminated machine's Node.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cleanup {
    Due,
    Getting,
    Deleting,
}

pub struct CloudProvider {
    groups: Vec<Group>,
    slots: Vec<Slot>,
    client: ApiClient,
    /// Nodes of terminated machines still to remove, by name.
    cleanup: BTreeMap<String, Cleanup>,
    /// In-flight requests: tag → node name.
    pending: BTreeMap<u64, String>,
    next_tag: u64,
    monitor_armed: bool,
}

impl CloudProvider {
    /// `kubelets[i]` runs node `groups[g].nodes[j]`, slots in group order.
    pub fn new(
        apiserver: ComponentId,
        groups: Vec<Arc<NodeGroupPlan>>,
        kubelets: &BTreeMap<String, ComponentId>,
    ) -> Self {
        let mut slots = Vec::new();
        let mut out = Vec::new();
        for plan in groups {
            let first = slots.len();
            for (j, name) in plan.nodes.iter().enumerate() {
                let on = (j as u32) < plan.initial;
                slots.push(Slot {
                    name: name.clone(),
                    kubelet: kubelets[name],
                    machine: if on { Machine::Running } else { Machine::Off },
                    gen: 0,
                    requested: SimTime::ZERO,
                });
            }
            out.push(Group { plan, first });
        }
        CloudProvider {
            groups: out,
            slots,
            client: ApiClient::new(apiserver, CONTROLLER_MANAGER, SimDuration::from_secs(60)),
            cleanup: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_tag: 1,
            monitor_armed: false,
        }
    }

    fn slot_range(&self, g: usize) -> std::ops::Range<usize> {
        let first = self.groups[g].first;
        first..first + self.groups[g].plan.nodes.len()
    }

    fn target(&self, g: usize) -> u32 {
        self.slot_range(g)
            .filter(|&i| self.slots[i].machine != Machine::Off)
            .count() as u32
    }

    fn status(&self, g: usize) -> GroupStatus {
        let plan = &self.groups[g].plan;
        let instances = self
            .slot_range(g)
            .map(|i| &self.slots[i])
            .filter(|s| s.machine != Machine::Off)
            .map(|s| Instance {
                name: s.name.clone(),
                state: if s.machine == Machine::Creating {
                    InstanceState::Creating
                } else {
                    InstanceState::Running
                },
                requested: s.requested,
            })
            .collect();
        GroupStatus {
            id: g as u32,
            name: plan.name.clone(),
            min: plan.min,
            max: plan.max,
            target: self.target(g),
            shape: plan.shape.clone(),
            instances,
        }
    }

    fn increase(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        g: usize,
        delta: u32,
    ) -> Result<(), String> {
        let (target, max) = (self.target(g), self.groups[g].plan.max);
        if delta == 0 || target + delta > max {
            return Err(format!(
                "size increase too large: desired {} max {max}",
                target + delta
            ));
        }
        // Off slots, those whose old Node is already gone first.
        let mut free: Vec<usize> = self
            .slot_range(g)
            .filter(|&i| self.slots[i].machine == Machine::Off)
            .collect();
        free.sort_by_key(|&i| self.cleanup.contains_key(&self.slots[i].name));
        let dist = self.groups[g].plan.provisioning.clone();
        let stats = &mut ctx.shared.stats.autoscaler;
        stats.scale_ups += 1;
        stats.nodes_added += u64::from(delta);
        stats.machines_off -= u64::from(delta);
        for &i in free.iter().take(delta as usize) {
            let delay = dist.sample(ctx.rng);
            let s = &mut self.slots[i];
            s.machine = Machine::Creating;
            s.gen += 1;
            s.requested = ctx.now;
            let (slot, gen) = (i as u32, s.gen);
            self.cleanup.remove(&s.name);
            ctx.trace
                .record(TraceLevel::Events, ctx.now, NAME, "InstanceCreating", |r| {
                    r.str("group", &self.groups[g].plan.name)
                        .str("node", &self.slots[i].name)
                        .u64("bootMs", delay.0 / 1_000_000);
                });
            ctx.timer(delay, Payload::Timer(Timer::CloudBoot { slot, gen }));
        }
        Ok(())
    }

    fn boot(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: usize, gen: u32) {
        let Some(s) = self.slots.get_mut(slot) else {
            return;
        };
        if s.gen != gen || s.machine != Machine::Creating {
            return;
        }
        s.machine = Machine::Running;
        ctx.lifecycle(Lifecycle::Restart(s.kubelet));
        ctx.trace
            .record(TraceLevel::Events, ctx.now, NAME, "InstanceRunning", |r| {
                r.str("node", &s.name);
            });
    }

    fn delete(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        g: usize,
        nodes: &[String],
    ) -> Result<(), String> {
        let range = self.slot_range(g);
        let mut found = Vec::new();
        for n in nodes {
            match range
                .clone()
                .find(|&i| self.slots[i].name == *n && self.slots[i].machine != Machine::Off)
            {
                Some(i) => found.push(i),
                None => {
                    return Err(format!(
                        "node {n} is not an instance of group {}",
                        self.groups[g].plan.name
                    ))
                }
            }
        }
        let min = self.groups[g].plan.min;
        if self.target(g) < min + found.len() as u32 {
            return Err("min size reached, nodes will not be deleted".to_string());
        }
        for i in found {
            let s = &mut self.slots[i];
            let was = s.machine;
            s.machine = Machine::Off;
            ctx.shared.stats.autoscaler.nodes_removed += 1;
            ctx.shared.stats.autoscaler.machines_off += 1;
            s.gen += 1;
            if was == Machine::Running {
                // The machine dies: nothing closes its connections.
                crate::model::network::close_connections(ctx, s.kubelet, false);
                ctx.lifecycle(Lifecycle::Crash(s.kubelet));
            }
            self.cleanup.insert(s.name.clone(), Cleanup::Due);
            ctx.trace.record(
                TraceLevel::Events,
                ctx.now,
                NAME,
                "InstanceTerminated",
                |r| {
                    r.str("node", &self.slots[i].name);
                },
            );
        }
        self.arm_monitor(ctx);
        Ok(())
    }

    fn arm_monitor(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        if !self.monitor_armed && !self.cleanup.is_empty() {
            self.monitor_armed = true;
            ctx.timer(NODE_MONITOR_PERIOD, Payload::Timer(Timer::CloudNodeMonitor));
        }
    }

    /// The node lifecycle pass: look at each terminated machine's Node.
    fn monitor(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        self.monitor_armed = false;
        let due: Vec<String> = self
            .cleanup
            .iter()
            .filter(|(_, c)| **c == Cleanup::Due)
            .map(|(n, _)| n.clone())
            .collect();
        for n in due {
            self.cleanup.insert(n.clone(), Cleanup::Getting);
            self.send(ctx, ApiRequest::new(Verb::Get, Kind::Node, "", &n), n);
        }
        self.arm_monitor(ctx);
    }

    fn send(&mut self, ctx: &mut Ctx<'_, Payload, World>, req: ApiRequest, node: String) {
        let tag = self.next_tag;
        self.next_tag += 1;
        self.client.request(ctx, req, tag);
        self.pending.insert(tag, node);
    }

    fn on_api(&mut self, ctx: &mut Ctx<'_, Payload, World>, tag: u64, resp: Option<&ApiResponse>) {
        let Some(node) = self.pending.remove(&tag) else {
            return;
        };
        let Some(&stage) = self.cleanup.get(&node) else {
            return;
        };
        let code = resp.map_or(0, |r| r.code);
        let next = match (stage, code) {
            // Gone already, or deleted now.
            (_, 404) | (Cleanup::Deleting, 200..=299) => None,
            (Cleanup::Getting, 200..=299) => {
                let ready = resp
                    .and_then(|r| r.object.as_ref())
                    .and_then(|o| o.as_node())
                    .is_some_and(|n| n.is_ready());
                if ready {
                    Some(Cleanup::Due)
                } else {
                    self.send(
                        ctx,
                        ApiRequest::new(Verb::Delete, Kind::Node, "", &node),
                        node.clone(),
                    );
                    Some(Cleanup::Deleting)
                }
            }
            // No answer or an error: look again on the next pass.
            _ => Some(Cleanup::Due),
        };
        match next {
            Some(c) => {
                self.cleanup.insert(node, c);
            }
            None => {
                self.cleanup.remove(&node);
                ctx.trace
                    .record(TraceLevel::Events, ctx.now, NAME, "NodeDeleted", |r| {
                        r.str("node", &node);
                    });
            }
        }
        self.arm_monitor(ctx);
    }

    fn on_call(&mut self, ctx: &mut Ctx<'_, Payload, World>, from: ComponentId, req: CloudRequest) {
        let answer = match req.call {
            CloudCall::Refresh { pass } => CloudAnswer::Groups {
                pass,
                groups: (0..self.groups.len()).map(|g| self.status(g)).collect(),
            },
            CloudCall::IncreaseSize { group, delta } => {
                let result = match (group as usize) < self.groups.len() {
                    true => self.increase(ctx, group as usize, delta),
                    false => Err(format!("no node group {group}")),
                };
                CloudAnswer::Increased {
                    group,
                    delta,
                    result,
                }
            }
            CloudCall::DeleteNodes { group, nodes } => {
                let result = match (group as usize) < self.groups.len() {
                    true => self.delete(ctx, group as usize, &nodes),
                    false => Err(format!("no node group {group}")),
                };
                CloudAnswer::Deleted {
                    group,
                    nodes,
                    result,
                }
            }
        };
        let reply = CloudReply {
            controller: req.controller,
            answer,
        };
        crate::model::network::send(ctx, from, Message::CloudReply(Box::new(reply)), 0);
    }
}

impl Actor<Payload, World> for CloudProvider {
    fn name(&self) -> &str {
        NAME
    }

    fn start(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        let stats = &mut ctx.shared.stats.autoscaler;
        stats.enabled = true;
        stats.machines_off = self
            .slots
            .iter()
            .filter(|s| s.machine == Machine::Off)
            .count() as u64;
    }

    fn handle(&mut self, payload: Payload, ctx: &mut Ctx<'_, Payload, World>) {
        let payload = match self.client.dispatch(ctx, payload) {
            Dispatch::Handled => return,
            Dispatch::Finished(tag, resp) => return self.on_api(ctx, tag, resp.as_deref()),
            Dispatch::Other(p) => p,
        };
        match payload {
            Payload::Msg {
                from,
                msg: Message::Cloud(req),
            } => self.on_call(ctx, from, *req),
            Payload::Msg {
                from,
                msg: Message::ConnectionLost { stall },
            } => {
                crate::model::network::connection_lost(ctx, from, stall);
            }
            Payload::Timer(Timer::CloudBoot { slot, gen }) => self.boot(ctx, slot as usize, gen),
            Payload::Timer(Timer::CloudNodeMonitor) => self.monitor(ctx),
            _ => {}
        }
    }

    fn crash(&mut self, _now: SimTime) {
        // The cloud stands outside the cluster and is never crashed.
    }
}
