//! `kubesim live SCENARIO --compare`: a live run and the simulation of the
//! same scenario and seed, side by side. Per pod, the instants of its life
//! in both runs; per latency, the two distributions with p50, p90 and the
//! KS distance (and a chart); and whether the deployment controller took
//! its scaling steps in the same order, which a rollout must.
//!
//! Written beside the live run as `compare.json` and
//! `charts/compare.{svg,png}`; `report.html` shows it when it is there.

pub mod chart;
pub mod distribution;
pub mod html;
pub mod lifecycle;

use std::path::Path;

use serde::{Deserialize, Serialize};

use distribution::SideBySide;
use lifecycle::{PodLife, RunLives};

/// The latencies compared: (name, from milestone, to milestone).
const INTERVALS: [(&str, usize, usize); 5] = [
    ("created → scheduled", 0, 1),
    ("scheduled → sandbox ready", 1, 2),
    ("sandbox ready → started", 2, 3),
    ("created → started (pod startup)", 0, 3),
    ("created → Ready", 0, 4),
];

/// The kubelet's runtime steps compared, by their `RuntimeStep` name.
const STEPS: [(&str, &str); 3] = [
    ("sandbox", "runtime: sandbox create"),
    ("start", "runtime: container start"),
    ("stop", "runtime: container stop"),
];

/// The comparison of a live run with its simulation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Comparison {
    pub seed: u64,
    /// Pods of both runs matched by controller and creation order.
    pub pods: Vec<PodRow>,
    /// Pod lifecycle latencies, then the kubelet's runtime steps.
    pub latencies: Vec<SideBySide>,
    pub steps: Vec<SideBySide>,
    pub scaling: ScalingOrder,
}

/// One pod in both runs; instants in seconds since each run's start.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PodRow {
    pub identity: String,
    pub live: Option<PodSide>,
    pub simulated: Option<PodSide>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PodSide {
    pub name: String,
    pub node: Option<String>,
    /// Per milestone (`created`, `scheduled`, `sandboxReady`, `started`,
    /// `ready`, `deleted`).
    pub at: Vec<Option<f64>>,
}

/// The deployment controller's `ScalingReplicaSet` steps in both runs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ScalingOrder {
    pub same: bool,
    /// The first step where they part, if they do.
    pub first_difference: Option<usize>,
    pub live: Vec<String>,
    pub simulated: Vec<String>,
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn side(p: &PodLife) -> PodSide {
    PodSide {
        name: p.name.clone(),
        node: p.node.clone(),
        at: p.at.iter().map(|t| t.map(seconds)).collect(),
    }
}

/// The samples of `from → to` (indexes of [`lifecycle::MILESTONES`]), in seconds,
/// over every pod that reached both.
pub fn interval(run: &RunLives, from: usize, to: usize) -> Vec<f64> {
    run.pods
        .values()
        .filter_map(|p| Some(seconds(p.at[to]?.saturating_sub(p.at[from]?))))
        .collect()
}

impl Comparison {
    /// Compares the traces of a live run and its simulation.
    pub fn of(live: &RunLives, simulated: &RunLives, seed: u64) -> Comparison {
        let mut identities: Vec<&String> = live.pods.keys().chain(simulated.pods.keys()).collect();
        identities.sort();
        identities.dedup();
        let pods = identities
            .into_iter()
            .map(|id| PodRow {
                identity: id.clone(),
                live: live.pods.get(id).map(side),
                simulated: simulated.pods.get(id).map(side),
            })
            .collect();
        let latencies = INTERVALS
            .iter()
            .map(|(name, a, b)| {
                SideBySide::new(name, interval(live, *a, *b), interval(simulated, *a, *b))
            })
            .collect();
        let samples = |run: &RunLives, step: &str| -> Vec<f64> {
            run.steps
                .get(step)
                .into_iter()
                .flatten()
                .map(|ns| seconds(*ns))
                .collect()
        };
        let steps = STEPS
            .iter()
            .map(|(step, name)| {
                SideBySide::new(name, samples(live, step), samples(simulated, step))
            })
            .collect();
        let first_difference = (0..live.scaling.len().max(simulated.scaling.len()))
            .find(|&i| live.scaling.get(i) != simulated.scaling.get(i));
        Comparison {
            seed,
            pods,
            latencies,
            steps,
            scaling: ScalingOrder {
                same: first_difference.is_none(),
                first_difference,
                live: live.scaling.clone(),
                simulated: simulated.scaling.clone(),
            },
        }
    }

    /// Reads both runs' traces and compares them.
    pub fn of_runs(live_dir: &Path, sim_dir: &Path, seed: u64) -> Result<Comparison, String> {
        let live = RunLives::read(&live_dir.join("trace.jsonl"))?;
        let simulated = RunLives::read(&sim_dir.join("trace.jsonl"))?;
        Ok(Comparison::of(&live, &simulated, seed))
    }

    /// The panels of the chart: pod startup and Ready, then the runtime
    /// steps (the table has the rest).
    pub fn chart_panels(&self) -> Vec<&SideBySide> {
        self.latencies
            .iter()
            .skip(3)
            .chain(&self.steps)
            .filter(|s| s.live.n > 0 || s.simulated.n > 0)
            .collect()
    }

    /// Writes `compare.json` and `charts/compare.{svg,png}` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        let json = serde_json::to_string_pretty(self).expect("a comparison serialises");
        let path = dir.join("compare.json");
        std::fs::write(&path, json + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        let charts = dir.join("charts");
        std::fs::create_dir_all(&charts).map_err(|e| format!("{}: {e}", charts.display()))?;
        let panels = self.chart_panels();
        let svg = chart::svg(&panels)?;
        let png = chart::png(&panels)?;
        for (file, bytes) in [("compare.svg", svg.as_bytes()), ("compare.png", &png[..])] {
            let path = charts.join(file);
            std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// Reads `compare.json` from a run directory, if it has one.
    pub fn read(dir: &Path) -> Option<Result<Comparison, String>> {
        let path = dir.join("compare.json");
        let text = std::fs::read_to_string(&path).ok()?;
        Some(
            serde_json::from_str(&text)
                .map_err(|e| format!("{}: not a kubesim comparison: {e}", path.display())),
        )
    }

    /// The comparison as the terminal shows it: a line per latency.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "compare  latency                              live p50/p90      sim p50/p90       KS\n",
        );
        let ms = |q: Option<f64>| q.map_or("-".to_string(), |s| format!("{:.0}", s * 1e3));
        for s in self.latencies.iter().chain(&self.steps) {
            let ks = s.ks.map_or("-".into(), |d| format!("{d:.2}"));
            out.push_str(&format!(
                "         {:<36} {:>6}/{:<6} ms  {:>6}/{:<6} ms  {ks}\n",
                s.name,
                ms(s.live.p50),
                ms(s.live.p90),
                ms(s.simulated.p50),
                ms(s.simulated.p90),
            ));
        }
        let order = if self.scaling.same {
            format!(
                "the same {} ScalingReplicaSet steps",
                self.scaling.live.len()
            )
        } else {
            let i = self.scaling.first_difference.unwrap_or(0);
            format!(
                "ScalingReplicaSet order differs at step {}: live {:?}, simulated {:?}",
                i + 1,
                self.scaling.live.get(i),
                self.scaling.simulated.get(i)
            )
        };
        out.push_str(&format!("compare  controller steps: {order}\n"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn life(id: &str, at: [Option<u64>; 6]) -> PodLife {
        PodLife {
            identity: id.into(),
            name: id.into(),
            node: Some("n1".into()),
            at,
        }
    }

    #[test]
    fn pods_are_matched_by_identity_and_intervals_use_pods_that_reached_both() {
        let s = 1_000_000_000;
        let mut live = RunLives::default();
        live.pods.insert(
            "rs#1".into(),
            life("rs#1", [Some(0), Some(s), None, Some(3 * s), None, None]),
        );
        live.pods.insert(
            "rs#2".into(),
            life("rs#2", [Some(s), Some(2 * s), None, None, None, None]),
        );
        live.scaling = vec!["a".into(), "b".into()];
        let mut sim = RunLives::default();
        sim.pods.insert(
            "rs#1".into(),
            life(
                "rs#1",
                [Some(0), Some(2 * s), None, Some(5 * s), None, None],
            ),
        );
        sim.scaling = vec!["a".into(), "c".into()];
        let c = Comparison::of(&live, &sim, 7);
        assert_eq!(c.pods.len(), 2);
        assert!(c.pods[1].simulated.is_none());
        // created → scheduled: live 1 s and 1 s, simulated 2 s.
        let sched = &c.latencies[0];
        assert_eq!(sched.live.samples, vec![1.0, 1.0]);
        assert_eq!(sched.simulated.samples, vec![2.0]);
        assert_eq!(sched.ks, Some(1.0));
        // created → started: only rs#1 started: live 3 s, simulated 5 s.
        assert_eq!(c.latencies[3].live.samples, vec![3.0]);
        assert_eq!(c.latencies[3].simulated.p50, Some(5.0));
        // The scaling steps part at the second.
        assert!(!c.scaling.same);
        assert_eq!(c.scaling.first_difference, Some(1));
        assert!(c.render().contains("differs at step 2"));
    }
}
