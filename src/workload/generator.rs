//! A generator: an arrival process, a template, and the distributions each
//! arrival's requests and run time are drawn from.

use super::arrival::{ArrivalProcess, Arrivals};
use super::template::{Draw, Template};
use crate::api::quantity::Quantity;
use crate::sim::dist::LatencyDist;
use crate::sim::rng::RngStream;
use crate::sim::{SimDuration, SimTime};

/// One `workload.generators[]` entry, resolved.
#[derive(Debug)]
pub struct Generator {
    pub name: String,
    pub template: Template,
    pub process: ArrivalProcess,
    pub start: SimTime,
    /// No arrival at or after this.
    pub stop: SimTime,
    pub count: u64,
    /// Millicores (the distributions' magnitudes are in the field's unit).
    pub cpu: Option<LatencyDist>,
    /// Bytes.
    pub memory: Option<LatencyDist>,
    pub run_for: Option<LatencyDist>,
}

impl Generator {
    /// The arrivals of a run from the start.
    pub fn arrivals(&self) -> Arrivals {
        Arrivals::new(self.process.clone(), self.start)
    }

    /// Whether an arrival at `t`, the `made`-th so far, is still wanted.
    pub fn wants(&self, t: SimTime, made: u64) -> bool {
        t < self.stop && made < self.count
    }

    /// The name of the `n`-th object (from 1).
    pub fn object_name(&self, n: u64) -> String {
        format!("{}-{n}", self.name)
    }

    /// What one arrival asks for, drawn from `rng` in a fixed order (cpu,
    /// memory, run time) so a seed replays it.
    pub fn draw(&self, rng: &mut RngStream) -> Draw {
        let mut d = Draw::default();
        if let Some(c) = &self.cpu {
            let milli = c.sample(rng).0.min(i64::MAX as u64) as i64;
            d.requests
                .insert("cpu".into(), Quantity::from_milli(milli).canonical(false));
        }
        if let Some(m) = &self.memory {
            let bytes = m.sample(rng).0.min(i64::MAX as u64) as i64;
            d.requests
                .insert("memory".into(), Quantity::from_units(bytes).canonical(true));
        }
        if let Some(r) = &self.run_for {
            // Whole milliseconds: the annotation's resolution.
            let ms = r.sample(rng).0 / 1_000_000;
            d.run_for = Some(SimDuration::from_millis(ms.max(1)));
        }
        d
    }
}
