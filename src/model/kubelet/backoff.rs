//! The kubelet's crash-loop back-off (upstream `flowcontrol.Backoff` as
//! kuberuntime's `doBackOff` uses it): 10 s initial, doubling, at most
//! `MaxContainerBackOff` = 300 s, no jitter; forgotten once a container ran
//! for more than twice the maximum since its last restart.

use crate::sim::{SimDuration, SimTime};

/// `containerBackOffPeriod`: the first wait.
const INITIAL: SimDuration = SimDuration::from_secs(10);
/// `MaxContainerBackOff`.
const MAX: SimDuration = SimDuration::from_secs(300);

/// One container's back-off entry (keyed upstream by pod and container).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BackOffEntry {
    /// The wait a restart after the next exit takes.
    backoff: SimDuration,
    /// When the last restart was let through (`Next`'s `lastUpdate`).
    last_update: SimTime,
}

/// `hasExpired`: stable if it ran for more than 2 × the maximum (10 min).
fn expired(entry: &BackOffEntry, finished: SimTime) -> bool {
    finished.since(entry.last_update) > MAX + MAX
}

/// The wait before restarting a container that exited at `finished`:
/// `IsInBackOffSince(finished)` holds for `backoff` after the exit; the
/// restart then calls `Next`, doubling the entry (or starting a new one at
/// 10 s when there was none or it expired). Returns the wait and records
/// the restart at `finished + wait`.
pub(super) fn restart_delay(entry: &mut Option<BackOffEntry>, finished: SimTime) -> SimDuration {
    let live = entry.filter(|e| !expired(e, finished));
    let wait = live.map_or(SimDuration::ZERO, |e| e.backoff);
    let backoff = live.map_or(INITIAL, |e| (e.backoff + e.backoff).min(MAX));
    *entry = Some(BackOffEntry {
        backoff,
        last_update: finished.after(wait),
    });
    wait
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SimTime {
        SimTime::ZERO.after(SimDuration::from_secs(s))
    }

    #[test]
    fn waits_double_from_10s_to_the_5m_cap() {
        // Runs of 5 s: exits at 5, then 5 s after each restart.
        let mut e = None;
        let mut t = 5;
        let mut waits = Vec::new();
        for _ in 0..9 {
            let w = restart_delay(&mut e, at(t)).nanos() / 1_000_000_000;
            waits.push(w);
            t += w + 5;
        }
        assert_eq!(waits, [0, 10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn a_run_longer_than_10_minutes_resets_the_back_off() {
        let mut e = None;
        assert_eq!(restart_delay(&mut e, at(5)), SimDuration::ZERO); // restart at 5
        assert_eq!(restart_delay(&mut e, at(10)), INITIAL); // restart at 20
                                                            // Ran 20 s → 620 s: 600 s since the restart is not more than 600 s.
        assert_eq!(restart_delay(&mut e, at(620)), SimDuration::from_secs(20)); // at 640
                                                                                // Ran 640 s → 1241 s: 601 s > 600 s, forgotten: restart at once.
        assert_eq!(restart_delay(&mut e, at(1241)), SimDuration::ZERO);
        // And the next crash waits the initial 10 s again.
        assert_eq!(restart_delay(&mut e, at(1242)), INITIAL);
    }
}
