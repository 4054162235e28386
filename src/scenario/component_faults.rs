//! Control-plane and process faults, as the driver injects them.
//!
//! - `crashComponent` / `restartComponent`: kube-apiserver, kube-scheduler
//!   or kube-controller-manager exits (its sockets close, so every peer
//!   sees its connections end; a client then meets refused connections
//!   until it is back) and a new process starts with empty memory: the
//!   apiserver rebuilds its watch cache from etcd, the scheduler and the
//!   controller-manager relist into empty caches, queues and expectations.
//! - `crashKubelet` / `restartKubelet`: the kubelet process exits but the
//!   node and its containers keep running; the engine holds the node's
//!   events (the container runtime's work goes on, nobody handles it) and
//!   a new kubelet adopts the running containers
//!   ([`crate::sim::Lifecycle::ContinueRestarted`]).
//! - `hangKubelet` / `resumeKubelet`: the kubelet process stops handling
//!   anything (SIGSTOP); its heartbeats stop, its sockets stay open (the
//!   kernel still takes segments, which wait), and at the end it handles
//!   what waited and goes on.
//! - `slowDisk` / `healDisk`: an etcd member's WAL fsync takes at least the
//!   given time until healed (a disk stall).
//!
//! A node crash (`crashNode`) is the machine dying: containers die with it.

use std::collections::{BTreeMap, BTreeSet};

use super::Action;
use crate::model::msg::Payload;
use crate::model::network::close_connections;
use crate::model::world::World;
use crate::sim::{ComponentId, Ctx, Lifecycle};

/// What one injection did, for the driver's trace record and outcome.
pub struct Injected {
    /// The trace record's event (`ComponentCrash`, `KubeletHang`, ...).
    pub event: &'static str,
    pub target: String,
    /// Nothing changed: the target was already in that state.
    pub already: bool,
}

/// Which kubelets the driver crashed and which it hung: a stopped kubelet
/// continues as a new process after a crash, as the same one after a hang.
#[derive(Default)]
pub struct ProcessFaults {
    crashed_kubelets: BTreeSet<ComponentId>,
    hung_kubelets: BTreeSet<ComponentId>,
}

impl ProcessFaults {
    /// Injects or heals `action`, one of this module's actions. `names`
    /// maps nodes and control-plane components to their ids; `etcd` are
    /// the members in order.
    pub fn inject(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        action: &Action,
        names: &BTreeMap<String, ComponentId>,
        etcd: &[ComponentId],
    ) -> Injected {
        let done = |event, target: &str, already| Injected {
            event,
            target: target.to_string(),
            already,
        };
        match action {
            Action::CrashComponent(c) => {
                let id = names[c];
                let already = !ctx.is_alive(id);
                if !already {
                    // The process exits: its sockets close.
                    close_connections(ctx, id, true);
                    ctx.lifecycle(Lifecycle::Crash(id));
                }
                done("ComponentCrash", c, already)
            }
            Action::RestartComponent(c) => {
                let id = names[c];
                let already = ctx.is_alive(id);
                if !already {
                    ctx.lifecycle(Lifecycle::Restart(id));
                }
                done("ComponentRestart", c, already)
            }
            Action::CrashKubelet(n) => {
                let id = names[n];
                let already = !ctx.is_alive(id) || ctx.is_stopped(id);
                if !already {
                    close_connections(ctx, id, true);
                    ctx.lifecycle(Lifecycle::Stop(id));
                    self.crashed_kubelets.insert(id);
                }
                done("KubeletCrash", n, already)
            }
            Action::RestartKubelet(n) => {
                let id = names[n];
                // A node that crashed meanwhile took the stopped kubelet with it.
                let crashed = self.crashed_kubelets.remove(&id) && ctx.is_stopped(id);
                if crashed {
                    ctx.lifecycle(Lifecycle::ContinueRestarted(id));
                }
                done("KubeletRestart", n, !crashed)
            }
            Action::HangKubelet(n) => {
                let id = names[n];
                let already = !ctx.is_alive(id) || ctx.is_stopped(id);
                if !already {
                    ctx.lifecycle(Lifecycle::Stop(id));
                    self.hung_kubelets.insert(id);
                }
                done("KubeletHang", n, already)
            }
            Action::ResumeKubelet(n) => {
                let id = names[n];
                let hung = self.hung_kubelets.remove(&id) && ctx.is_stopped(id);
                if hung {
                    ctx.lifecycle(Lifecycle::Continue(id));
                }
                done("KubeletResume", n, !hung)
            }
            Action::SlowDisk { member, fsync } => {
                let id = etcd[*member as usize];
                let before = ctx.shared.slow_fsync.insert(id, *fsync);
                let target = format!("etcd-{member} (fsync {fsync})");
                done("SlowDisk", &target, before == Some(*fsync))
            }
            Action::HealDisk(member) => {
                let id = etcd[*member as usize];
                let was = ctx.shared.slow_fsync.remove(&id);
                done("HealDisk", &format!("etcd-{member}"), was.is_none())
            }
            other => unreachable!("not a component or process fault: {other:?}"),
        }
    }
}
