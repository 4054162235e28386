//! Two samples of one latency side by side: their p50 and p90 (nearest
//! rank, as every percentile in a kubesim report) and the two-sample
//! Kolmogorov–Smirnov distance, the largest gap between their empirical
//! CDFs (0 when they agree everywhere, 1 when they do not overlap).

use serde::{Deserialize, Serialize};

use crate::report::charts::percentile;

/// One latency measured in both runs, in seconds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SideBySide {
    pub name: String,
    pub live: Quantiles,
    pub simulated: Quantiles,
    /// The KS distance of the two samples (absent when one is empty).
    pub ks: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Quantiles {
    pub n: usize,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    /// The samples, sorted, for the chart.
    pub samples: Vec<f64>,
}

impl Quantiles {
    pub fn of(mut samples: Vec<f64>) -> Quantiles {
        samples.sort_by(f64::total_cmp);
        let q = |p| (!samples.is_empty()).then(|| percentile(&samples, p));
        Quantiles {
            n: samples.len(),
            p50: q(0.5),
            p90: q(0.9),
            samples,
        }
    }
}

impl SideBySide {
    pub fn new(name: &str, live: Vec<f64>, simulated: Vec<f64>) -> SideBySide {
        let live = Quantiles::of(live);
        let simulated = Quantiles::of(simulated);
        let ks = ks_distance(&live.samples, &simulated.samples);
        SideBySide {
            name: name.to_string(),
            live,
            simulated,
            ks,
        }
    }
}

/// `sup |F_a(x) − F_b(x)|` over every x, for sorted samples `a` and `b`.
pub fn ks_distance(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0, 0, 0f64);
    while i < a.len() && j < b.len() {
        // Step past every sample equal to the smaller value in both, so
        // ties are compared after the jump, as the CDFs are.
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / na - j as f64 / nb).abs());
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_distance_is_the_largest_cdf_gap() {
        // Identical samples: 0.
        assert_eq!(ks_distance(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), Some(0.0));
        // Disjoint: 1.
        assert_eq!(ks_distance(&[1.0, 2.0], &[3.0, 4.0]), Some(1.0));
        // a = {1, 2, 3, 4}, b = {2.5, 3.5}: at x = 2, F_a = 2/4 and F_b = 0,
        // the largest gap (at 3, 3/4 − 1/2 = 1/4; at 4, 0).
        assert_eq!(ks_distance(&[1.0, 2.0, 3.0, 4.0], &[2.5, 3.5]), Some(0.5));
        // Ties jump together: a = {1, 1, 2}, b = {1, 2, 2}: after 1,
        // 2/3 − 1/3 = 1/3; after 2, both 1.
        let d = ks_distance(&[1.0, 1.0, 2.0], &[1.0, 2.0, 2.0]).unwrap();
        assert!((d - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(ks_distance(&[], &[1.0]), None);
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        // Ten samples 1..=10: p50 is the 5th, p90 the 9th.
        let q = Quantiles::of((1..=10).rev().map(f64::from).collect());
        assert_eq!((q.n, q.p50, q.p90), (10, Some(5.0), Some(9.0)));
        assert_eq!(Quantiles::of(vec![]).p50, None);
    }
}
