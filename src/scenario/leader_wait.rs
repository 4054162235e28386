//! `crashEtcd: leader` while an election is under way. No member leads at
//! that instant (the old leader crashed or stepped down and the others are
//! still campaigning), so there is no leader to crash yet. The driver waits
//! for the election to finish, checking every millisecond of virtual time,
//! and crashes whichever member wins; if none wins within ten election
//! timeouts (a quorum is down, so none can), the action fails and says why.
//! Either way the action's `ActionResult` says how long it waited. A
//! `restartEtcd` that comes first ends the wait (nothing crashed): the
//! restart is the fault's heal, and a crash after its heal would never be
//! healed.

use crate::sim::{SimDuration, SimTime};

/// How often the driver looks for a leader while it waits.
pub const POLL: SimDuration = SimDuration::from_millis(1);

/// How many election timeouts the driver waits before giving up: etcd's
/// randomised timeouts make split votes rare, and several in a row rarer
/// still, so ten timeouts without a leader means no quorum can vote.
pub const TIMEOUTS: u64 = 10;

/// A `crashEtcd: leader` waiting for an election to finish.
#[derive(Clone, Debug)]
pub struct LeaderWait {
    /// Index into the timeline.
    pub step: Option<u32>,
    pub what: String,
    /// When the action fired and found no leader.
    pub since: SimTime,
    /// When the driver gives up.
    pub deadline: SimTime,
    /// Crashed, given up or overtaken by a restart: later polls do nothing.
    pub done: bool,
}

impl LeaderWait {
    /// A wait from `now`, bounded by ten of the cluster's election timeouts.
    pub fn new(step: Option<u32>, what: &str, now: SimTime, election: SimDuration) -> LeaderWait {
        LeaderWait {
            step,
            what: what.to_string(),
            since: now,
            deadline: now.after(election.saturating_mul(TIMEOUTS)),
            done: false,
        }
    }

    /// The result once the new leader, `member`, has been crashed.
    pub fn crashed(&self, now: SimTime, member: &str) -> String {
        format!(
            "ok: waited {} for the election to finish, then crashed the new leader {member}",
            millis(now.since(self.since))
        )
    }

    /// The result when no leader emerged before the deadline.
    pub fn gave_up(&self, now: SimTime) -> String {
        format!(
            "failed: waited {} for the election to finish and no member was elected \
             (a quorum of members must be up to elect a leader); nothing crashed",
            millis(now.since(self.since))
        )
    }
}

impl LeaderWait {
    /// The result when a `restartEtcd` (the fault's heal) came before any
    /// member was elected.
    pub fn overtaken(&self, now: SimTime, restart_line: u32) -> String {
        format!(
            "failed: waited {} for the election to finish, then the restartEtcd at line \
             {restart_line} came first; nothing crashed",
            millis(now.since(self.since))
        )
    }
}

/// `1234 ms`, or `1234.5 ms` when the wait is not whole milliseconds.
fn millis(d: SimDuration) -> String {
    let ns = d.nanos();
    if ns.is_multiple_of(1_000_000) {
        format!("{} ms", ns / 1_000_000)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_ten_election_timeouts_and_the_result_says_how_long() {
        let w = LeaderWait::new(
            Some(3),
            "crash the etcd leader",
            SimTime(5_000_000_000),
            SimDuration::from_secs(1),
        );
        // 5 s + 10 × 1 s.
        assert_eq!(w.deadline, SimTime(15_000_000_000));
        // Found at 5.734 s: 734 ms after the action fired.
        assert_eq!(
            w.crashed(SimTime(5_734_000_000), "etcd-1"),
            "ok: waited 734 ms for the election to finish, then crashed the new leader etcd-1"
        );
        assert!(w
            .gave_up(SimTime(15_000_000_000))
            .starts_with("failed: waited 10000 ms"));
    }
}
