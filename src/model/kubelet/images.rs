//! The image manager: one pull at a time (`serializeImagePulls: true`),
//! and, when the registry fails a pull, upstream's `ErrImagePull` /
//! `ImagePullBackOff` with the per-pod, per-image back-off of
//! [`super::image_backoff`].

use super::image_backoff::{self, PullBackOff};
use super::*;

/// What the runtime says of a pull the registry failed (containerd's
/// wording for a registry it cannot reach).
fn pull_error(image: &str) -> String {
    format!(
        "rpc error: code = Unknown desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": registry unavailable"
    )
}

impl Kubelet {
    /// Ensures `image` is present; returns false if the pod must wait: a
    /// pull is queued, or the image is in back-off (`ImagePullBackOff`).
    pub(super) fn ensure_image(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        image: &str,
    ) -> bool {
        if self.images.contains(image) {
            return true;
        }
        let key = self.pull_backoff_key(slot, image);
        if image_backoff::in_backoff(self.pull_backoff.get(&key), ctx.now) {
            let message = format!("Back-off pulling image \"{image}\"");
            self.image_waiting(ctx, slot, image, "ImagePullBackOff", &message);
            self.event_for(ctx, slot, "Normal", "BackOff", &message);
            return self.retry_sync(ctx, slot);
        }
        self.pull_waiters
            .entry(image.to_string())
            .or_default()
            .push(slot);
        let uid = &self.pods[slot as usize]
            .as_ref()
            .expect("slot")
            .obj
            .meta
            .uid;
        self.startup.started_pulling(uid, ctx.now);
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
        // The registry's answer decides the pull: a failing one costs the
        // round trips of the overhead, then fails.
        self.pull_fails = ctx.shared.registry.pull_fails(&image, &self.node_name);
        let d = if self.pull_fails {
            self.cfg.pull_overhead.sample(ctx.rng)
        } else {
            let size = self.image_size(&image);
            self.cfg.pull_overhead.sample(ctx.rng)
                + SimDuration((size as f64 / self.cfg.pull_bandwidth as f64 * 1e9) as u64)
        };
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
        if std::mem::take(&mut self.pull_fails) {
            return self.on_pull_failed(ctx, image);
        }
        let name = self.name.clone();
        ctx.trace
            .record(TraceLevel::Events, ctx.now, &name, "Pulled", |r| {
                r.str("image", &image);
            });
        self.images.insert(image.clone());
        for slot in self.pull_waiters.remove(&image).unwrap_or_default() {
            if let Some(rt) = self.pods.get(slot as usize).and_then(Option::as_ref) {
                self.startup.finished_pulling(&rt.obj.meta.uid, ctx.now);
                self.advance(ctx, slot);
            }
        }
        self.next_pull(ctx);
    }

    /// The registry failed the pull: every pod waiting for it records the
    /// failure in its back-off and shows `ErrImagePull` until its worker
    /// syncs again.
    fn on_pull_failed(&mut self, ctx: &mut Ctx<'_, Payload, World>, image: String) {
        let name = self.name.clone();
        let error = pull_error(&image);
        ctx.trace
            .record(TraceLevel::Events, ctx.now, &name, "PullFailed", |r| {
                r.str("image", &image).str("error", &error);
            });
        let message = format!("Failed to pull image \"{image}\": {error}");
        for slot in self.pull_waiters.remove(&image).unwrap_or_default() {
            if !self.pods.get(slot as usize).is_some_and(Option::is_some) {
                continue;
            }
            let key = self.pull_backoff_key(slot, &image);
            let mut entry = self.pull_backoff.get(&key).copied();
            image_backoff::next(&mut entry, ctx.now);
            self.pull_backoff
                .insert(key, entry.expect("next sets the entry"));
            self.image_waiting(ctx, slot, &image, "ErrImagePull", &error);
            self.event_for(ctx, slot, "Warning", "Failed", &message);
            self.retry_sync(ctx, slot);
        }
        self.next_pull(ctx);
    }

    /// Upstream keys the back-off `<pod UID>_<image>`.
    fn pull_backoff_key(&self, slot: u32, image: &str) -> (String, String) {
        let uid = self.pods[slot as usize]
            .as_ref()
            .map(|rt| rt.obj.meta.uid.clone())
            .unwrap_or_default();
        (uid, image.to_string())
    }

    /// The waiting containers of the stage pulling `image` show `reason`.
    fn image_waiting(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        image: &str,
        reason: &'static str,
        message: &str,
    ) {
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let statuses = match rt.stage {
            Stage::Init(i) => &mut rt.status.init_container_statuses[i..=i],
            _ => &mut rt.status.container_statuses[..],
        };
        for st in statuses.iter_mut().filter(|s| s.image == image) {
            if let ContainerState::Waiting { .. } = st.state {
                st.state = ContainerState::Waiting {
                    reason,
                    message: message.to_string(),
                };
            }
        }
        self.post_status(ctx, slot);
    }

    fn event_for(
        &self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        type_: &str,
        reason: &str,
        message: &str,
    ) {
        if let Some(rt) = self.pods[slot as usize].as_ref() {
            self.event(ctx, &rt.key, type_, reason, message);
        }
    }

    /// A sync that failed on the image: the pod worker tries again after
    /// `wait.Jitter(10s, 0.5)`. Always `false` (the pod waits).
    fn retry_sync(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) -> bool {
        let d = image_backoff::worker_retry(ctx.rng);
        self.step_after(ctx, slot, d);
        false
    }
}

/// The back-off entries of a kubelet, by (pod UID, image).
pub(super) type PullBackOffs = BTreeMap<(String, String), PullBackOff>;
