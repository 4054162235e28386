//! The kubelet's side of live mode: where a pod worker's step would wait
//! out a drawn latency, it asks the real runtime instead and goes on when
//! the answer arrives ([`super::runtime`]). Everything the kubelet decides
//! (restart policy, back-off, probes' thresholds, grace periods, status
//! writes) stays in the shared code; this file only starts, signals and
//! probes real containers and turns their answers back into the shared
//! code's steps.

use super::pod_workers::record_exit;
use super::runtime::{
    ContainerRef, Handler, LiveRuntime, ReplyTo, RunFor, Runtime, RuntimeAnswer, RuntimeOp, Signal,
};
use super::*;

/// How long the pod worker waits before it tries a failed sandbox or
/// container creation again (upstream's pod worker requeues a failed
/// sync after its back-off; 10 s is its first step).
const FAILED_SYNC_RETRY: SimDuration = SimDuration::from_secs(10);

impl Kubelet {
    /// The live runtime this kubelet drives, if it is live.
    pub(super) fn live(&self) -> Option<Arc<dyn LiveRuntime>> {
        match &self.cfg.runtime {
            Runtime::Live(l) => Some(l.clone()),
            Runtime::Simulated => None,
        }
    }

    /// Queues `op` on the live runtime, to answer this incarnation.
    pub(super) fn submit(&self, ctx: &Ctx<'_, Payload, World>, op: RuntimeOp) {
        if let Some(l) = self.live() {
            let reply = ReplyTo {
                to: ctx.me,
                epoch: ctx.epoch(),
            };
            l.submit(&self.node_name, reply, op);
        }
    }

    /// The live counterpart of [`Self::step_after`]: the pod's next step is
    /// due when the runtime has done what `op` asks (it answers with the
    /// step's timer).
    pub(super) fn step_when(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        op: impl FnOnce(Arc<Object>, Timer) -> RuntimeOp,
    ) {
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        rt.gen += 1;
        rt.timed_step = None;
        let then = Timer::PodStep { slot, gen: rt.gen };
        let op = op(rt.obj.clone(), then);
        self.submit(ctx, op);
    }

    /// Starts containers `indexes` of the pod in `slot` for real; `then`
    /// (a pod step) is answered once they all run.
    pub(super) fn start_live(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        indexes: &[usize],
        step: bool,
    ) {
        let containers = indexes
            .iter()
            .map(|&index| ContainerRef { slot, index })
            .collect();
        if step {
            self.step_when(ctx, slot, |pod, then| RuntimeOp::Start {
                pod,
                containers,
                then: Some(then),
            });
        } else {
            let pod = self.pods[slot as usize].as_ref().expect("slot").obj.clone();
            self.submit(
                ctx,
                RuntimeOp::Start {
                    pod,
                    containers,
                    then: None,
                },
            );
        }
    }

    /// Sends `signal` to container `i` of the pod in `slot`.
    pub(super) fn signal_live(
        &self,
        ctx: &Ctx<'_, Payload, World>,
        slot: u32,
        i: usize,
        signal: Signal,
    ) {
        let pod = self.pods[slot as usize].as_ref().expect("slot").obj.clone();
        let container = ContainerRef { slot, index: i };
        self.submit(
            ctx,
            RuntimeOp::Signal {
                pod,
                container,
                signal,
            },
        );
    }

    /// Runs container `i`'s probe or preStop hook (`why`) for real, for up
    /// to `timeout` (a probe's `timeoutSeconds`; a hook's bound, past the
    /// kill's end: the kill waits for it for the grace period only); the
    /// verdict or the end comes back as [`RuntimeAnswer::Ran`].
    pub(super) fn run_live(
        &self,
        ctx: &Ctx<'_, Payload, World>,
        slot: u32,
        i: usize,
        why: RunFor,
        timeout: SimDuration,
    ) {
        let rt = self.pods[slot as usize].as_ref().expect("slot");
        let Some(handler) = probe_handler(&rt.obj, i, why) else {
            return;
        };
        let op = RuntimeOp::Run {
            pod: rt.obj.clone(),
            handler,
            timeout,
            why,
        };
        self.submit(ctx, op);
    }

    /// An answer of the live runtime.
    pub(super) fn on_runtime_answer(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        answer: RuntimeAnswer,
    ) {
        match answer {
            RuntimeAnswer::Exited {
                container,
                pod_uid,
                exit_code,
                oom_killed,
            } => {
                if self.same_pod(container.slot, &pod_uid) {
                    self.on_live_exit(ctx, container, exit_code, oom_killed);
                }
            }
            RuntimeAnswer::Ran {
                why,
                pod_uid,
                ok,
                output,
            } => {
                let slot = match why {
                    RunFor::Probe { container, .. }
                    | RunFor::Liveness { container, .. }
                    | RunFor::PreStop { container, .. } => container.slot,
                };
                if self.same_pod(slot, &pod_uid) {
                    self.on_live_run(ctx, why, ok, &output);
                }
            }
            RuntimeAnswer::Failed {
                container,
                pod_uid,
                message,
            } => {
                let Some(slot) = self.slot_of(&pod_uid) else {
                    return;
                };
                self.on_live_failure(ctx, slot, container, &message);
            }
        }
    }

    /// A sandbox or container the runtime could not make: the event
    /// upstream's kubelet records, and the pod worker's next try after its
    /// back-off, from where it failed (the sandbox again, or the container
    /// waiting with `RunContainerError`).
    fn on_live_failure(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        container: Option<ContainerRef>,
        message: &str,
    ) {
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        if matches!(rt.stage, Stage::Terminating | Stage::Done) {
            return;
        }
        let key = rt.key.clone();
        let n = rt.status.container_statuses.len();
        let reason = match container {
            None => {
                rt.stage = Stage::Sandbox;
                rt.retry_sandbox = true;
                "FailedCreatePodSandBox"
            }
            Some(c) => {
                let st = if c.index < n {
                    rt.stage = Stage::StartApps;
                    &mut rt.status.container_statuses[c.index]
                } else {
                    rt.stage = Stage::Init(c.index - n);
                    &mut rt.status.init_container_statuses[c.index - n]
                };
                st.state = ContainerState::Waiting {
                    reason: "RunContainerError",
                    message: message.to_string(),
                };
                st.started = false;
                rt.started[c.index] = None;
                "Failed"
            }
        };
        self.event(ctx, &key, "Warning", reason, message);
        self.post_status(ctx, slot);
        self.step_after(ctx, slot, FAILED_SYNC_RETRY);
    }

    fn slot_of(&self, pod_uid: &str) -> Option<u32> {
        self.pods
            .iter()
            .position(|p| p.as_ref().is_some_and(|rt| rt.obj.meta.uid == pod_uid))
            .map(|i| i as u32)
    }

    /// Whether `slot` still holds the pod `pod_uid` (a slot is reused once
    /// its pod is gone; an old answer must not reach the new pod).
    fn same_pod(&self, slot: u32, pod_uid: &str) -> bool {
        self.pods
            .get(slot as usize)
            .and_then(Option::as_ref)
            .is_some_and(|rt| rt.obj.meta.uid == pod_uid)
    }

    /// A container's main process exited: the end of a kill in progress,
    /// an init container's run, or an app container's own exit (its run
    /// ended, it crashed, or the OOM killer ended it).
    fn on_live_exit(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        c: ContainerRef,
        exit_code: i32,
        oom_killed: bool,
    ) {
        let (slot, i) = (c.slot, c.index);
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let n = spec.containers.len();
        if let Some(kill) = rt.kills[i].clone() {
            return self.on_killed(ctx, slot, i, kill, Some(exit_code));
        }
        if i >= n {
            let j = i - n;
            if spec.init_containers[j].sidecar {
                return self.sidecar_exited(ctx, slot, i, exit_code);
            }
            if rt.stage == Stage::Init(j) {
                return self.finish_init(ctx, slot, j, exit_code);
            }
            return;
        }
        if rt.stage != Stage::Running || rt.started[i].is_none() {
            return;
        }
        let key = rt.key.clone();
        let restarting = record_exit(rt, &spec, i, exit_code, oom_killed, ctx.now);
        let why = if oom_killed { "OOMKilled" } else { "exited" };
        let detail = format!("{} {why} with code {exit_code}", spec.containers[i].name);
        self.refresh_pod_phase(ctx, slot);
        self.trace(ctx, "ContainersExited", &key, &detail);
        self.post_status(ctx, slot);
        if restarting {
            self.schedule_restarts(ctx, slot);
        }
    }

    /// A sidecar that exited on its own is restarted after its back-off
    /// (a restartable init container always restarts).
    fn sidecar_exited(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        i: usize,
        exit_code: i32,
    ) {
        let now = ctx.now;
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let n = rt.obj.as_pod().expect("pod").spec.containers.len();
        let st = &mut rt.status.init_container_statuses[i - n];
        let started = match st.state {
            ContainerState::Running { started } => started,
            _ => now,
        };
        st.state = ContainerState::Terminated {
            exit_code,
            reason: if exit_code == 0 { "Completed" } else { "Error" },
            started,
            finished: now,
        };
        st.ready = false;
        st.started = false;
        rt.started[i] = None;
        let delay = super::backoff::restart_delay(&mut rt.backoff[i], now);
        self.refresh_pod_phase(ctx, slot);
        self.post_status(ctx, slot);
        self.kill_timer(ctx, slot, i, delay);
    }

    /// A probe or hook ran: its verdict goes where the simulation's drawn
    /// verdict goes.
    fn on_live_run(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        why: RunFor,
        ok: bool,
        output: &str,
    ) {
        match why {
            RunFor::Probe { container, gen } => {
                self.probe_result(ctx, container.slot, container.index, gen, ok, Some(output))
            }
            RunFor::Liveness { container, gen } => {
                self.liveness_result(ctx, container.slot, container.index, gen, !ok, Some(output))
            }
            RunFor::PreStop { container, gen } => {
                self.pre_stop_done(ctx, container.slot, container.index, gen, ok)
            }
        }
    }

    /// The container runtime of a live node is told the node went down or
    /// came up with the kubelet's process ([`Actor::crash`] is a machine
    /// crash here; a kubelet restart in place keeps the runtime running).
    pub(super) fn runtime_node(&self, up: bool, ctx: Option<&Ctx<'_, Payload, World>>) {
        let Some(l) = self.live() else { return };
        let reply = ctx.map_or(ReplyTo { to: 0, epoch: 0 }, |c| ReplyTo {
            to: c.me,
            epoch: c.epoch(),
        });
        let op = if up {
            RuntimeOp::NodeUp
        } else {
            RuntimeOp::NodeDown
        };
        l.submit(&self.node_name, reply, op);
    }
}

/// The handler a live probe runs: exec as written; httpGet and tcpSocket
/// on the named or numbered port; gRPC probes are not run live.
fn probe_handler(pod: &Object, i: usize, why: RunFor) -> Option<Handler> {
    let spec = &pod.as_pod()?.spec.api;
    let n = spec.containers.len();
    let c = if i < n {
        spec.containers.get(i)?
    } else {
        spec.init_containers.as_ref()?.get(i - n)?
    };
    let probe = match why {
        RunFor::Probe { .. } => c.readiness_probe.as_ref().or(c.startup_probe.as_ref()),
        RunFor::Liveness { .. } => c.liveness_probe.as_ref(),
        RunFor::PreStop { .. } => None,
    };
    if let RunFor::PreStop { .. } = why {
        let h = c.lifecycle.as_ref()?.pre_stop.as_ref()?;
        if let Some(e) = &h.exec {
            return Some(Handler::Exec(e.command.clone().unwrap_or_default()));
        }
        let g = h.http_get.as_ref()?;
        return Some(Handler::HttpGet {
            port: port_number(c, &g.port)?,
            path: g.path.clone().unwrap_or_else(|| "/".into()),
        });
    }
    let p = probe?;
    if let Some(e) = &p.exec {
        return Some(Handler::Exec(e.command.clone().unwrap_or_default()));
    }
    if let Some(g) = &p.http_get {
        return Some(Handler::HttpGet {
            port: port_number(c, &g.port)?,
            path: g.path.clone().unwrap_or_else(|| "/".into()),
        });
    }
    let t = p.tcp_socket.as_ref()?;
    Some(Handler::TcpSocket {
        port: port_number(c, &t.port)?,
    })
}

/// A probe's port: a number, or the name of one of the container's ports.
fn port_number(
    c: &k8s_openapi::api::core::v1::Container,
    port: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString,
) -> Option<u16> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => c
            .ports
            .as_ref()?
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| u16::try_from(p.container_port).ok()),
    }
}
