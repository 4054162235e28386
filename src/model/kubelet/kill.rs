//! Killing one container (upstream kuberuntime's `killContainer`): the
//! `Killing` event, the preStop hook given the whole grace period
//! (`executePreStopHook`), then SIGTERM with what is left of it, at least
//! `minimumGracePeriodInSeconds` (2 s), and SIGKILL when that runs out.

use super::backoff::restart_delay;
use super::step_spans::StepKind;
use super::*;
use crate::api::pod::{ContainerModel, PodSpecModel, PreStopModel};

/// `minimumGracePeriodInSeconds`: the stop window SIGTERM always gets, even
/// after a preStop hook used up the grace period.
const MINIMUM_GRACE: SimDuration = SimDuration::from_secs(2);

/// Why a container is killed: it decides what follows its exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KillReason {
    /// The pod is being deleted: the pod finishes once every kill has.
    PodDeletion,
    /// The liveness probe failed: restarted unless `restartPolicy: Never`.
    Liveness,
}

/// One container's kill in progress.
#[derive(Clone, Debug)]
pub(super) struct Kill {
    pub(super) why: KillReason,
    /// The hook is still running until this instant (then SIGTERM).
    hook_until: Option<SimTime>,
    /// The hook reports a failure (`FailedPreStopHook`) at this instant.
    hook_fails_at: Option<SimTime>,
    /// The container exits at this instant, SIGKILLed if `killed`. Live,
    /// the instant SIGKILL goes if it has not exited by then.
    exit_at: SimTime,
    killed: bool,
    /// When SIGTERM goes (went): the start of the `stop` runtime step.
    term_at: SimTime,
    /// When the kill began and the grace it had (a live preStop hook's
    /// end recomputes the SIGTERM window from them).
    began: SimTime,
    grace: SimDuration,
}

/// The wait `executePreStopHook` reports: whole seconds, truncated.
fn whole_secs(d: SimDuration) -> SimDuration {
    SimDuration::from_secs(d.nanos() / 1_000_000_000)
}

/// Plans a kill that starts at `now` with `grace`: when SIGTERM goes, when
/// the container exits, and whether a hook failure is reported. `stop` is
/// how long the app takes to exit after SIGTERM.
fn plan(
    now: SimTime,
    grace: SimDuration,
    hook: Option<&PreStopModel>,
    stop: SimDuration,
    why: KillReason,
) -> Kill {
    // Upstream runs the hook only when there is grace to run it in.
    let hook = hook.filter(|_| !grace.is_zero());
    let (waited, hook_len, fails, dies_with_container) = match hook {
        None => (SimDuration::ZERO, SimDuration::ZERO, false, false),
        Some(PreStopModel::Run { duration, fails }) => {
            (grace.min(*duration), *duration, *fails, true)
        }
        Some(PreStopModel::Sleep(d)) => (grace.min(*d), *d, false, false),
        Some(PreStopModel::Unsupported) => (SimDuration::ZERO, SimDuration::ZERO, true, false),
    };
    let mut remaining = SimDuration(grace.nanos().saturating_sub(whole_secs(waited).nanos()));
    if !grace.is_zero() {
        remaining = remaining.max(MINIMUM_GRACE);
    }
    let term_at = now.after(waited);
    let killed = stop > remaining;
    let exit_at = term_at.after(stop.min(remaining));
    let overran = hook.is_some() && hook_len > grace;
    // A failing hook reports when it ends; an exec or httpGet hook still
    // running when its container dies fails then (its session is gone).
    let hook_fails_at = if fails && !overran {
        Some(now.after(hook_len))
    } else if overran && dies_with_container {
        Some(exit_at)
    } else {
        None
    };
    Kill {
        why,
        hook_until: hook.map(|_| term_at),
        hook_fails_at,
        exit_at,
        killed,
        term_at,
        began: now,
        grace,
    }
}

/// Live, how long the app takes to stop is the real process's business:
/// the plan is made for one that never stops, which puts SIGKILL at the
/// end of the grace period.
const LIVE_STOP: SimDuration = SimDuration::from_secs(1 << 32);

/// What is left of the grace period for SIGTERM after a hook that ran
/// from `began` to `now` (upstream subtracts the whole seconds the hook
/// took, and leaves at least the 2 s minimum).
fn after_hook(began: SimTime, now: SimTime, grace: SimDuration) -> SimDuration {
    let used = whole_secs(now.since(began));
    SimDuration(grace.nanos().saturating_sub(used.nanos())).max(MINIMUM_GRACE)
}

impl Kubelet {
    /// The container at `i` (app index, or `n + j` for sidecar `j`).
    pub(super) fn container_spec(spec: &PodSpecModel, i: usize) -> &ContainerModel {
        let n = spec.containers.len();
        if i < n {
            &spec.containers[i]
        } else {
            &spec.init_containers[i - n]
        }
    }

    /// `killContainer`: records `Killing` with `message`, then runs the hook
    /// and stops the container as [`plan`] says.
    pub(super) fn start_kill(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        i: usize,
        grace: SimDuration,
        why: KillReason,
        message: &str,
    ) {
        let now = ctx.now;
        let live = self.live().is_some();
        let stop = if live {
            LIVE_STOP
        } else {
            self.cfg.container_stop.sample(ctx.rng)
        };
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let c = Self::container_spec(&spec, i);
        let mut kill = plan(now, grace, c.pre_stop.as_ref(), stop + spec.stop_after, why);
        // Live, an exec or httpGet hook runs for real; SIGTERM follows its
        // end (`pre_stop_done`) or the grace period's. Upstream's hook has
        // no timeout of its own: one still running dies with the container
        // at SIGKILL, 2 s later, so the run is let go a second after that.
        let live_hook =
            live && !grace.is_zero() && matches!(c.pre_stop, Some(PreStopModel::Run { .. }));
        if live_hook {
            kill.hook_until = Some(now.after(grace));
            kill.hook_fails_at = None;
            kill.exit_at = now.after(grace + MINIMUM_GRACE);
        }
        if live {
            // Not SIGKILLed until `kill_step_live` sends it.
            kill.killed = false;
        }
        let next = kill.hook_until.unwrap_or(kill.exit_at);
        let no_hook = kill.hook_until.is_none();
        rt.kills[i] = Some(kill);
        let key = rt.key.clone();
        let name = c.name.clone();
        self.event(ctx, &key, "Normal", "Killing", message);
        self.trace(
            ctx,
            "KillContainer",
            &key,
            &format!("{name} grace period {grace}"),
        );
        self.kill_timer(ctx, slot, i, next.since(now));
        if live_hook {
            let gen = self.pods[slot as usize].as_ref().expect("slot").kill_gen[i];
            let container = super::runtime::ContainerRef { slot, index: i };
            let why = super::runtime::RunFor::PreStop { container, gen };
            let bound = grace + MINIMUM_GRACE + SimDuration::from_secs(1);
            self.run_live(ctx, slot, i, why, bound);
        } else if live && no_hook {
            self.signal_live(ctx, slot, i, super::runtime::Signal::Term);
        }
    }

    /// Arms the container's kill (or sidecar restart) timer, cancelling
    /// the one before.
    pub(super) fn kill_timer(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        i: usize,
        d: SimDuration,
    ) {
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        rt.kill_gen[i] += 1;
        let gen = rt.kill_gen[i];
        ctx.timer(
            d,
            Payload::Timer(Timer::ContainerKill {
                slot,
                container: i as u16,
                gen,
            }),
        );
    }

    /// A kill's step is due: the hook ended (SIGTERM now), or the container
    /// exited. Without a kill in progress it is a sidecar's restart.
    pub(super) fn on_kill_step(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        i: usize,
        gen: u32,
    ) {
        let now = ctx.now;
        let Some(rt) = self.pods.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        if rt.kill_gen[i] != gen || rt.stage == Stage::Done {
            return;
        }
        let Some(kill) = rt.kills[i].clone() else {
            return self.restart_sidecar(ctx, slot, i);
        };
        // The step is due at the hook's end, else at the exit. It may come
        // late: a crashed kubelet's events wait until a new process
        // handles them, and the container stopped meanwhile all the same.
        let due = kill.hook_until.unwrap_or(kill.exit_at);
        if now < due {
            // A stale timer (of a pod that had this slot before).
            return;
        }
        let key = rt.key.clone();
        if kill.hook_fails_at.is_some_and(|f| f <= now) {
            // Reported once, at the first step at or after the failure.
            if let Some(k) = rt.kills[i].as_mut() {
                k.hook_fails_at = None;
            }
            self.event(
                ctx,
                &key,
                "Warning",
                "FailedPreStopHook",
                "PreStopHook failed",
            );
        }
        if self.live().is_some() {
            return self.kill_step_live(ctx, slot, i, kill);
        }
        if kill.hook_until.is_some() && kill.exit_at > now {
            let rt = self.pods[slot as usize].as_mut().expect("slot");
            if let Some(k) = rt.kills[i].as_mut() {
                k.hook_until = None;
            }
            return self.kill_timer(ctx, slot, i, kill.exit_at.since(now));
        }
        self.on_killed(ctx, slot, i, kill, None);
    }

    /// A live kill's timer: the hook's time ran out (a `sleep` hook is
    /// done, an exec or httpGet hook used its grace period: SIGTERM now),
    /// or the grace period did (SIGKILL now). The exit that follows ends
    /// the kill, through [`Self::on_killed`].
    fn kill_step_live(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        i: usize,
        kill: Kill,
    ) {
        let now = ctx.now;
        if kill.hook_until.is_some() {
            let exit_at = kill.exit_at.max(now.after(MINIMUM_GRACE));
            return self.sigterm_live(ctx, slot, i, exit_at);
        }
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        if let Some(k) = rt.kills[i].as_mut() {
            k.killed = true;
        }
        self.signal_live(ctx, slot, i, super::runtime::Signal::Kill);
    }

    /// SIGTERM now; SIGKILL at `exit_at` unless the container exits first.
    fn sigterm_live(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        i: usize,
        exit_at: SimTime,
    ) {
        let now = ctx.now;
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        if let Some(k) = rt.kills[i].as_mut() {
            k.hook_until = None;
            k.exit_at = exit_at;
            k.term_at = now;
        }
        self.signal_live(ctx, slot, i, super::runtime::Signal::Term);
        self.kill_timer(ctx, slot, i, exit_at.since(now));
    }

    /// A live preStop hook ended (`ok` or not). A failure is recorded
    /// whenever it comes, as upstream's hook goroutine does, also past the
    /// grace period (an exec hook still running dies with its container),
    /// and without the hook's output (upstream keeps it out of the event
    /// lest it leak secrets). Ended before its time ran out: SIGTERM, with
    /// what the hook left of the grace period.
    pub(super) fn pre_stop_done(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        i: usize,
        gen: u32,
        ok: bool,
    ) {
        let now = ctx.now;
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let key = rt.key.clone();
        if !ok {
            self.event(
                ctx,
                &key,
                "Warning",
                "FailedPreStopHook",
                "PreStopHook failed",
            );
        }
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let Some(kill) = rt.kills[i].clone().filter(|k| k.hook_until.is_some()) else {
            return;
        };
        if rt.kill_gen[i] != gen {
            return;
        }
        let exit_at = now.after(after_hook(kill.began, now, kill.grace));
        self.sigterm_live(ctx, slot, i, exit_at);
    }

    /// The killed container has exited: SIGKILLed (137) or stopped (0) as
    /// planned, or, live, with the code its process gave (`exit`).
    pub(super) fn on_killed(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        i: usize,
        kill: Kill,
        exit: Option<i32>,
    ) {
        let now = ctx.now;
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        rt.kills[i] = None;
        // The kill is over: its pending step is void (live, the exit comes
        // before the SIGKILL deadline's timer, which must not then read as
        // a sidecar's restart).
        rt.kill_gen[i] += 1;
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let n = spec.containers.len();
        if !kill.killed && kill.hook_until.is_none() && kill.term_at <= now {
            // It stopped on SIGTERM, by itself: the runtime's stop step.
            let key = rt.key.clone();
            let name = Self::container_spec(&spec, i).name.clone();
            self.trace_step(ctx, &key, StepKind::Stop, &name, kill.term_at);
        }
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let (exit_code, reason) = match exit {
            Some(0) => (0, "Completed"),
            Some(code) => (code, "Error"),
            None if kill.killed => (137, "Error"),
            None => (0, "Completed"),
        };
        let st = if i < n {
            &mut rt.status.container_statuses[i]
        } else {
            &mut rt.status.init_container_statuses[i - n]
        };
        let started = match st.state {
            ContainerState::Running { started } => started,
            _ => now,
        };
        let done = ContainerState::Terminated {
            exit_code,
            reason,
            started,
            finished: now,
        };
        st.state = done.clone();
        st.ready = false;
        st.started = false;
        rt.started[i] = None;
        if rt.stage == Stage::Terminating || kill.why == KillReason::PodDeletion {
            if rt.kills.iter().all(Option::is_none) {
                // Every app container is down: the pod worker moves on.
                self.step_after(ctx, slot, SimDuration::ZERO);
            }
            return self.post_status(ctx, slot);
        }
        // A liveness kill: `shouldRestartOnFailure` for app containers, and
        // a sidecar always restarts.
        if i < n && spec.restart_policy == RestartPolicy::Never {
            self.refresh_pod_phase(ctx, slot);
            return self.post_status(ctx, slot);
        }
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let delay = restart_delay(&mut rt.backoff[i], now);
        let name = Self::container_spec(&spec, i).name.clone();
        let st = if i < n {
            &mut rt.status.container_statuses[i]
        } else {
            &mut rt.status.init_container_statuses[i - n]
        };
        if !delay.is_zero() {
            st.state = ContainerState::Waiting {
                reason: "CrashLoopBackOff",
                message: format!(
                    "back-off {} restarting failed container={} pod={}",
                    delay, name, rt.key.name
                ),
            };
            st.last_state = Some(done);
        }
        if i < n {
            rt.restart_at[i] = Some(now.after(delay));
            self.refresh_pod_phase(ctx, slot);
            self.post_status(ctx, slot);
            return self.schedule_restarts(ctx, slot);
        }
        self.refresh_pod_phase(ctx, slot);
        self.post_status(ctx, slot);
        // The sidecar is created again after its back-off and runs after
        // the start latency (live: once the runtime has started it).
        let d = match self.live() {
            Some(_) => delay,
            None => delay + self.cfg.container_start.sample(ctx.rng),
        };
        self.kill_timer(ctx, slot, i, d);
    }

    /// A sidecar that failed liveness comes back: the next attempt runs,
    /// with its probes from the start.
    fn restart_sidecar(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32, i: usize) {
        let now = ctx.now;
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        if rt.stage == Stage::Terminating || rt.started[i].is_some() {
            return;
        }
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let n = spec.containers.len();
        let c = &spec.init_containers[i - n];
        let st = &mut rt.status.init_container_statuses[i - n];
        let last = std::mem::replace(&mut st.state, ContainerState::Running { started: now });
        if matches!(last, ContainerState::Terminated { .. }) {
            st.last_state = Some(last);
        }
        rt.restarts[i] += 1;
        st.restart_count = rt.restarts[i];
        st.started = c.startup.is_none();
        st.ready = c.readiness.is_none() && c.startup.is_none();
        let key = rt.key.clone();
        let name = c.name.clone();
        if self.live().is_some() {
            self.start_live(ctx, slot, &[i], false);
        }
        self.start_probes(ctx, slot, i, now);
        self.trace(ctx, "SidecarStarted", &key, &name);
        self.refresh_pod_phase(ctx, slot);
        self.post_status(ctx, slot);
    }

    /// App containers waiting out their back-off: the pod worker syncs
    /// again when the first of them is due.
    pub(super) fn schedule_restarts(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let now = ctx.now;
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let Some(next) = rt.restart_at.iter().flatten().min().copied() else {
            return;
        };
        // After the back-off the container is created and started again,
        // which takes the same start latency as the first time.
        rt.stage = Stage::StartApps;
        self.step_after(ctx, slot, next.since(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: u64) -> SimDuration {
        SimDuration::from_secs(x)
    }

    #[test]
    fn a_hook_inside_the_grace_period_delays_sigterm_and_keeps_the_deadline() {
        // 5 s sleep in 30 s: SIGTERM at 5, 25 s left; the app needs 3 s.
        let k = plan(
            SimTime::ZERO,
            s(30),
            Some(&PreStopModel::Sleep(s(5))),
            s(3),
            KillReason::PodDeletion,
        );
        assert_eq!(
            (k.hook_until, k.exit_at, k.killed),
            (
                Some(SimTime::ZERO.after(s(5))),
                SimTime::ZERO.after(s(8)),
                false
            )
        );
        // An app that needs 40 s is SIGKILLed at 5 + 25 = 30 s.
        let k = plan(
            SimTime::ZERO,
            s(30),
            Some(&PreStopModel::Sleep(s(5))),
            s(40),
            KillReason::PodDeletion,
        );
        assert_eq!((k.exit_at, k.killed), (SimTime::ZERO.after(s(30)), true));
    }

    #[test]
    fn a_hook_that_overruns_leaves_the_two_second_minimum() {
        // 60 s hook in 10 s: abandoned at 10, SIGTERM then, SIGKILL at 12;
        // the exec session dies with the container: FailedPreStopHook at 12.
        let hook = PreStopModel::Run {
            duration: s(60),
            fails: false,
        };
        let k = plan(
            SimTime::ZERO,
            s(10),
            Some(&hook),
            s(5),
            KillReason::PodDeletion,
        );
        let at = |x| SimTime::ZERO.after(s(x));
        assert_eq!(
            (k.hook_until, k.exit_at, k.killed, k.hook_fails_at),
            (Some(at(10)), at(12), true, Some(at(12)))
        );
        // The wait is truncated to whole seconds: a 4.5 s hook leaves 26 s.
        let hook = PreStopModel::Run {
            duration: SimDuration::from_millis(4_500),
            fails: true,
        };
        let k = plan(
            SimTime::ZERO,
            s(30),
            Some(&hook),
            s(100),
            KillReason::PodDeletion,
        );
        assert_eq!(
            k.exit_at,
            SimTime::ZERO.after(SimDuration::from_millis(30_500))
        );
        assert_eq!(
            k.hook_fails_at,
            Some(SimTime::ZERO.after(SimDuration::from_millis(4_500)))
        );
    }
}
