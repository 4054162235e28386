//! The prober: readiness and startup probes on their periods (upstream
//! pkg/kubelet/prober).

use super::*;

impl Kubelet {
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
        if rt.gen != gen || rt.stage == Stage::Terminating {
            return;
        }
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let c = &spec.containers[i];
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
        let st = &mut rt.status.container_statuses[i];
        let mut changed = false;
        if rt.probe_ok[i] >= probe.success_threshold {
            if !st.started {
                st.started = true;
                changed = true;
            }
            if !st.ready {
                st.ready = true;
                changed = true;
            }
        }
        if c.readiness.is_some() {
            ctx.timer(
                probe.period,
                Payload::Timer(Timer::Probe {
                    slot,
                    container: i as u16,
                    gen,
                }),
            );
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
