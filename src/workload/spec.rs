//! The `workload:` section as written: serde types decoded strictly from
//! YAML. Templates are manifests, left as YAML here and decoded by the
//! loader against the Kubernetes types, where their own positions and field
//! paths are reported.

use std::fmt;

use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};

use crate::scenario::spec::{Dur, KubectlSpec};
use crate::sim::dist::LatencySpec;

/// `workload:`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSpec {
    /// The submitting client's rate limit (default kubectl's QPS 50, burst
    /// 300): a batch front end or trace replayer is one more API client.
    #[serde(default)]
    pub client: KubectlSpec,
    #[serde(default)]
    pub generators: Vec<GeneratorSpec>,
    #[serde(default)]
    pub imports: Vec<ImportSpec>,
}

/// One generator: arrivals, each creating an object from `template`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorSpec {
    /// Names the objects made: `<name>-<n>` from 1.
    pub name: String,
    pub arrival: ArrivalSpec,
    /// No arrival before this (default 0s) …
    pub start: Option<Dur>,
    /// … nor at or after this (default: the end of the run).
    pub stop: Option<Dur>,
    /// At most this many arrivals.
    pub count: Option<u64>,
    /// A Pod or a Job manifest; decoded by the loader.
    pub template: IgnoredAny,
    /// CPU request of the first container, drawn per arrival.
    pub cpu: Option<LatencySpec>,
    /// Memory request of the first container, drawn per arrival.
    pub memory: Option<LatencySpec>,
    /// How long its containers run before exiting 0 (`kubesim.io/run-for`).
    pub run_for: Option<LatencySpec>,
}

/// `arrival:`: exactly one process.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArrivalSpec {
    /// Evenly spaced arrivals at this rate.
    pub constant: Option<Rate>,
    /// A Poisson process of this rate (exponential gaps).
    pub poisson: Option<Rate>,
    /// A Poisson process whose rate follows a day's curve.
    pub diurnal: Option<DiurnalSpec>,
    /// A number of arrivals at given instants.
    pub bursts: Option<Vec<BurstSpec>>,
}

/// `diurnal:`: rate(t) = mean·(1 + a·cos(2π(t − peakAt)/period)), with `a`
/// chosen so that the peak rate is `peakToTrough` times the trough's.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiurnalSpec {
    pub mean: Rate,
    /// Peak rate over trough rate (default 3).
    pub peak_to_trough: Option<f64>,
    /// When in the period the rate peaks (default 14h).
    pub peak_at: Option<Dur>,
    /// Default 24h.
    pub period: Option<Dur>,
}

/// `bursts[]`: `count` arrivals at `at`, or spread evenly over `over`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BurstSpec {
    pub at: Dur,
    pub count: u64,
    pub over: Option<Dur>,
}

/// `imports[]`: exactly one source.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportSpec {
    pub alibaba_gpu_v2023: Option<AlibabaSpec>,
    pub google_borg2011: Option<BorgSpec>,
    /// `kubectl get nodes,deployments,pods,… -o yaml` of a live cluster:
    /// its Nodes become simulated nodes, its workloads are applied at the
    /// start without status (see [`super::cluster_dump`]).
    pub cluster_dump: Option<String>,
}

/// The Alibaba GPU cluster trace v2023 (`openb_*`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlibabaSpec {
    /// `openb_pod_list_*.csv`: its tasks become Pods.
    pub pods: Option<String>,
    /// `openb_node_list_*.csv`: its machines become simulated nodes.
    pub nodes: Option<String>,
    /// Default `default`.
    pub namespace: Option<String>,
    /// The image every task runs (default `busybox:1.36`).
    pub image: Option<String>,
    /// Only tasks created at or after this trace time …
    pub from: Option<Dur>,
    /// … and before this one.
    pub until: Option<Dur>,
    /// At most this many tasks, in creation order.
    pub limit: Option<u64>,
    /// What one imported node costs an hour …
    pub price_per_hour: Option<f64>,
    /// … plus this much for each of its GPUs.
    pub gpu_price_per_hour: Option<f64>,
}

/// Google's 2011 cluster trace (`machine_events`, `task_events` parts).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BorgSpec {
    #[serde(default)]
    pub task_events: Vec<String>,
    #[serde(default)]
    pub machine_events: Vec<String>,
    /// Cores that a normalised CPU of 1.0 stands for.
    pub cpu_scale: f64,
    /// Memory that a normalised 1.0 stands for (`128Gi`).
    pub memory_scale: crate::scenario::spec::Qty,
    pub namespace: Option<String>,
    pub image: Option<String>,
    /// Trace time that is the run's 0s (default 600s, the trace's start).
    pub from: Option<Dur>,
    pub until: Option<Dur>,
    pub limit: Option<u64>,
    pub price_per_hour: Option<f64>,
}

/// Events per second: `2` or `2/s`, `120/m`, `30/h`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate(pub f64);

impl Rate {
    pub fn parse(s: &str) -> Result<Rate, String> {
        let (n, per) = match s.split_once('/') {
            Some((n, u)) => (n.trim(), u.trim()),
            None => (s.trim(), "s"),
        };
        let secs = match per {
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            other => {
                return Err(format!(
                    "unknown rate unit `/{other}`: write /s, /m, /h or /d"
                ))
            }
        };
        match n.parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(Rate(v / secs)),
            _ => Err(format!(
                "a rate is a positive number per unit, such as 2/s or 120/m, not `{s}`"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Rate;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a rate such as 2/s, 120/m or 30/h")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Rate, E> {
                Rate::parse(s).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Rate, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Rate, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Rate, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_per_unit() {
        assert_eq!(Rate::parse("2").unwrap(), Rate(2.0));
        assert_eq!(Rate::parse("120/m").unwrap(), Rate(2.0));
        assert_eq!(Rate::parse("36/h").unwrap(), Rate(0.01));
        assert!(Rate::parse("0/s").is_err());
        assert!(Rate::parse("3/w").unwrap_err().contains("/w"));
    }
}
