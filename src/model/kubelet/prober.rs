//! The prober (upstream pkg/kubelet/prober): readiness, startup and
//! liveness probes on their periods, the `Unhealthy` events of failed runs,
//! and the liveness kill after `failureThreshold` failures in a row.

use super::kill::KillReason;
use super::runtime::{ContainerRef, RunFor};
use super::*;
use crate::api::pod::{ProbeHandler, ProbeModel};

impl Kubelet {
    /// A container (app index `i`, or `n + j` for sidecar `j`) has started:
    /// a new instance, whose probe workers start from scratch (upstream
    /// keys results by container ID, so a new container is a new series).
    pub(super) fn start_probes(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        i: usize,
        now: SimTime,
    ) {
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let c = Self::container_spec(&spec, i);
        rt.started[i] = Some(now);
        rt.instance[i] += 1;
        rt.probe_ok[i] = 0;
        rt.probe_fail[i] = 0;
        rt.live_fail[i] = 0;
        let gen = rt.instance[i];
        let container = i as u16;
        if let Some(p) = c.readiness.as_ref().or(c.startup.as_ref()) {
            let d = p.initial_delay.max_nonzero(p.period);
            ctx.timer(
                d,
                Payload::Timer(Timer::Probe {
                    slot,
                    container,
                    gen,
                }),
            );
        }
        if let Some(p) = &c.liveness {
            let d = p.initial_delay.max_nonzero(p.period);
            ctx.timer(
                d,
                Payload::Timer(Timer::LivenessProbe {
                    slot,
                    container,
                    gen,
                }),
            );
        }
    }

    /// A restarted kubelet found container `i` running: its probe workers
    /// start from scratch (results are process memory). In v1.34
    /// (`ChangeContainerStatusOnKubeletRestart` on) a container with a
    /// startup probe is not started, and one with a readiness probe not
    /// ready, until its new worker's probe passes; each worker first waits
    /// a random part of its period (upstream's worker does when the kubelet
    /// started less than a period ago). Whether anything changed.
    pub(super) fn adopt_probes(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        i: usize,
    ) -> bool {
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let n = spec.containers.len();
        let c = Self::container_spec(&spec, i);
        rt.instance[i] += 1;
        let gen = rt.instance[i];
        let st = if i >= n {
            &mut rt.status.init_container_statuses[i - n]
        } else {
            &mut rt.status.container_statuses[i]
        };
        let before = (st.started, st.ready);
        if c.startup.is_some() {
            st.started = false;
        }
        if c.startup.is_some() || c.readiness.is_some() {
            st.ready = false;
        }
        let changed = before != (st.started, st.ready);
        let container = i as u16;
        if let Some(p) = c.readiness.as_ref().or(c.startup.as_ref()) {
            let d = SimDuration(
                ctx.rng
                    .range_inclusive(0, p.period.nanos().saturating_sub(1)),
            );
            ctx.timer(
                d,
                Payload::Timer(Timer::Probe {
                    slot,
                    container,
                    gen,
                }),
            );
        }
        if let Some(p) = &c.liveness {
            let d = SimDuration(
                ctx.rng
                    .range_inclusive(0, p.period.nanos().saturating_sub(1)),
            );
            let t = Timer::LivenessProbe {
                slot,
                container,
                gen,
            };
            ctx.timer(d, Payload::Timer(t));
        }
        changed
    }

    /// The running instance `gen` of container `i`, if its probes still count.
    fn probed(&self, slot: u32, i: usize, gen: u32) -> Option<(SimTime, Arc<PodSpecModel>)> {
        let rt = self.pods.get(slot as usize)?.as_ref()?;
        if rt.instance[i] != gen
            || rt.kills[i].is_some()
            || matches!(rt.stage, Stage::Terminating | Stage::Done)
        {
            return None;
        }
        Some((rt.started[i]?, rt.obj.as_pod()?.spec.clone()))
    }

    /// One readiness (or, until it passes, startup) probe run.
    pub(super) fn on_probe(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        i: usize,
        gen: u32,
    ) {
        let now = ctx.now;
        let Some((started, spec)) = self.probed(slot, i, gen) else {
            return;
        };
        let c = Self::container_spec(&spec, i);
        let Some(probe) = c.readiness.as_ref().or(c.startup.as_ref()) else {
            return;
        };
        if self.live().is_some() {
            let container = ContainerRef { slot, index: i };
            return self.run_live(
                ctx,
                slot,
                i,
                RunFor::Probe { container, gen },
                probe.timeout,
            );
        }
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let is_started = rt.container_started(i);
        let up = now.since(started);
        // The app answers its probe once it has warmed up; a readiness
        // probe also fails in its scripted window or by chance.
        let f = &spec.faults;
        let readiness = c.readiness.is_some() && is_started;
        let scripted = readiness
            && f.readiness_fails_after
                .is_some_and(|a| up >= a && f.readiness_fails_for.is_none_or(|d| up < a + d));
        let ok = up >= spec.ready_after
            && !scripted
            && !(readiness && ctx.rng.chance(f.readiness_failure_rate));
        self.probe_result(ctx, slot, i, gen, ok, None);
    }

    /// A readiness or startup probe's verdict (drawn, or, live, what the
    /// container answered: `output`): the success and failure counts, the
    /// container's started and ready flags, the next run, `Unhealthy`.
    pub(super) fn probe_result(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        i: usize,
        gen: u32,
        ok: bool,
        output: Option<&str>,
    ) {
        let Some((_, spec)) = self.probed(slot, i, gen) else {
            return;
        };
        let n = spec.containers.len();
        let sidecar = i >= n;
        let c = Self::container_spec(&spec, i);
        let Some(probe) = c.readiness.as_ref().or(c.startup.as_ref()) else {
            return;
        };
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let is_started = rt.container_started(i);
        let readiness = c.readiness.is_some() && is_started;
        if ok {
            rt.probe_ok[i] += 1;
            rt.probe_fail[i] = 0;
        } else {
            rt.probe_ok[i] = 0;
            rt.probe_fail[i] += 1;
        }
        let (probe_ok, probe_fail) = (rt.probe_ok[i], rt.probe_fail[i]);
        let pod_ip = rt.status.pod_ip.clone();
        let key = rt.key.clone();
        let st = if sidecar {
            &mut rt.status.init_container_statuses[i - n]
        } else {
            &mut rt.status.container_statuses[i]
        };
        let mut changed = false;
        let mut now_started = false;
        if probe_ok >= probe.success_threshold {
            if !st.started {
                st.started = true;
                now_started = true;
                changed = true;
            }
            if !st.ready {
                st.ready = true;
                changed = true;
            }
        } else if probe_fail >= probe.failure_threshold && st.ready && readiness {
            // `failureThreshold` failures in a row: not ready until
            // `successThreshold` successes in a row.
            st.ready = false;
            changed = true;
        }
        // A startup probe runs until it passes; a readiness probe for good.
        if c.readiness.is_some() || !st.started {
            ctx.timer(
                probe.period,
                Payload::Timer(Timer::Probe {
                    slot,
                    container: i as u16,
                    gen,
                }),
            );
        }
        if !ok {
            let kind = if c.readiness.is_some() {
                "Readiness"
            } else {
                "Startup"
            };
            let detail =
                live_detail(output).unwrap_or_else(|| failure_detail(probe, pod_ip.as_deref()));
            self.event(
                ctx,
                &key,
                "Warning",
                "Unhealthy",
                &format!("{kind} probe failed: {detail}"),
            );
        }
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        if sidecar && now_started && rt.stage == Stage::Init(i - n) {
            // The next init container waits for this sidecar to start.
            rt.stage = Stage::Init(i - n + 1);
            self.post_status(ctx, slot);
            return self.advance(ctx, slot);
        }
        if changed {
            self.refresh_pod_phase(ctx, slot);
            self.post_status(ctx, slot);
        }
    }

    /// One liveness probe run (upstream's liveness worker): skipped until
    /// the startup probe has passed; after `failureThreshold` failures in a
    /// row the container is killed and the worker holds until the next
    /// container (`onHold`).
    pub(super) fn on_liveness_probe(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        i: usize,
        gen: u32,
    ) {
        let now = ctx.now;
        let Some((started, spec)) = self.probed(slot, i, gen) else {
            return;
        };
        let c = Self::container_spec(&spec, i);
        let Some(probe) = c.liveness.clone() else {
            return;
        };
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let is_started = rt.container_started(i);
        let next = Payload::Timer(Timer::LivenessProbe {
            slot,
            container: i as u16,
            gen,
        });
        if !is_started {
            return ctx.timer(probe.period, next);
        }
        if self.live().is_some() {
            let container = ContainerRef { slot, index: i };
            return self.run_live(
                ctx,
                slot,
                i,
                RunFor::Liveness { container, gen },
                probe.timeout,
            );
        }
        let f = &spec.faults;
        let fails = f
            .liveness_fails_after
            .is_some_and(|a| now.since(started) >= a)
            || ctx.rng.chance(f.liveness_failure_rate);
        self.liveness_result(ctx, slot, i, gen, fails, None);
    }

    /// A liveness probe's verdict (drawn, or, live, answered: `output`):
    /// the failure count, `Unhealthy`, the next run, and the kill after
    /// `failureThreshold` failures in a row.
    pub(super) fn liveness_result(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        i: usize,
        gen: u32,
        fails: bool,
        output: Option<&str>,
    ) {
        let Some((_, spec)) = self.probed(slot, i, gen) else {
            return;
        };
        let n = spec.containers.len();
        let c = Self::container_spec(&spec, i);
        let Some(probe) = c.liveness.clone() else {
            return;
        };
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let next = Payload::Timer(Timer::LivenessProbe {
            slot,
            container: i as u16,
            gen,
        });
        if !fails {
            rt.live_fail[i] = 0;
            return ctx.timer(probe.period, next);
        }
        rt.live_fail[i] += 1;
        let failures = rt.live_fail[i];
        let key = rt.key.clone();
        let detail = live_detail(output)
            .unwrap_or_else(|| failure_detail(&probe, rt.status.pod_ip.as_deref()));
        self.event(
            ctx,
            &key,
            "Warning",
            "Unhealthy",
            &format!("Liveness probe failed: {detail}"),
        );
        if failures < probe.failure_threshold {
            return ctx.timer(probe.period, next);
        }
        // computePodActions: kill, and restart unless the pod never
        // restarts its containers (a sidecar always restarts).
        let restarts = i >= n || spec.restart_policy != RestartPolicy::Never;
        let mut message = format!("Container {} failed liveness probe", c.name);
        if restarts {
            message.push_str(", will be restarted");
        }
        let grace = probe.termination_grace.unwrap_or(spec.termination_grace);
        self.start_kill(ctx, slot, i, grace, KillReason::Liveness, &message);
    }
}

/// What a live probe's failure said, if anything.
fn live_detail(output: Option<&str>) -> Option<String> {
    output.map(|o| o.trim_end().to_string())
}

/// What a failed probe run reports, per handler, as the prober words it
/// for an app that answers with an error.
fn failure_detail(p: &ProbeModel, pod_ip: Option<&str>) -> String {
    let ip = pod_ip.unwrap_or("");
    match &p.handler {
        ProbeHandler::Exec => String::new(),
        ProbeHandler::HttpGet { .. } => "HTTP probe failed with statuscode: 500".into(),
        ProbeHandler::TcpSocket { port } => {
            format!("dial tcp {ip}:{port}: connect: connection refused")
        }
        ProbeHandler::Grpc { .. } => "service unhealthy (responded with \"NOT_SERVING\")".into(),
    }
}

pub(super) trait NonZero {
    fn max_nonzero(self, fallback: SimDuration) -> SimDuration;
}

impl NonZero for SimDuration {
    /// The first probe runs after `initialDelaySeconds`, or one period when that is zero.
    fn max_nonzero(self, fallback: SimDuration) -> SimDuration {
        if self.is_zero() {
            fallback.min(SimDuration::from_secs(1))
        } else {
            self
        }
    }
}

impl PodRuntime {
    /// Whether container `i` (app index, or `n + j` for sidecar `j`) counts
    /// as started (its startup probe, if any, has passed).
    fn container_started(&self, i: usize) -> bool {
        let n = self.status.container_statuses.len();
        if i >= n {
            self.status.init_container_statuses[i - n].started
        } else {
            self.status.container_statuses[i].started
        }
    }
}
