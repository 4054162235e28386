//! The pod workers: admission, then each pod through sandbox, init
//! containers, app containers, restarts and termination (upstream
//! pkg/kubelet/pod_workers.go and kuberuntime's SyncPod).

use super::backoff::restart_delay;
use super::kill::KillReason;
use super::runtime::RuntimeOp;
use super::step_spans::StepKind;
use super::*;

impl Kubelet {
    pub(super) fn admitted_requests(&self, except: u32) -> ResourceList {
        let mut used = ResourceList::new();
        let mut count = 0;
        for (i, rt) in self.pods.iter().enumerate() {
            if let Some(rt) = rt {
                if i as u32 != except && rt.stage != Stage::Done {
                    if let Some(p) = rt.obj.as_pod() {
                        add_into(&mut used, &p.spec.requests);
                        count += 1;
                    }
                }
            }
        }
        used.insert(
            "pods".into(),
            crate::api::quantity::Quantity::from_units(count),
        );
        used
    }

    pub(super) fn admit(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let used = self.admitted_requests(slot);
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let pod = rt.obj.as_pod().expect("pod");
        let mut free = self.node_template.allocatable.clone();
        crate::api::resources::sub_from(&mut free, &used);
        let mut want = pod.spec.requests.clone();
        want.insert("pods".into(), crate::api::quantity::Quantity::from_units(1));
        let short = insufficient(&want, &free);
        let key = rt.key.clone();
        if let Some((res, q, _)) = short.first() {
            let alloc = self
                .node_template
                .allocatable
                .get(res)
                .copied()
                .unwrap_or_default();
            let in_use = used.get(res).copied().unwrap_or_default();
            let msg = format!(
                "Pod was rejected: Node didn't have enough resource: {res}, requested: {}, used: {}, capacity: {}",
                q.milli_value() / if res == "cpu" { 1 } else { 1000 },
                in_use.milli_value() / if res == "cpu" { 1 } else { 1000 },
                alloc.milli_value() / if res == "cpu" { 1 } else { 1000 }
            );
            rt.status.phase = PodPhase::Failed;
            rt.status.reason = Some(format!("OutOf{res}"));
            rt.status.message = Some(msg.clone());
            rt.stage = Stage::Done;
            self.trace(ctx, "PodRejected", &key, &msg);
            return self.post_status(ctx, slot);
        }
        let now = ctx.now;
        rt.status.phase = PodPhase::Pending;
        rt.status.start_time = Some(now);
        rt.status.host_ip = self
            .node_template
            .addresses
            .iter()
            .find(|(t, _)| t == "InternalIP")
            .map(|(_, a)| a.clone());
        // The CNI's host-local IPAM: an address of the node's pod CIDR per
        // sandbox (host parts 2..254, reused as slots free up).
        rt.status.pod_ip = self.node_template.pod_cidr.as_deref().and_then(|cidr| {
            let base = cidr.split('/').next()?.rsplit_once('.')?.0;
            Some(format!("{base}.{}", slot % 253 + 2))
        });
        rt.status
            .set_condition("PodReadyToStartContainers", false, now, None);
        rt.status.set_condition(
            "Initialized",
            pod.spec.init_containers.is_empty(),
            now,
            None,
        );
        rt.status
            .set_condition("Ready", false, now, Some("ContainersNotReady"));
        rt.status
            .set_condition("ContainersReady", false, now, Some("ContainersNotReady"));
        rt.status.set_condition("PodScheduled", true, now, None);
        let waiting = |c: &crate::api::pod::ContainerModel, reason| ContainerStatus {
            name: c.name.clone(),
            image: c.image.clone(),
            state: ContainerState::Waiting {
                reason,
                message: String::new(),
            },
            last_state: None,
            ready: false,
            started: false,
            restart_count: 0,
        };
        rt.status.init_container_statuses = pod
            .spec
            .init_containers
            .iter()
            .map(|c| waiting(c, "PodInitializing"))
            .collect();
        let reason = if pod.spec.init_containers.is_empty() {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        rt.status.container_statuses = pod
            .spec
            .containers
            .iter()
            .map(|c| waiting(c, reason))
            .collect();
        let claims = crate::dra::claim::pod_has_claims(&rt.obj);
        let admitted = Observation::PodAdmitted {
            node: &self.node_name,
            pod: &rt.obj,
            allocatable: &self.node_template.allocatable,
        };
        ctx.shared.observe(now, admitted);
        self.trace(ctx, "PodAdmitted", &key, "");
        self.post_status(ctx, slot);
        if claims {
            return self.prepare_resources(ctx, slot);
        }
        self.start_sandbox(ctx, slot);
    }

    /// The pod's sandbox is made (after its claims are prepared).
    pub(super) fn start_sandbox(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        if self.live().is_some() {
            self.step_when(ctx, slot, |pod, then| RuntimeOp::RunSandbox { pod, then });
        } else {
            let d = self.cfg.sandbox_create.sample(ctx.rng);
            self.step_after(ctx, slot, d);
        }
        self.time_step(ctx, slot, StepKind::Sandbox);
    }

    pub(super) fn step_after(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        d: SimDuration,
    ) {
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        rt.gen += 1;
        rt.timed_step = None;
        let gen = rt.gen;
        ctx.timer(d, Payload::Timer(Timer::PodStep { slot, gen }));
    }

    /// Moves a pod to its next lifecycle stage.
    pub(super) fn advance(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let Some(rt) = self.pods[slot as usize].as_mut() else {
            return;
        };
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let now = ctx.now;
        match rt.stage {
            Stage::Sandbox if rt.retry_sandbox => {
                // Live: the sandbox failed; try again.
                rt.retry_sandbox = false;
                self.step_when(ctx, slot, |pod, then| RuntimeOp::RunSandbox { pod, then });
                self.time_step(ctx, slot, StepKind::Sandbox);
            }
            Stage::Sandbox => {
                rt.status
                    .set_condition("PodReadyToStartContainers", true, now, None);
                rt.stage = if spec.init_containers.is_empty() {
                    Stage::StartApps
                } else {
                    Stage::Init(0)
                };
                self.post_status(ctx, slot);
                self.advance(ctx, slot);
            }
            Stage::Init(i) => {
                let Some(c) = spec.init_containers.get(i).cloned() else {
                    rt.status.set_condition("Initialized", true, now, None);
                    rt.stage = Stage::StartApps;
                    for cs in &mut rt.status.container_statuses {
                        cs.state = ContainerState::Waiting {
                            reason: "ContainerCreating",
                            message: String::new(),
                        };
                    }
                    self.post_status(ctx, slot);
                    return self.advance(ctx, slot);
                };
                if !self.ensure_image(ctx, slot, &c.image) {
                    return;
                }
                if c.sidecar {
                    return self.start_sidecar(ctx, slot, i);
                }
                let live = self.live().is_some();
                let rt = self.pods[slot as usize].as_mut().expect("slot");
                let st = &mut rt.status.init_container_statuses[i];
                match st.state {
                    ContainerState::Waiting { .. } => {
                        st.state = ContainerState::Running { started: now };
                        st.started = true;
                        self.post_status(ctx, slot);
                        if live {
                            // It runs until its process exits (an answer).
                            let n = spec.containers.len();
                            return self.start_live(ctx, slot, &[n + i], false);
                        }
                        let d = self.cfg.container_start.sample(ctx.rng)
                            + c.run_for.unwrap_or_default();
                        self.step_after(ctx, slot, d);
                    }
                    ContainerState::Running { .. } => self.finish_init(ctx, slot, i, 0),
                    ContainerState::Terminated { .. } => {}
                }
            }
            Stage::StartApps => {
                for c in &spec.containers {
                    if !self.ensure_image(ctx, slot, &c.image) {
                        return;
                    }
                }
                if self.live().is_some() {
                    let rt = self.pods[slot as usize].as_mut().expect("slot");
                    let due = due_to_start(rt, &spec, now);
                    rt.stage = Stage::Running;
                    self.start_live(ctx, slot, &due, true);
                    return self.time_step(ctx, slot, StepKind::Start);
                }
                let d = self.cfg.container_start.sample(ctx.rng);
                let rt = self.pods[slot as usize].as_mut().expect("slot");
                rt.stage = Stage::Running;
                self.step_after(ctx, slot, d);
                self.time_step(ctx, slot, StepKind::Start);
            }
            Stage::Running => self.start_containers(ctx, slot),
            Stage::Terminating => self.finish_termination(ctx, slot),
            Stage::Done => {}
        }
    }

    /// Init container `i` exited with `exit_code` (always 0 in a simulated
    /// run, whose init containers succeed). A success moves the pod on; a
    /// failure (live) is retried after the crash-loop back-off, or, under
    /// `restartPolicy: Never`, fails the pod, as upstream's
    /// computePodActions does.
    pub(super) fn finish_init(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        i: usize,
        exit_code: i32,
    ) {
        let now = ctx.now;
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let policy = rt.obj.as_pod().expect("pod").spec.restart_policy;
        let n = rt.status.container_statuses.len();
        let st = &mut rt.status.init_container_statuses[i];
        let ContainerState::Running { started } = st.state else {
            return;
        };
        let reason = if exit_code == 0 { "Completed" } else { "Error" };
        let done = ContainerState::Terminated {
            exit_code,
            reason,
            started,
            finished: now,
        };
        st.state = done.clone();
        st.started = false;
        if exit_code == 0 {
            rt.stage = Stage::Init(i + 1);
            self.post_status(ctx, slot);
            return self.advance(ctx, slot);
        }
        if policy == RestartPolicy::Never {
            rt.status.phase = PodPhase::Failed;
            rt.stage = Stage::Done;
            return self.post_status(ctx, slot);
        }
        let delay = restart_delay(&mut rt.backoff[n + i], now);
        rt.restarts[n + i] += 1;
        st.restart_count = rt.restarts[n + i];
        st.last_state = Some(done);
        st.state = ContainerState::Waiting {
            reason: "CrashLoopBackOff",
            message: String::new(),
        };
        self.post_status(ctx, slot);
        self.step_after(ctx, slot, delay);
    }

    /// A sidecar (init container with `restartPolicy: Always`): created,
    /// then started, and left running. The next init container (or the app
    /// containers) waits until it has started: at once without a startup
    /// probe, else when the probe passes (the prober moves the pod on).
    fn start_sidecar(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32, i: usize) {
        let now = ctx.now;
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let n = spec.containers.len();
        let c = &spec.init_containers[i];
        let st = &mut rt.status.init_container_statuses[i];
        if let ContainerState::Waiting { .. } = st.state {
            // Created now; running after the start latency.
            st.state = ContainerState::Running { started: now };
            self.post_status(ctx, slot);
            if self.live().is_some() {
                return self.start_live(ctx, slot, &[n + i], true);
            }
            let d = self.cfg.container_start.sample(ctx.rng);
            return self.step_after(ctx, slot, d);
        }
        if rt.started[n + i].is_some() {
            return;
        }
        st.state = ContainerState::Running { started: now };
        st.started = c.startup.is_none();
        st.ready = c.readiness.is_none() && c.startup.is_none();
        let started = st.started;
        let key = rt.key.clone();
        self.start_probes(ctx, slot, n + i, now);
        self.trace(ctx, "SidecarStarted", &key, &c.name);
        if started {
            let rt = self.pods[slot as usize].as_mut().expect("slot");
            rt.stage = Stage::Init(i + 1);
            self.post_status(ctx, slot);
            self.advance(ctx, slot);
        } else {
            self.post_status(ctx, slot);
        }
    }

    /// Sidecars stop after the app containers have (upstream terminates
    /// restartable init containers once the regular ones are gone).
    fn stop_sidecars(rt: &mut PodRuntime, now: SimTime, killed: bool) {
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let n = spec.containers.len();
        for (j, st) in rt.status.init_container_statuses.iter_mut().enumerate() {
            if !spec.init_containers[j].sidecar {
                continue;
            }
            stop_status(st, now, killed);
            st.started = false;
            rt.started[n + j] = None;
        }
    }

    pub(super) fn start_containers(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let now = ctx.now;
        // A live container's run ends when its process exits (an answer).
        let scripted_exits = self.live().is_none();
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let mut to_start = Vec::new();
        for (i, c) in spec.containers.iter().enumerate() {
            if rt.started[i].is_some() || rt.kills[i].is_some() {
                continue;
            }
            let st = &mut rt.status.container_statuses[i];
            match rt.restart_at[i] {
                // Still in its back-off: a later sync starts it.
                Some(t) if t > now => continue,
                Some(_) => rt.restart_at[i] = None,
                None => {
                    if let ContainerState::Terminated { .. } = st.state {
                        if !should_restart(spec.restart_policy, &st.state) {
                            continue;
                        }
                    }
                }
            }
            to_start.push(i);
            let last = std::mem::replace(&mut st.state, ContainerState::Running { started: now });
            let restarted = matches!(last, ContainerState::Terminated { .. })
                || matches!(st.last_state, Some(ContainerState::Terminated { .. }));
            if matches!(last, ContainerState::Terminated { .. }) {
                st.last_state = Some(last);
            }
            // restartCount is the new container's attempt number: it goes up
            // when the replacement is created, not when the old one dies.
            if restarted {
                rt.restarts[i] += 1;
                st.restart_count = rt.restarts[i];
            }
            st.started = c.startup.is_none();
            st.ready = c.readiness.is_none() && c.startup.is_none();
            if let Some(run) = c.run_for.filter(|_| scripted_exits) {
                ctx.timer(run, Payload::Timer(Timer::ContainerExit { slot }));
            }
        }
        let any_started = !to_start.is_empty();
        for i in to_start {
            self.start_probes(ctx, slot, i, now);
        }
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        if any_started {
            let started = Observation::PodStarted {
                node: &self.node_name,
                pod: &rt.obj,
            };
            ctx.shared.observe(now, started);
        }
        let key = rt.key.clone();
        self.refresh_pod_phase(ctx, slot);
        self.trace(ctx, "ContainersStarted", &key, "");
        self.post_status(ctx, slot);
        // Containers whose back-off is still running start later.
        self.schedule_restarts(ctx, slot);
    }

    /// Containers whose run time ended exit now; others keep running.
    pub(super) fn on_container_exits(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let now = ctx.now;
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let mut restarting = false;
        for (i, c) in spec.containers.iter().enumerate() {
            let (Some(started), Some(run)) = (rt.started[i], c.run_for) else {
                continue;
            };
            if now.since(started) < run || rt.kills[i].is_some() {
                continue;
            }
            let exit_code = if c.failure_rate > 0.0 && ctx.rng.chance(c.failure_rate) {
                if c.exit_code == 0 {
                    1
                } else {
                    c.exit_code
                }
            } else if c.failure_rate > 0.0 {
                0
            } else {
                c.exit_code
            };
            restarting |= record_exit(rt, &spec, i, exit_code, false, now);
        }
        let key = rt.key.clone();
        self.refresh_pod_phase(ctx, slot);
        self.trace(ctx, "ContainersExited", &key, "");
        self.post_status(ctx, slot);
        if restarting {
            self.schedule_restarts(ctx, slot);
        }
    }

    pub(super) fn refresh_pod_phase(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let now = ctx.now;
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let statuses = rt.status.container_statuses.clone();
        let sidecars_ready = spec
            .init_containers
            .iter()
            .zip(&rt.status.init_container_statuses)
            .all(|(c, s)| !c.sidecar || s.ready);
        let all_ready = statuses.iter().all(|s| s.ready) && sidecars_ready;
        let any_running = statuses
            .iter()
            .any(|s| matches!(s.state, ContainerState::Running { .. }));
        let all_done = statuses
            .iter()
            .all(|s| matches!(s.state, ContainerState::Terminated { .. }));
        rt.status.set_condition(
            "ContainersReady",
            all_ready,
            now,
            (!all_ready).then_some("ContainersNotReady"),
        );
        rt.status.set_condition(
            "Ready",
            all_ready,
            now,
            (!all_ready).then_some("ContainersNotReady"),
        );
        let restartable = statuses
            .iter()
            .any(|s| should_restart(spec.restart_policy, &s.state))
            || rt.restart_at.iter().any(Option::is_some)
            || rt.kills.iter().any(Option::is_some);
        rt.status.phase = if all_done && !restartable {
            if statuses
                .iter()
                .all(|s| matches!(s.state, ContainerState::Terminated { exit_code: 0, .. }))
            {
                PodPhase::Succeeded
            } else {
                PodPhase::Failed
            }
        } else if any_running || statuses.iter().any(has_run) {
            PodPhase::Running
        } else {
            PodPhase::Pending
        };
        if matches!(rt.status.phase, PodPhase::Succeeded | PodPhase::Failed) {
            rt.stage = Stage::Done;
            Self::stop_sidecars(rt, now, false);
            let released = Observation::PodReleased {
                node: &self.node_name,
                pod: &rt.obj,
            };
            ctx.shared.observe(now, released);
        }
    }

    /// The pod worker's terminating sync: every running app container is
    /// killed with the deletion's grace period (each runs its preStop hook,
    /// then gets SIGTERM, and SIGKILL at the deadline); a container already
    /// being killed for failing liveness keeps its own deadline. The pod
    /// finishes once they have all exited.
    pub(super) fn begin_termination(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        rt.stage = Stage::Terminating;
        // A restart or step that was due is off.
        rt.gen += 1;
        rt.timed_step = None;
        rt.restart_at.iter_mut().for_each(|r| *r = None);
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let grace =
            SimDuration::from_secs(rt.obj.meta.deletion_grace_seconds.unwrap_or(30).max(0) as u64);
        let key = rt.key.clone();
        let running: Vec<usize> = (0..spec.containers.len())
            .filter(|&i| rt.started[i].is_some() && rt.kills[i].is_none())
            .collect();
        self.trace(ctx, "Killing", &key, &format!("grace period {grace}"));
        for i in running {
            let message = format!("Stopping container {}", spec.containers[i].name);
            self.start_kill(ctx, slot, i, grace, KillReason::PodDeletion, &message);
        }
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        for k in rt.kills.iter_mut().flatten() {
            k.why = KillReason::PodDeletion;
        }
        if rt.kills.iter().all(Option::is_none) {
            self.step_after(ctx, slot, SimDuration::ZERO);
        }
    }

    pub(super) fn finish_termination(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let now = ctx.now;
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let grace =
            SimDuration::from_secs(rt.obj.meta.deletion_grace_seconds.unwrap_or(30).max(0) as u64);
        let killed = rt.obj.meta.deletion.is_some_and(|d| now >= d) && !grace.is_zero();
        for (i, st) in rt.status.container_statuses.iter_mut().enumerate() {
            stop_status(st, now, killed);
            rt.started[i] = None;
        }
        Self::stop_sidecars(rt, now, killed);
        rt.status
            .set_condition("Ready", false, now, Some("PodCompleted"));
        rt.status
            .set_condition("ContainersReady", false, now, Some("PodCompleted"));
        rt.stage = Stage::Done;
        let released = Observation::PodReleased {
            node: &self.node_name,
            pod: &rt.obj,
        };
        ctx.shared.observe(now, released);
        let in_flight = rt.posting;
        self.post_status(ctx, slot);
        if in_flight {
            // The final status waits behind a write in flight; the delete
            // goes once it is written (the status manager deletes a pod
            // only after its terminal status is synced).
            let rt = self.pods[slot as usize].as_mut().expect("slot");
            rt.delete_pending = true;
        } else {
            self.finalize_delete(ctx, slot);
        }
    }

    pub(super) fn finalize_delete(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        rt.deleted_sent = true;
        rt.delete_pending = false;
        let mut req = ApiRequest::new(Verb::Delete, Kind::Pod, &rt.key.namespace, &rt.key.name);
        req.grace_seconds = Some(0);
        self.client.request(ctx, req, TAG_POD_DELETE | slot as u64);
    }
}

/// App container `i`, running since it started, exited at `now` with
/// `exit_code` (its run ended, it crashed, or, live, the OOM killer ended
/// it: `OOMKilled`): Terminated, then, if the
/// restart policy restarts it, waiting out its crash-loop back-off. Returns
/// whether it will restart.
pub(super) fn record_exit(
    rt: &mut PodRuntime,
    spec: &PodSpecModel,
    i: usize,
    exit_code: i32,
    oom_killed: bool,
    now: SimTime,
) -> bool {
    let Some(started) = rt.started[i].take() else {
        return false;
    };
    let c = &spec.containers[i];
    let st = &mut rt.status.container_statuses[i];
    let reason = match exit_code {
        _ if oom_killed => "OOMKilled",
        0 => "Completed",
        _ => "Error",
    };
    st.state = ContainerState::Terminated {
        exit_code,
        reason,
        started,
        finished: now,
    };
    st.ready = false;
    st.started = false;
    if !should_restart(spec.restart_policy, &st.state) {
        return false;
    }
    let delay = restart_delay(&mut rt.backoff[i], now);
    if !delay.is_zero() {
        st.state = ContainerState::Waiting {
            reason: "CrashLoopBackOff",
            message: format!(
                "back-off {} restarting failed container={} pod={}",
                delay, c.name, rt.key.name
            ),
        };
        st.last_state = Some(ContainerState::Terminated {
            exit_code,
            reason,
            started,
            finished: now,
        });
    }
    rt.restart_at[i] = Some(now.after(delay));
    true
}

/// A container that ran and stopped (upstream getPhase's `stopped`): it is
/// terminated, or waiting to restart after a termination.
/// A running container stopped at `now`: killed (SIGKILL, exit 137, Error)
/// or exited on its own (0, Completed); either way no longer ready.
fn stop_status(st: &mut ContainerStatus, now: SimTime, killed: bool) {
    if let ContainerState::Running { started } = st.state {
        let (exit_code, reason) = if killed {
            (137, "Error")
        } else {
            (0, "Completed")
        };
        st.state = ContainerState::Terminated {
            exit_code,
            reason,
            started,
            finished: now,
        };
    }
    st.ready = false;
}

/// The app containers a sync starts now (what [`Kubelet::start_containers`]
/// starts): not running, not being killed, past their back-off, and, if
/// they ran before, restartable under the pod's policy.
fn due_to_start(rt: &PodRuntime, spec: &PodSpecModel, now: SimTime) -> Vec<usize> {
    (0..spec.containers.len())
        .filter(|&i| rt.started[i].is_none() && rt.kills[i].is_none())
        .filter(|&i| match rt.restart_at[i] {
            Some(t) => t <= now,
            None => match &rt.status.container_statuses[i].state {
                st @ ContainerState::Terminated { .. } => should_restart(spec.restart_policy, st),
                _ => true,
            },
        })
        .collect()
}

fn has_run(s: &ContainerStatus) -> bool {
    matches!(s.state, ContainerState::Terminated { .. })
        || matches!(s.last_state, Some(ContainerState::Terminated { .. }))
}

fn should_restart(policy: RestartPolicy, state: &ContainerState) -> bool {
    match (policy, state) {
        (RestartPolicy::Always, ContainerState::Terminated { .. }) => true,
        (RestartPolicy::OnFailure, ContainerState::Terminated { exit_code, .. }) => *exit_code != 0,
        _ => false,
    }
}
