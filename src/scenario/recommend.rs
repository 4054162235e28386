//! What a sweep recommends: the variants' runs (one per seed) judged
//! together. A variant meets the objective when at least the objective's
//! `seedShare` of its seeds meet it (all of them by default); of those, the
//! cheapest by mean cost when the node pools have prices, the first in
//! sweep order otherwise or among equal costs (with ascending values, the
//! smallest setting that is enough).

use super::sweep::Outcome;

/// One variant's runs, in seed order.
pub struct VariantRuns<'a> {
    pub label: &'a str,
    pub runs: Vec<&'a Outcome>,
}

impl VariantRuns<'_> {
    /// Runs that met the objective.
    pub fn meeting(&self) -> usize {
        self.runs.iter().filter(|o| o.meets()).count()
    }

    /// Whether at least `share` (0..=1) of the seeds met it.
    pub fn meets(&self, share: f64) -> bool {
        let n = self.runs.len();
        // Compared in integers: 9 of 10 seeds meet a 90% share exactly.
        n > 0 && (self.meeting() as f64) >= (share * n as f64 - 1e-9).ceil()
    }

    /// The mean cost over the seeds.
    pub fn cost(&self) -> f64 {
        let n = self.runs.len().max(1) as f64;
        self.runs
            .iter()
            .map(|o| o.summary.over_time.cost)
            .sum::<f64>()
            / n
    }

    /// `(min, max)` of a figure over the seeds.
    pub fn spread(&self, figure: impl Fn(&Outcome) -> f64) -> (f64, f64) {
        self.runs
            .iter()
            .map(|o| figure(o))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            })
    }
}

/// The outcomes of [`super::sweep::run_all`] grouped by variant
/// (`per_variant` runs each, in order).
pub fn by_variant(outcomes: &[Outcome], per_variant: usize) -> Vec<VariantRuns<'_>> {
    outcomes
        .chunks(per_variant.max(1))
        .map(|runs| VariantRuns {
            label: &runs[0].label,
            runs: runs.iter().collect(),
        })
        .collect()
}

/// Whether any run was priced, so "cheapest" means something.
pub fn priced(outcomes: &[Outcome]) -> bool {
    outcomes.iter().any(|o| o.summary.over_time.cost > 0.0)
}

/// The variant a sweep recommends (see the module's doc).
pub fn recommended<'a>(groups: &'a [VariantRuns<'a>], share: f64) -> Option<&'a VariantRuns<'a>> {
    groups.iter().filter(|g| g.meets(share)).fold(
        None,
        |best: Option<&VariantRuns>, g| match best {
            Some(b) if b.cost() <= g.cost() => Some(b),
            _ => Some(g),
        },
    )
}

/// The sentence naming what [`recommended`] found.
pub fn verdict(outcomes: &[Outcome], per_variant: usize, share: f64) -> String {
    let groups = by_variant(outcomes, per_variant);
    let seeds = if per_variant > 1 {
        format!(" in {:.0}% of {per_variant} seeds", share * 100.0)
    } else {
        String::new()
    };
    match recommended(&groups, share) {
        Some(g) if priced(outcomes) => format!(
            "cheapest setting that meets the objective{seeds}: {} (cost {:.2}{})",
            g.label,
            g.cost(),
            if per_variant > 1 { " on average" } else { "" }
        ),
        Some(g) => format!(
            "smallest setting that meets the objective{seeds}: {}",
            g.label
        ),
        None => format!("no setting meets the objective{seeds}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::etcd::EtcdStore;
    use crate::report::stats::Stats;
    use crate::report::summary::{RunFacts, Summary};
    use crate::sim::SimTime;

    fn outcome(label: &str, meets: bool, cost: f64) -> Outcome {
        let report = crate::api::manifest::FieldReport::default();
        let facts = RunFacts {
            scenario: "s",
            description: "",
            seed: 1,
            simulated_s: 1.0,
            end: SimTime::ZERO,
            digest: String::new(),
            trace_digest: String::new(),
            trace_records: 0,
            events: 0,
            etcd_members: 3,
            kubelets_down: 0,
            network_messages: 0,
            network_lost: 0,
            network_retransmitted: 0,
            report: &report,
            warnings: &[],
            not_reached: Vec::new(),
        };
        let mut summary = Summary::new(facts, &Stats::default(), &EtcdStore::new());
        summary.over_time.cost = cost;
        Outcome {
            label: label.into(),
            settings: Vec::new(),
            summary,
            unmet: if meets {
                Vec::new()
            } else {
                vec!["missed".into()]
            },
        }
    }

    #[test]
    fn a_variant_meets_when_its_share_of_seeds_does_and_the_cheapest_wins() {
        // Three variants × four seeds: a meets 2/4 (cost 1), b 3/4 (cost 2),
        // c 4/4 (cost 3).
        let mut all = Vec::new();
        for (label, meeting, cost) in [("a", 2, 1.0), ("b", 3, 2.0), ("c", 4, 3.0)] {
            for k in 0..4 {
                all.push(outcome(label, k < meeting, cost));
            }
        }
        let groups = by_variant(&all, 4);
        assert_eq!(groups.len(), 3);
        // Every seed required: only c.
        assert_eq!(recommended(&groups, 1.0).map(|g| g.label), Some("c"));
        // 75%: b and c meet; b is cheaper.
        assert_eq!(recommended(&groups, 0.75).map(|g| g.label), Some("b"));
        // Half: a too, and it is the cheapest.
        assert_eq!(recommended(&groups, 0.5).map(|g| g.label), Some("a"));
        assert_eq!(
            verdict(&all, 4, 0.75),
            "cheapest setting that meets the objective in 75% of 4 seeds: b (cost 2.00 on average)"
        );
        assert_eq!(groups[1].spread(|o| o.summary.over_time.cost), (2.0, 2.0));
    }

    #[test]
    fn without_prices_the_first_meeting_variant_is_named() {
        let all = vec![
            outcome("x", false, 0.0),
            outcome("y", true, 0.0),
            outcome("z", true, 0.0),
        ];
        assert_eq!(
            verdict(&all, 1, 1.0),
            "smallest setting that meets the objective: y"
        );
        let none = vec![outcome("x", false, 0.0)];
        assert_eq!(verdict(&none, 1, 1.0), "no setting meets the objective");
    }
}
