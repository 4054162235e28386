//! The prober: readiness and startup probes on their periods (upstream
//! pkg/kubelet/prober).

use super::*;

impl Kubelet {
    /// One probe run. `i` below the app container count is an app
    /// container; above it, `i - n` is a sidecar (a restartable init
    /// container), whose probes run for the pod's life, so they are not tied
    /// to the pod's step generation.
    pub(super) fn on_probe(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        i: usize,
        gen: u32,
    ) {
        let now = ctx.now;
        let Some(rt) = self.pods[slot as usize].as_mut() else {
            return;
        };
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let n = spec.containers.len();
        let sidecar = i >= n;
        if (!sidecar && rt.gen != gen) || matches!(rt.stage, Stage::Terminating | Stage::Done) {
            return;
        }
        let c = if sidecar {
            &spec.init_containers[i - n]
        } else {
            &spec.containers[i]
        };
        let Some(started) = rt.started[i] else { return };
        let Some(probe) = c.readiness.as_ref().or(c.startup.as_ref()) else {
            return;
        };
        // The app answers its probe once it has warmed up.
        if now.since(started) >= spec.ready_after {
            rt.probe_ok[i] += 1;
        } else {
            rt.probe_ok[i] = 0;
        }
        let st = if sidecar {
            &mut rt.status.init_container_statuses[i - n]
        } else {
            &mut rt.status.container_statuses[i]
        };
        let mut changed = false;
        let mut now_started = false;
        if rt.probe_ok[i] >= probe.success_threshold {
            if !st.started {
                st.started = true;
                now_started = true;
                changed = true;
            }
            if !st.ready {
                st.ready = true;
                changed = true;
            }
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
