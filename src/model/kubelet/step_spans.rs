//! `RuntimeStep` trace records: how long the container runtime took for
//! one of a pod's steps (make the sandbox, start the app containers, stop a
//! container after SIGTERM), traced at span level.
//!
//! A simulated kubelet draws each step's latency from its
//! `cluster.kubelet` distributions; a live one waits for containerd. Both
//! trace the step the same way, from the instant the kubelet asked to the
//! instant it went on, so `kubesim live --compare` sets them side by side
//! and `kubesim calibrate` fits the distributions from a live run's.

use super::*;

/// Which runtime step a span measures (the `step` field of the record, and
/// the `cluster.kubelet` latency it corresponds to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StepKind {
    /// `RunPodSandbox`: `sandboxCreateLatency`.
    Sandbox,
    /// Create and start the app containers: `containerStartLatency`.
    Start,
    /// SIGTERM to exit, for a container that stopped by itself:
    /// `containerStopLatency`.
    Stop,
}

impl StepKind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            StepKind::Sandbox => "sandbox",
            StepKind::Start => "start",
            StepKind::Stop => "stop",
        }
    }
}

impl Kubelet {
    /// Marks the pod step just armed (by `step_after` or `step_when`) as
    /// runtime step `kind`, begun now; its end is traced when it fires.
    pub(super) fn time_step(&mut self, ctx: &Ctx<'_, Payload, World>, slot: u32, kind: StepKind) {
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        rt.timed_step = Some((kind, ctx.now));
    }

    /// The pod step that fired ends the runtime step it was marked as.
    pub(super) fn end_timed_step(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let Some(rt) = self.pods[slot as usize].as_mut() else {
            return;
        };
        if let Some((kind, began)) = rt.timed_step.take() {
            let key = rt.key.clone();
            self.trace_step(ctx, &key, kind, "", began);
        }
    }

    /// Traces one runtime step of `pod` (of `container`, when it is one
    /// container's) that ran from `began` until now.
    pub(super) fn trace_step(
        &self,
        ctx: &mut Ctx<'_, Payload, World>,
        pod: &ObjectKey,
        kind: StepKind,
        container: &str,
        began: SimTime,
    ) {
        let took = ctx.now.since(began).nanos();
        ctx.trace
            .record(TraceLevel::Spans, ctx.now, &self.name, "RuntimeStep", |r| {
                // Formatted only when the level records it: this runs at
                // every pod step.
                r.str("pod", &format!("{}/{}", pod.namespace, pod.name))
                    .str("step", kind.as_str());
                if !container.is_empty() {
                    r.str("container", container);
                }
                r.u64("start", began.0).u64("took", took);
            });
    }
}
