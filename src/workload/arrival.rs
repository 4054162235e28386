//! Arrival processes: when a generator's next object arrives.
//!
//! Every draw comes from the submitting component's own [`RngStream`] and
//! every logarithm and cosine goes through `libm`, so a seed gives the same
//! arrivals on every machine. Times are whole nanoseconds; gaps are rounded
//! once each, so a long run does not drift by accumulated float error.

use crate::sim::rng::RngStream;
use crate::sim::{SimDuration, SimTime};

/// One process, resolved from [`super::spec::ArrivalSpec`].
#[derive(Clone, Debug, PartialEq)]
pub enum ArrivalProcess {
    /// Every `1/rate` seconds, the first at the start.
    Constant { per_second: f64 },
    /// Exponential gaps of mean `1/rate`.
    Poisson { per_second: f64 },
    /// A non-homogeneous Poisson process, drawn by thinning (Lewis and
    /// Shedler): candidates at the peak rate, each kept with probability
    /// rate(t)/peak.
    Diurnal {
        mean_per_second: f64,
        /// Relative amplitude `a` in `mean·(1 + a·cos(…))`, in 0..1.
        amplitude: f64,
        peak_at: SimDuration,
        period: SimDuration,
    },
    /// `count` arrivals at `at`, spread evenly over `over` when given;
    /// sorted by `at`.
    Bursts(Vec<Burst>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Burst {
    pub at: SimTime,
    pub count: u64,
    pub over: SimDuration,
}

impl ArrivalProcess {
    /// The amplitude that makes the peak rate `ratio` times the trough's:
    /// (1 + a)/(1 − a) = ratio.
    pub fn amplitude_for(ratio: f64) -> f64 {
        (ratio - 1.0) / (ratio + 1.0)
    }

    /// The rate at `t`, per second (for charts and tests).
    pub fn rate_at(&self, t: SimTime) -> f64 {
        match self {
            ArrivalProcess::Constant { per_second } | ArrivalProcess::Poisson { per_second } => {
                *per_second
            }
            ArrivalProcess::Diurnal {
                mean_per_second,
                amplitude,
                peak_at,
                period,
            } => {
                let phase = (t.0 as f64 - peak_at.0 as f64) / period.0.max(1) as f64;
                mean_per_second * (1.0 + amplitude * libm::cos(std::f64::consts::TAU * phase))
            }
            ArrivalProcess::Bursts(_) => 0.0,
        }
    }
}

/// Where a generator is in its process.
#[derive(Clone, Debug)]
pub struct Arrivals {
    process: ArrivalProcess,
    start: SimTime,
    /// Arrivals made so far.
    made: u64,
    /// The last arrival (or the start, before the first).
    last: SimTime,
    /// Bursts: which burst, and how many of it were made.
    burst: (usize, u64),
}

impl Arrivals {
    pub fn new(process: ArrivalProcess, start: SimTime) -> Self {
        Arrivals {
            process,
            start,
            made: 0,
            last: start,
            burst: (0, 0),
        }
    }

    /// The next arrival, or `None` when the process has no more.
    pub fn next(&mut self, rng: &mut RngStream) -> Option<SimTime> {
        let t = match &self.process {
            ArrivalProcess::Constant { per_second } => {
                let offset = self.made as f64 / per_second * 1e9;
                Some(self.start.after(SimDuration(nanos(offset)?)))
            }
            ArrivalProcess::Poisson { per_second } => {
                Some(self.last.after(exponential_gap(rng, *per_second)?))
            }
            ArrivalProcess::Diurnal { .. } => self.next_thinned(rng),
            ArrivalProcess::Bursts(bursts) => loop {
                let (i, k) = self.burst;
                let b = bursts.get(i)?;
                let at = b.at.after(SimDuration(b.over.0 / b.count.max(1) * k));
                self.burst = if k + 1 >= b.count {
                    (i + 1, 0)
                } else {
                    (i, k + 1)
                };
                // A burst's arrival before the generator's start is not made.
                if at >= self.start {
                    break Some(at);
                }
            },
        }?;
        self.made += 1;
        self.last = t;
        Some(t)
    }

    fn next_thinned(&mut self, rng: &mut RngStream) -> Option<SimTime> {
        let ArrivalProcess::Diurnal {
            mean_per_second,
            amplitude,
            ..
        } = self.process
        else {
            unreachable!("only a diurnal process is thinned")
        };
        let peak = mean_per_second * (1.0 + amplitude);
        let mut t = self.last;
        // Each candidate is kept with probability at least (1−a)/(1+a) > 0,
        // so this ends; the bound keeps a pathological spec from spinning.
        for _ in 0..1_000_000 {
            t = t.after(exponential_gap(rng, peak)?);
            if rng.unit() * peak < self.process.rate_at(t) {
                return Some(t);
            }
        }
        None
    }
}

/// An exponential gap of rate `per_second`, in nanoseconds (`None` past
/// the end of representable time).
fn exponential_gap(rng: &mut RngStream, per_second: f64) -> Option<SimDuration> {
    let u = 1.0 - rng.unit(); // (0, 1]
    nanos(-libm::log(u) / per_second * 1e9).map(SimDuration)
}

fn nanos(x: f64) -> Option<u64> {
    (x.is_finite() && x >= 0.0 && x < u64::MAX as f64 / 2.0).then(|| x.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(p: ArrivalProcess, n: usize) -> Vec<SimTime> {
        let mut rng = RngStream::derive(5, "arrivals");
        let mut a = Arrivals::new(p, SimTime::ZERO);
        (0..n).map_while(|_| a.next(&mut rng)).collect()
    }

    #[test]
    fn constant_rate_is_evenly_spaced_from_the_start() {
        let t = times(ArrivalProcess::Constant { per_second: 4.0 }, 3);
        // 4/s: 0, 250 ms, 500 ms.
        assert_eq!(
            t,
            vec![SimTime(0), SimTime(250_000_000), SimTime(500_000_000)]
        );
    }

    #[test]
    fn poisson_rate_matches_its_mean_gap() {
        let t = times(ArrivalProcess::Poisson { per_second: 2.0 }, 20_000);
        let mean_gap = t.last().unwrap().0 as f64 / 1e9 / 20_000.0;
        // Mean gap 1/2 s; the standard error of 20,000 exponential gaps is
        // 0.5/√20000 ≈ 0.0035 s, so 0.02 s is over five of them.
        assert!((mean_gap - 0.5).abs() < 0.02, "{mean_gap}");
    }

    #[test]
    fn diurnal_peak_hour_sees_the_stated_ratio() {
        let day = SimDuration::from_secs(86_400);
        let p = ArrivalProcess::Diurnal {
            mean_per_second: 0.5,
            amplitude: ArrivalProcess::amplitude_for(3.0),
            peak_at: SimDuration::from_secs(14 * 3600),
            period: day,
        };
        let t = times(p, 43_200 * 2);
        let in_hour = |h: u64| {
            let (lo, hi) = (h * 3600 * 1_000_000_000, (h + 1) * 3600 * 1_000_000_000);
            t.iter()
                .filter(|x| x.0 >= lo && x.0 < hi && x.0 < day.0)
                .count() as f64
        };
        // Rate at 14:00 is 0.5·(1 + 0.5) = 0.75/s, at 02:00 0.25/s: over an
        // hour about 2700 and 900 arrivals (the hour's mean is a little
        // lower, by the curve's bend); their ratio is close to 3.
        let ratio = in_hour(13) / in_hour(1);
        assert!((2.6..3.3).contains(&ratio), "{ratio}");
    }

    #[test]
    fn bursts_come_at_their_instants_and_spread_over_their_window() {
        let p = ArrivalProcess::Bursts(vec![
            Burst {
                at: SimTime(10),
                count: 2,
                over: SimDuration::ZERO,
            },
            Burst {
                at: SimTime(100),
                count: 4,
                over: SimDuration(40),
            },
        ]);
        let t = times(p, 10);
        let ns: Vec<u64> = t.iter().map(|x| x.0).collect();
        assert_eq!(ns, vec![10, 10, 100, 110, 120, 130]);
    }

    #[test]
    fn a_seed_replays_the_same_arrivals() {
        let p = ArrivalProcess::Poisson { per_second: 3.0 };
        assert_eq!(times(p.clone(), 100), times(p, 100));
    }
}
