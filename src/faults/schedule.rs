//! Drawing a fault schedule from the run's seed.
//!
//! Each kind draws on its own stream, derived from `(seed, "faults/<kind>")`
//! the way every component's stream is, so adding a kind to a profile never
//! changes what another kind draws. Per arrival a kind draws, always in this
//! order, the exponential gap since its previous arrival, a duration
//! uniform in `[min, max]` and a target pick: the draws depend on nothing
//! but the seed and the kind's own settings.
//!
//! The candidates of all kinds are then merged by start time (ties by kind,
//! then by arrival) and accepted one by one against what is already active:
//! the `maxConcurrent` cap, a target that is already down, etcd quorum, and
//! the two exclusions the timeline's actions force: a partition never
//! overlaps another (`heal` heals every partition) and the etcd leader kill
//! overlaps no other etcd fault (its restart restarts every crashed member).
//! A refused candidate is skipped, not moved, so the rest stay put.

use std::fmt;

use super::network_workload::{self as nw, FaultDetail};
use super::profile::{FaultKind, FaultProfile, KindProfile};
use crate::scenario::{Action, EtcdTarget, Step};
use crate::sim::rng::RngStream;
use crate::sim::{SimDuration, SimTime};

/// Draws are whole milliseconds: a schedule a person reads and a repro
/// file writes back exactly.
const TICK_NS: u64 = 1_000_000;

/// One fault that will happen: `target` is down (or cut off) over
/// `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrawnFault {
    pub kind: FaultKind,
    /// A node, `etcd-N`, a component, or `leader`.
    pub target: String,
    pub start: SimTime,
    pub end: SimTime,
    /// What the network and workload kinds (and a partition with options)
    /// carry beyond the target ([`nw::FaultDetail`]).
    pub detail: FaultDetail,
}

impl DrawnFault {
    pub fn duration(&self) -> SimDuration {
        self.end.since(self.start)
    }

    /// The timeline steps that inject and heal it, each with its note.
    pub fn steps(&self) -> [Step; 2] {
        if let Some((inject, heal)) = nw::actions(self) {
            return self.steps_of(inject, heal);
        }
        let (inject, heal) = match self.kind {
            FaultKind::NodeCrash => (
                Action::CrashNode(self.target.clone()),
                Action::RestartNode(self.target.clone()),
            ),
            FaultKind::EtcdCrash => {
                let i = etcd_index(&self.target);
                (
                    Action::CrashEtcd(EtcdTarget::Member(i)),
                    Action::RestartEtcd(Some(i)),
                )
            }
            FaultKind::EtcdLeaderKill => (
                Action::CrashEtcd(EtcdTarget::Leader),
                Action::RestartEtcd(None),
            ),
            FaultKind::Partition => (Action::Partition(vec![self.target.clone()]), Action::Heal),
            FaultKind::ComponentCrash => (
                Action::CrashComponent(self.target.clone()),
                Action::RestartComponent(self.target.clone()),
            ),
            FaultKind::KubeletCrash => (
                Action::CrashKubelet(self.target.clone()),
                Action::RestartKubelet(self.target.clone()),
            ),
            FaultKind::KubeletHang => (
                Action::HangKubelet(self.target.clone()),
                Action::ResumeKubelet(self.target.clone()),
            ),
            FaultKind::EtcdSlowDisk { fsync } => {
                let member = etcd_index(&self.target);
                (Action::SlowDisk { member, fsync }, Action::HealDisk(member))
            }
            FaultKind::LinkDegrade | FaultKind::ContainerCrash | FaultKind::ImagePullFailure => {
                unreachable!("{self} carries its detail")
            }
        };
        self.steps_of(inject, Some(heal))
    }

    /// The inject step and the heal step (a note alone when `heal` is
    /// `None`: the fault ends by itself, and its end only frees the target).
    fn steps_of(&self, inject: Action, heal: Option<Action>) -> [Step; 2] {
        let step = |at: SimTime, note: String, action: Option<Action>| Step {
            at,
            note: Some(note),
            action,
            line: 0,
        };
        [
            step(self.start, format!("fault: {self}"), Some(inject)),
            step(
                self.end,
                format!("fault healed: {} {}", self.kind.name(), self.target),
                heal,
            ),
        ]
    }
}

impl fmt::Display for DrawnFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} for {}",
            self.kind.name(),
            self.target,
            self.duration()
        )
    }
}

fn etcd_index(name: &str) -> u32 {
    name.strip_prefix("etcd-")
        .and_then(|n| n.parse().ok())
        .expect("the profile resolved etcd member names")
}

/// A drawn schedule: the faults accepted, in start order, and how many
/// candidates were refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    pub faults: Vec<DrawnFault>,
    pub skipped: u32,
}

impl Schedule {
    /// Every fault's inject and heal step, by time; at one instant heals
    /// come before injections, so a cap freed at `t` is free for a start at
    /// `t`, and otherwise in draw order.
    pub fn steps(&self) -> Vec<Step> {
        let mut keyed: Vec<(SimTime, u8, usize, Step)> = Vec::new();
        for (i, f) in self.faults.iter().enumerate() {
            let [inject, heal] = f.steps();
            keyed.push((f.start, 1, i, inject));
            keyed.push((f.end, 0, i, heal));
        }
        keyed.sort_by_key(|(at, order, i, _)| (*at, *order, *i));
        keyed.into_iter().map(|(.., s)| s).collect()
    }
}

/// One arrival of one kind, before acceptance.
struct Candidate {
    start: SimTime,
    kind_index: usize,
    arrival: usize,
    duration: SimDuration,
    pick: u64,
}

/// Draws the schedule of `profile` for the run seeded `seed`.
pub fn draw(profile: &FaultProfile, seed: u64) -> Schedule {
    let mut candidates: Vec<Candidate> = profile
        .kinds
        .iter()
        .enumerate()
        .flat_map(|(k, kind)| arrivals(kind, profile, seed, k))
        .collect();
    candidates.sort_by_key(|c| (c.start, c.kind_index, c.arrival));
    let mut schedule = Schedule::default();
    let mut active: Vec<DrawnFault> = Vec::new();
    for c in candidates {
        active.retain(|f| f.end > c.start);
        let kind = &profile.kinds[c.kind_index];
        let end = c.start.after(c.duration).min(profile.until);
        let target = if nw::owns(kind.kind) {
            nw::accept(kind, &active, c.pick)
        } else {
            accept(kind, profile, &active, c.pick).and_then(|t| {
                let detail = match kind.kind {
                    FaultKind::Partition => nw::partition_detail(kind, &t)?,
                    _ => FaultDetail::None,
                };
                Some((t, detail))
            })
        };
        match target {
            Some((target, detail))
                if (active.len() as u32) < profile.max_concurrent && end > c.start =>
            {
                let fault = DrawnFault {
                    kind: kind.kind,
                    target,
                    start: c.start,
                    end,
                    detail,
                };
                active.push(fault.clone());
                schedule.faults.push(fault);
            }
            _ => schedule.skipped += 1,
        }
    }
    schedule
}

/// A kind's arrivals in `[from, until)` on its own stream.
fn arrivals(
    kind: &KindProfile,
    profile: &FaultProfile,
    seed: u64,
    kind_index: usize,
) -> Vec<Candidate> {
    let mut rng = RngStream::derive(seed, &format!("faults/{}", kind.kind.name()));
    let mut out = Vec::new();
    let mut at = profile.from;
    loop {
        let gap = exponential_ticks(&mut rng, kind.mean_time_between);
        let duration = rng.range_inclusive(ticks(kind.min), ticks(kind.max).max(ticks(kind.min)));
        let pick = rng.next_u64();
        at = SimTime(at.nanos().saturating_add(gap.saturating_mul(TICK_NS)));
        if at >= profile.until {
            return out;
        }
        out.push(Candidate {
            start: at,
            kind_index,
            arrival: out.len(),
            duration: SimDuration::from_nanos(duration.max(1) * TICK_NS),
            pick,
        });
    }
}

/// Whole ticks in `d`, rounded down.
fn ticks(d: SimDuration) -> u64 {
    d.nanos() / TICK_NS
}

/// An exponential gap with mean `mean`, in whole ticks (at least one, so
/// arrivals strictly advance): `-mean · ln(1 - u)` with `u` uniform in
/// [0, 1), through `libm` so every platform rounds alike.
fn exponential_ticks(rng: &mut RngStream, mean: SimDuration) -> u64 {
    let u = rng.unit();
    let gap = -(ticks(mean) as f64) * libm::log(1.0 - u);
    (libm::round(gap) as u64).max(1)
}

/// The target a candidate of `kind` takes given what is active, or `None`
/// when it must be skipped.
fn accept(
    kind: &KindProfile,
    profile: &FaultProfile,
    active: &[DrawnFault],
    pick: u64,
) -> Option<String> {
    let etcd_down = active
        .iter()
        .filter(|f| matches!(f.kind, FaultKind::EtcdCrash | FaultKind::EtcdLeaderKill))
        .count() as u32;
    // A group of m keeps quorum (m/2 + 1) with up to (m - 1)/2 down: one
    // more crash is fine while fewer than that are down.
    let quorum_ok =
        profile.allow_quorum_loss || etcd_down < profile.etcd_members.saturating_sub(1) / 2;
    let busy = |k: FaultKind| active.iter().filter(move |f| f.kind == k);
    match kind.kind {
        FaultKind::NodeCrash | FaultKind::EtcdCrash => {
            if kind.kind == FaultKind::EtcdCrash
                && (!quorum_ok || busy(FaultKind::EtcdLeaderKill).next().is_some())
            {
                return None;
            }
            let free: Vec<&String> = kind
                .targets
                .iter()
                .filter(|t| !busy(kind.kind).any(|f| &f.target == *t))
                .filter(|t| !super::process_kinds::node_busy(active, t))
                .collect();
            pick_one(&free, pick).cloned()
        }
        FaultKind::ComponentCrash
        | FaultKind::KubeletCrash
        | FaultKind::KubeletHang
        | FaultKind::EtcdSlowDisk { .. } => {
            let free = super::process_kinds::free_targets(kind, active);
            pick_one(&free, pick).cloned()
        }
        FaultKind::EtcdLeaderKill => (quorum_ok && etcd_down == 0).then(|| "leader".to_string()),
        FaultKind::Partition => {
            if busy(FaultKind::Partition).next().is_some() {
                return None;
            }
            let all: Vec<&String> = kind.targets.iter().collect();
            pick_one(&all, pick).cloned()
        }
        // Accepted in `network_workload`.
        FaultKind::LinkDegrade | FaultKind::ContainerCrash | FaultKind::ImagePullFailure => None,
    }
}

/// `items[⌊pick · len / 2⁶⁴⌋]`: uniform over the items for a uniform pick.
pub(super) fn pick_one<'a, T>(items: &[&'a T], pick: u64) -> Option<&'a T> {
    if items.is_empty() {
        return None;
    }
    let i = ((pick as u128 * items.len() as u128) >> 64) as usize;
    Some(items[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(kinds: Vec<KindProfile>, cap: u32, members: u32, quorum_loss: bool) -> FaultProfile {
        FaultProfile {
            from: SimTime(60_000_000_000),
            until: SimTime(420_000_000_000),
            max_concurrent: cap,
            allow_quorum_loss: quorum_loss,
            etcd_members: members,
            kinds,
        }
    }

    fn etcd_crash(members: u32) -> KindProfile {
        KindProfile {
            kind: FaultKind::EtcdCrash,
            mean_time_between: SimDuration::from_secs(5),
            min: SimDuration::from_secs(30),
            max: SimDuration::from_secs(60),
            targets: (0..members).map(|i| format!("etcd-{i}")).collect(),
            extra: Default::default(),
        }
    }

    /// Most etcd members down at one instant over the schedule.
    fn most_etcd_down(s: &Schedule) -> usize {
        s.faults
            .iter()
            .map(|f| {
                s.faults
                    .iter()
                    .filter(|g| g.start <= f.start && f.start < g.end)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn exponential_gaps_have_the_mean_asked_for() {
        let mut rng = RngStream::derive(7, "t");
        let mean = SimDuration::from_secs(60);
        let n = 20_000;
        let total: u64 = (0..n).map(|_| exponential_ticks(&mut rng, mean)).sum();
        let avg_s = total as f64 / n as f64 / 1000.0;
        // The standard error of the mean of 20,000 exponentials with mean
        // 60 s is 60/√20000 = 0.42 s; 2 s is almost five of them.
        assert!((avg_s - 60.0).abs() < 2.0, "average gap {avg_s} s");
    }

    #[test]
    fn etcd_crashes_keep_quorum_unless_allowed() {
        // A crash every 5 s on average, each 30–60 s: without the quorum
        // rule two or three of three members would be down at once.
        for seed in 1..=20 {
            let keep = draw(&profile(vec![etcd_crash(3)], 10, 3, false), seed);
            // 3 members tolerate (3 - 1)/2 = 1 down.
            assert_eq!(most_etcd_down(&keep), 1, "seed {seed}: {keep:?}");
            let five = draw(&profile(vec![etcd_crash(5)], 10, 5, false), seed);
            // 5 members tolerate 2 down.
            assert_eq!(most_etcd_down(&five), 2, "seed {seed}");
            let lose = draw(&profile(vec![etcd_crash(3)], 10, 3, true), seed);
            assert_eq!(
                most_etcd_down(&lose),
                3,
                "seed {seed}: allowQuorumLoss lets all three go"
            );
        }
    }

    #[test]
    fn durations_stay_in_range_unless_clipped_at_until() {
        let p = profile(vec![etcd_crash(5)], 10, 5, true);
        for seed in 1..=20 {
            for f in draw(&p, seed).faults {
                let d = f.duration();
                let clipped = f.end == p.until;
                assert!(d <= SimDuration::from_secs(60), "{f}");
                assert!(clipped || d >= SimDuration::from_secs(30), "{f}");
                // Whole milliseconds, so the repro writes them exactly.
                assert_eq!(f.start.nanos() % TICK_NS, 0);
                assert_eq!(f.end.nanos() % TICK_NS, 0);
            }
        }
    }

    #[test]
    fn picks_are_in_bounds_and_reach_both_ends() {
        let items = ["a", "b", "c"];
        let refs: Vec<&&str> = items.iter().collect();
        assert_eq!(pick_one(&refs, 0), Some(&"a"));
        assert_eq!(pick_one(&refs, u64::MAX), Some(&"c"));
        // 2⁶⁴/3 ≈ 6.1e18 is where the second third starts.
        assert_eq!(pick_one(&refs, 6_200_000_000_000_000_000), Some(&"b"));
        assert_eq!(pick_one::<&str>(&[], 5), None);
    }
}
