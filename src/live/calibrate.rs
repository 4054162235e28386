//! `kubesim calibrate LIVE_DIR`: the kubelet's latency distributions fitted
//! from what a live run measured, written as a `cluster.kubelet` block a
//! scenario includes (`cluster: {kubelet: {include: calibrated-kubelet.yaml}}`).
//!
//! Each runtime step the live kubelets traced (`RuntimeStep`: sandbox
//! create, container start, container stop) and each image import (the
//! live counterpart of a pull: content written and layers unpacked) is a
//! sample. A log-normal is fitted to each by maximum likelihood (the mean
//! and standard deviation of the samples' logarithms), and written as the
//! scenario form's `logNormal: {p50, p99}`: p50 = e^μ, p99 = e^(μ + z₉₉σ).
//! The logarithms go through `libm`, so the same run fits the same block on
//! every machine.
//!
//! This module fits and writes; nothing here talks to containerd, so it
//! runs anywhere the live run's directory is copied to.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::model::kubelet::KubeletConfig;
use crate::sim::dist::Z99;
use crate::sim::{LatencyDist, SimDuration};

use super::session::ImageImport;

/// A log-normal fitted to samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fitted {
    pub samples: usize,
    pub p50: SimDuration,
    pub p99: SimDuration,
}

impl Fitted {
    /// The maximum-likelihood log-normal of `samples` (nanoseconds); None
    /// for no samples. One sample, or all alike, fits a constant (p99 =
    /// p50). Zero samples are taken as 1 ns (a log-normal is positive).
    pub fn log_normal(samples: &[u64]) -> Option<Fitted> {
        if samples.is_empty() {
            return None;
        }
        let n = samples.len() as f64;
        let logs: Vec<f64> = samples
            .iter()
            .map(|&s| libm::log(s.max(1) as f64))
            .collect();
        let mu = logs.iter().sum::<f64>() / n;
        let var = logs.iter().map(|l| (l - mu) * (l - mu)).sum::<f64>() / n;
        let sigma = var.sqrt();
        let at = |z: f64| SimDuration::from_micros(round_micros(libm::exp(mu + z * sigma)));
        Some(Fitted {
            samples: samples.len(),
            p50: at(0.0),
            p99: at(Z99),
        })
    }

    /// The scenario form: `{logNormal: {p50: 93.4ms, p99: 210ms}}`.
    fn yaml(&self) -> String {
        format!("{{logNormal: {{p50: {}, p99: {}}}}}", self.p50, self.p99)
    }

    fn dist(&self) -> LatencyDist {
        LatencyDist::log_normal(self.p50, self.p99)
    }
}

/// Whole microseconds, at least one: a fitted latency is not written to
/// the nanosecond, which no measurement here resolves.
fn round_micros(ns: f64) -> u64 {
    (libm::round(ns / 1e3) as u64).max(1)
}

/// The fitted kubelet latencies of one live run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Calibration {
    pub sandbox_create: Option<Fitted>,
    pub container_start: Option<Fitted>,
    pub container_stop: Option<Fitted>,
    pub image_pull_overhead: Option<Fitted>,
}

impl Calibration {
    /// Fits the `RuntimeStep` samples by step (`sandbox`, `start`, `stop`,
    /// nanoseconds) and the image imports.
    pub fn fit(steps: &BTreeMap<String, Vec<u64>>, imports: &[ImageImport]) -> Calibration {
        let step = |s: &str| steps.get(s).and_then(|v| Fitted::log_normal(v));
        let unpacks: Vec<u64> = imports
            .iter()
            .map(|i| libm::round(i.seconds * 1e9) as u64)
            .collect();
        Calibration {
            sandbox_create: step("sandbox"),
            container_start: step("start"),
            container_stop: step("stop"),
            image_pull_overhead: Fitted::log_normal(&unpacks),
        }
    }

    fn fields(&self) -> [(&'static str, &'static str, Option<Fitted>); 4] {
        [
            (
                "sandboxCreateLatency",
                "sandbox creates",
                self.sandbox_create,
            ),
            (
                "containerStartLatency",
                "container starts",
                self.container_start,
            ),
            (
                "containerStopLatency",
                "container stops after SIGTERM",
                self.container_stop,
            ),
            (
                "imagePullOverhead",
                "image imports (write and unpack)",
                self.image_pull_overhead,
            ),
        ]
    }

    /// The `cluster.kubelet` block, with a comment saying where each
    /// distribution came from; fields without samples are left out (the
    /// scenario's own value, or the default, holds for them).
    pub fn yaml(&self, source: &str) -> String {
        let mut out = format!(
            "# cluster.kubelet fitted by `kubesim calibrate {source}`: log-normals by\n\
             # maximum likelihood. Include it with\n\
             #   cluster: {{kubelet: {{include: <this file>}}}}\n"
        );
        for (field, what, fit) in self.fields() {
            match fit {
                Some(f) => {
                    let _ = writeln!(out, "# from {} {what}", f.samples);
                    let _ = writeln!(out, "{field}: {}", f.yaml());
                }
                None => {
                    let _ = writeln!(out, "# {field}: no {what} measured; left as it was");
                }
            }
        }
        if self.fields().iter().all(|f| f.2.is_none()) {
            out.push_str("{}\n");
        }
        out
    }

    /// Sets the fitted distributions in `cfg`, leaving the rest.
    pub fn apply(&self, cfg: &mut KubeletConfig) {
        let set = |slot: &mut LatencyDist, f: Option<Fitted>| {
            if let Some(f) = f {
                *slot = f.dist();
            }
        };
        set(&mut cfg.sandbox_create, self.sandbox_create);
        set(&mut cfg.container_start, self.container_start);
        set(&mut cfg.container_stop, self.container_stop);
        set(&mut cfg.pull_overhead, self.image_pull_overhead);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load::load_str;

    #[test]
    fn the_fit_is_the_log_normal_of_the_samples_logarithms() {
        // Samples 50 ms and 200 ms: ln-mean is ln(100 ms) (their geometric
        // mean), σ = ln(2); p99 = 100 ms · e^(2.3263·0.6931) = 100 ms ·
        // e^1.6125 = 100 ms · 5.0153 = 501.5 ms.
        let f = Fitted::log_normal(&[50_000_000, 200_000_000]).unwrap();
        assert_eq!(f.samples, 2);
        assert_eq!(f.p50, SimDuration::from_millis(100));
        let p99 = f.p99.nanos() as f64 / 1e6;
        assert!((p99 - 501.53).abs() < 0.01, "{p99}");
        // One sample: a constant.
        let one = Fitted::log_normal(&[7_000_000]).unwrap();
        assert_eq!(
            (one.p50, one.p99),
            (SimDuration::from_millis(7), SimDuration::from_millis(7))
        );
        assert_eq!(Fitted::log_normal(&[]), None);
    }

    #[test]
    fn the_block_loads_into_a_scenario_and_sets_what_was_measured() {
        let mut steps = BTreeMap::new();
        steps.insert("sandbox".to_string(), vec![80_000_000, 120_000_000]);
        steps.insert("start".to_string(), vec![30_000_000]);
        let imports = vec![ImageImport {
            node: "w-1".into(),
            image: "busybox".into(),
            bytes: 1 << 20,
            seconds: 0.25,
        }];
        let c = Calibration::fit(&steps, &imports);
        assert!(c.container_stop.is_none());
        let yaml = c.yaml("runs/x-live");
        assert!(
            yaml.contains("# containerStopLatency: no container stops"),
            "{yaml}"
        );
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("k.yaml"), &yaml).unwrap();
        let scenario = "name: t\ncluster:\n  nodePools: [{name: w, capacity: {cpu: '1', memory: 1Gi, pods: '10'}}]\n  kubelet: {include: k.yaml}\n";
        let s = load_str("s.yaml", scenario, d.path()).expect("the written block loads");
        let mut expected = KubeletConfig::default();
        c.apply(&mut expected);
        assert_eq!(s.kubelet.sandbox_create, expected.sandbox_create);
        // Start: one sample of 30 ms, a constant log-normal; the import's
        // 250 ms becomes the pull overhead; stop keeps the default.
        assert_eq!(
            s.kubelet.container_start.median(),
            SimDuration::from_millis(30)
        );
        assert_eq!(
            s.kubelet.pull_overhead.median(),
            SimDuration::from_millis(250)
        );
        assert_eq!(
            s.kubelet.container_stop,
            KubeletConfig::default().container_stop
        );
    }
}
