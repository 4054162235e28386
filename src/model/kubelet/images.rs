//! The image manager: one pull at a time (`serializeImagePulls: true`).

use super::*;

impl Kubelet {
    /// Ensures `image` is present; returns false and queues the pod if a pull is needed.
    pub(super) fn ensure_image(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        image: &str,
    ) -> bool {
        if self.images.contains(image) {
            return true;
        }
        self.pull_waiters
            .entry(image.to_string())
            .or_default()
            .push(slot);
        if self.pulling.as_deref() != Some(image) && !self.pull_queue.iter().any(|i| i == image) {
            self.pull_queue.push(image.to_string());
        }
        self.next_pull(ctx);
        false
    }

    /// Pulls one image at a time (`serializeImagePulls: true`, the default).
    pub(super) fn next_pull(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        if self.pulling.is_some() || self.pull_queue.is_empty() {
            return;
        }
        let image = self.pull_queue.remove(0);
        let size = self.image_size(&image);
        let d = self.cfg.pull_overhead.sample(ctx.rng)
            + SimDuration((size as f64 / self.cfg.pull_bandwidth as f64 * 1e9) as u64);
        let name = self.name.clone();
        ctx.trace
            .record(TraceLevel::Events, ctx.now, &name, "Pulling", |r| {
                r.str("image", &image).str("expected", &d.to_string());
            });
        self.pulling = Some(image);
        ctx.timer(d, Payload::Timer(Timer::PullDone { image: 0 }));
    }

    pub(super) fn on_pull_done(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        let Some(image) = self.pulling.take() else {
            return;
        };
        let name = self.name.clone();
        ctx.trace
            .record(TraceLevel::Events, ctx.now, &name, "Pulled", |r| {
                r.str("image", &image);
            });
        self.images.insert(image.clone());
        for slot in self.pull_waiters.remove(&image).unwrap_or_default() {
            if self.pods.get(slot as usize).is_some_and(Option::is_some) {
                self.advance(ctx, slot);
            }
        }
        self.next_pull(ctx);
    }
}
