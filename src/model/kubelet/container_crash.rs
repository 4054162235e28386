//! A container that crashes (a fault): the runtime reports its exit with a
//! code, and the kubelet handles it as any exit (upstream's PLEG sees the
//! container die and the next SyncPod applies `restartPolicy` through
//! `computePodActions`, with the crash-loop back-off of [`super::backoff`]).

use super::pod_workers::record_exit;
use super::runtime::Signal;
use super::*;
use crate::model::msg::ContainerCrashed;

impl Kubelet {
    pub(super) fn on_container_crash(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        c: &ContainerCrashed,
    ) {
        let key = ObjectKey {
            kind: Kind::Pod,
            namespace: c.namespace.clone(),
            name: c.pod.clone(),
        };
        let now = ctx.now;
        let Some(&slot) = self.by_key.get(&key) else {
            return self.trace(ctx, "ContainerCrashIgnored", &key, "no such pod here");
        };
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let i = match &c.container {
            None => 0,
            Some(name) => match spec.containers.iter().position(|x| &x.name == name) {
                Some(i) => i,
                None => return self.trace(ctx, "ContainerCrashIgnored", &key, "no such container"),
            },
        };
        if rt.stage != Stage::Running || rt.kills[i].is_some() || rt.started[i].is_none() {
            return self.trace(ctx, "ContainerCrashIgnored", &key, "container not running");
        }
        if self.live().is_some() {
            // A real process: kill it; its exit comes back from the runtime.
            let detail = format!("{}: SIGKILL", spec.containers[i].name);
            self.trace(ctx, "ContainerCrashed", &key, &detail);
            return self.signal_live(ctx, slot, i, Signal::Kill);
        }
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let restarting = record_exit(rt, &spec, i, c.exit_code, false, now);
        let detail = format!(
            "{} exited with code {}",
            spec.containers[i].name, c.exit_code
        );
        self.refresh_pod_phase(ctx, slot);
        self.trace(ctx, "ContainerCrashed", &key, &detail);
        self.post_status(ctx, slot);
        if restarting {
            self.schedule_restarts(ctx, slot);
        }
    }
}
