//! `kubesim fuzz`: one scenario over many seeds, every run checked.
//!
//! Each seed draws its own faults (the `faults:` section) and every other
//! random choice, and runs at the cheapest trace level with the invariant
//! checkers on. Runs are independent and deterministic, so the worker
//! threads only decide *when* a seed runs, never *what* it finds: outcomes
//! are reported in seed order, and `--jobs 1` and `--jobs N` print the
//! same table. Seeds are handed out in order from one atomic counter (not
//! split into ranges up front), so a campaign stopped by its time limit
//! has run a prefix of the range, give or take the seeds in flight.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::observe::Violation;
use crate::scenario::run::{run, RunOptions};
use crate::scenario::Scenario;
use crate::sim::{TraceLevel, TraceSink};

/// An inclusive range of seeds: `1..10000` (as the issue writes it, both
/// ends included), `1..=10000`, or one seed `7`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    pub first: u64,
    pub last: u64,
}

/// The most seeds one campaign takes: outcomes are kept in memory
/// (about 100 bytes a seed without violations).
pub const MAX_SEEDS: u64 = 10_000_000;

impl std::str::FromStr for SeedRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let num = |t: &str| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| format!("`{t}` is not a seed (a whole number from 0)"))
        };
        let (first, last) = match s.split_once("..") {
            Some((a, b)) => (num(a)?, num(b.strip_prefix('=').unwrap_or(b))?),
            None => (num(s)?, num(s)?),
        };
        if last < first {
            return Err(format!("`{s}`: the range ends before it starts"));
        }
        if last - first >= MAX_SEEDS {
            return Err(format!("`{s}`: at most {MAX_SEEDS} seeds per campaign"));
        }
        Ok(SeedRange { first, last })
    }
}

impl SeedRange {
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn nth(&self, i: u64) -> u64 {
        self.first + i
    }
}

impl std::fmt::Display for SeedRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}..{}", self.first, self.last)
    }
}

/// What one seed's checked run found.
#[derive(Clone, Debug)]
pub struct SeedOutcome {
    pub seed: u64,
    /// The run digest (trace-level independent): what a replay must match.
    pub digest: String,
    pub violations: Vec<Violation>,
    pub events: u64,
    /// Faults the seed drew.
    pub faults: usize,
}

impl SeedOutcome {
    pub fn failed(&self) -> bool {
        !self.violations.is_empty()
    }
}

/// Runs `seed` of `scenario` as the fuzzer does: trace level `faults`, no
/// sink, checkers on.
pub fn run_seed(scenario: &Scenario, seed: u64) -> io::Result<SeedOutcome> {
    let opts = RunOptions {
        seed: Some(seed),
        trace_level: TraceLevel::Faults,
        sink: TraceSink::Discard,
        checks: true,
        ..RunOptions::default()
    };
    let finished = run(scenario, opts, |_| {})?;
    let faults = scenario
        .faults
        .as_ref()
        .map_or(0, |p| super::draw(p, seed).faults.len());
    Ok(SeedOutcome {
        seed,
        digest: finished.summary.digest.clone(),
        events: finished.summary.events,
        faults,
        violations: finished.violations,
    })
}

/// A finished (or time-limited) campaign.
pub struct Campaign {
    /// Outcomes of the seeds run, in seed order: a prefix of the range.
    pub outcomes: Vec<SeedOutcome>,
    /// The time limit stopped it before the range was done.
    pub stopped: bool,
    pub jobs: usize,
}

/// Runs every seed of `seeds` on `jobs` threads; `on_done` sees each
/// outcome as it finishes (in finishing order: the progress bar), and
/// no seed starts once `stop` says so (the CLI's `--time-limit`: the
/// wall clock stays out of the library).
pub fn fuzz(
    scenario: &Scenario,
    seeds: SeedRange,
    jobs: usize,
    stop: &(dyn Fn() -> bool + Sync),
    on_done: &(dyn Fn(&SeedOutcome) + Sync),
) -> io::Result<Campaign> {
    let n = seeds.len() as usize;
    let jobs = jobs.clamp(1, n);
    let next = AtomicUsize::new(0);
    let stopped = AtomicBool::new(false);
    let slots: Mutex<Vec<Option<io::Result<SeedOutcome>>>> =
        Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                if stop() {
                    stopped.store(true, Ordering::Relaxed);
                }
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let outcome = run_seed(scenario, seeds.nth(i as u64));
                if let Ok(o) = &outcome {
                    on_done(o);
                }
                slots.lock().expect("no worker panics holding it")[i] = Some(outcome);
            });
        }
    });
    let slots = slots.into_inner().expect("workers are done");
    let mut outcomes = Vec::with_capacity(n);
    for slot in slots {
        match slot {
            Some(Ok(o)) => outcomes.push(o),
            Some(Err(e)) => return Err(e),
            // The first seed that never ran ends the prefix.
            None => break,
        }
    }
    Ok(Campaign {
        stopped: outcomes.len() < n,
        outcomes,
        jobs,
    })
}

/// Seeds violated per checker, in the order checkers first failed.
pub struct CheckerTally {
    pub checker: &'static str,
    pub seeds: u64,
    pub first_seed: u64,
    pub first: String,
}

impl Campaign {
    pub fn failing(&self) -> impl Iterator<Item = &SeedOutcome> {
        self.outcomes.iter().filter(|o| o.failed())
    }

    /// For each checker that failed: how many seeds, and the first.
    pub fn tally(&self) -> Vec<CheckerTally> {
        let mut out: Vec<CheckerTally> = Vec::new();
        for o in self.failing() {
            let mut seen: Vec<&'static str> = Vec::new();
            for v in &o.violations {
                if seen.contains(&v.checker) {
                    continue;
                }
                seen.push(v.checker);
                match out.iter_mut().find(|t| t.checker == v.checker) {
                    Some(t) => t.seeds += 1,
                    None => out.push(CheckerTally {
                        checker: v.checker,
                        seeds: 1,
                        first_seed: o.seed,
                        first: v.to_string(),
                    }),
                }
            }
        }
        out
    }

    /// Seeds per minute of `wall` time.
    pub fn seeds_per_minute(&self, wall: Duration) -> f64 {
        self.outcomes.len() as f64 * 60.0 / wall.as_secs_f64().max(1e-9)
    }

    /// The table `kubesim fuzz` prints: every checker, failing or not.
    /// `wall` is how long the campaign took, for the speed line.
    pub fn table(&self, checkers: &[&'static str], wall: Duration) -> String {
        let tally = self.tally();
        let events: u64 = self.outcomes.iter().map(|o| o.events).sum();
        let faults: usize = self.outcomes.iter().map(|o| o.faults).sum();
        let mut s = String::new();
        let width = checkers.iter().map(|c| c.len()).max().unwrap_or(7).max(7);
        s += &format!("{:width$}  seeds violated  first failing seed\n", "checker");
        for name in checkers {
            match tally.iter().find(|t| t.checker == *name) {
                Some(t) => {
                    s += &format!("{name:width$}  {:>14}  {}\n", t.seeds, t.first_seed);
                }
                None => s += &format!("{name:width$}  {:>14}  -\n", 0),
            }
        }
        // A checker not in the list (a replay that diverged) still shows.
        for t in tally.iter().filter(|t| !checkers.contains(&t.checker)) {
            s += &format!("{:width$}  {:>14}  {}\n", t.checker, t.seeds, t.first_seed);
        }
        let failing = self.failing().count();
        s += &format!(
            "seeds    {} run, {} failing, {} faults drawn\nspeed    {:.0} seeds/min, {:.0} events/s on {} jobs, {:.1}s wall",
            self.outcomes.len(),
            failing,
            faults,
            self.seeds_per_minute(wall),
            events as f64 / wall.as_secs_f64().max(1e-9),
            self.jobs,
            wall.as_secs_f64()
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_parse_inclusive() {
        let r: SeedRange = "1..10000".parse().unwrap();
        // Both ends included: the issue's `--seeds 1..10000` is 10,000 seeds.
        assert_eq!((r.first, r.last, r.len()), (1, 10_000, 10_000));
        assert_eq!("3..=5".parse::<SeedRange>().unwrap().len(), 3);
        assert_eq!(
            "7".parse::<SeedRange>().unwrap(),
            SeedRange { first: 7, last: 7 }
        );
        assert!("5..3"
            .parse::<SeedRange>()
            .unwrap_err()
            .contains("ends before"));
        assert!("a..3".parse::<SeedRange>().unwrap_err().contains("`a`"));
        assert!("0..20000000".parse::<SeedRange>().is_err());
    }
}
