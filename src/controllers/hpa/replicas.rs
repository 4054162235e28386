//! The replica calculator for a CPU resource metric
//! (`replica_calculator.go`, `GetResourceReplicas`): pods are grouped into
//! ready-with-metrics, unready, missing and ignored; the usage ratio of the
//! ready ones against the target decides, within a 10 % tolerance; when
//! pods lack metrics or are unready the ratio is recomputed conservatively
//! (missing pods count as 100 % on a scale-down and 0 % on a scale-up,
//! unready ones as 0 % on a scale-up) and the scale is abandoned if that
//! flips its direction.

use crate::sim::{SimDuration, SimTime};

/// `--horizontal-pod-autoscaler-tolerance`.
pub const TOLERANCE: f64 = 0.1;
/// `--horizontal-pod-autoscaler-cpu-initialization-period`.
pub const CPU_INITIALIZATION_PERIOD: SimDuration = SimDuration::from_secs(300);
/// `--horizontal-pod-autoscaler-initial-readiness-delay`.
pub const INITIAL_READINESS_DELAY: SimDuration = SimDuration::from_secs(30);
/// metrics-server's window.
pub const METRIC_WINDOW: SimDuration = SimDuration::from_secs(15);

/// One pod as the calculator sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct PodSample {
    pub name: String,
    /// Being deleted, or Failed.
    pub ignored: bool,
    pub pending: bool,
    /// CPU request in millicores (summed over containers).
    pub request_milli: i64,
    /// Used CPU in millicores and the metric's timestamp; `None` if the
    /// metrics API has no sample for it.
    pub usage: Option<(f64, SimTime)>,
    pub start: Option<SimTime>,
    /// The Ready condition: (status, last transition).
    pub ready: Option<(bool, SimTime)>,
}

/// What the target asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// `averageUtilization`: percent of the request.
    Utilization(i64),
    /// `averageValue`: millicores per pod.
    AverageValue(f64),
}

/// The calculator's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Recommendation {
    pub replicas: i64,
    /// Current average utilization (percent of request) or value (millicores).
    pub current: f64,
}

fn unready(p: &PodSample, now: SimTime) -> bool {
    if p.pending {
        return true;
    }
    let (Some((ready, transition)), Some(start)) = (p.ready, p.start) else {
        return true;
    };
    let metric_at = p.usage.map(|u| u.1).unwrap_or(now);
    if start.after(CPU_INITIALIZATION_PERIOD) > now {
        !ready || metric_at < transition.after(METRIC_WINDOW)
    } else {
        !ready && start.after(INITIAL_READINESS_DELAY) > transition
    }
}

/// `GetResourceReplicas` (utilization) or `GetRawResourceReplicas`-style
/// average value, for `current` replicas.
pub fn calculate(
    pods: &[PodSample],
    target: Target,
    current: i64,
    now: SimTime,
) -> Result<Recommendation, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let mut ready: Vec<&PodSample> = Vec::new();
    let mut unready_pods: Vec<&PodSample> = Vec::new();
    let mut missing: Vec<&PodSample> = Vec::new();
    for p in pods {
        if p.ignored {
            continue;
        }
        if p.pending {
            unready_pods.push(p);
            continue;
        }
        if p.usage.is_none() {
            missing.push(p);
            continue;
        }
        if unready(p, now) {
            unready_pods.push(p);
            continue;
        }
        ready.push(p);
    }
    if ready.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    if let Target::Utilization(_) = target {
        if let Some(p) = pods.iter().find(|p| !p.ignored && p.request_milli <= 0) {
            return Err(format!(
                "missing request for cpu in container of pod {}",
                p.name
            ));
        }
    }
    // (usage, request) per pod counted.
    let mut counted: Vec<(f64, f64)> = ready
        .iter()
        .map(|p| (p.usage.map_or(0.0, |u| u.0), p.request_milli as f64))
        .collect();
    let ratio_of = |c: &[(f64, f64)]| -> (f64, f64) {
        let used: f64 = c.iter().map(|x| x.0).sum();
        match target {
            Target::Utilization(t) => {
                let req: f64 = c.iter().map(|x| x.1).sum();
                let util = (used * 100.0 / req).trunc();
                (util / t as f64, util)
            }
            Target::AverageValue(v) => {
                let avg = used / c.len() as f64;
                (avg / v, avg)
            }
        }
    };
    let (ratio, util) = ratio_of(&counted);
    let scale_up_with_unready = !unready_pods.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && missing.is_empty() {
        if (1.0 - ratio).abs() <= TOLERANCE {
            return Ok(Recommendation {
                replicas: current,
                current: util,
            });
        }
        return Ok(Recommendation {
            replicas: (ratio * ready.len() as f64).ceil() as i64,
            current: util,
        });
    }
    for p in &missing {
        let req = p.request_milli as f64;
        if ratio < 1.0 {
            let fallback = match target {
                Target::Utilization(t) => req * (t.max(100) as f64) / 100.0,
                Target::AverageValue(v) => v,
            };
            counted.push((fallback, req));
        } else if ratio > 1.0 {
            counted.push((0.0, req));
        }
    }
    if scale_up_with_unready {
        for p in &unready_pods {
            counted.push((0.0, p.request_milli as f64));
        }
    }
    let (new_ratio, _) = ratio_of(&counted);
    if (1.0 - new_ratio).abs() <= TOLERANCE
        || (ratio < 1.0 && new_ratio > 1.0)
        || (ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok(Recommendation {
            replicas: current,
            current: util,
        });
    }
    let replicas = (new_ratio * counted.len() as f64).ceil() as i64;
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(Recommendation {
            replicas: current,
            current: util,
        });
    }
    Ok(Recommendation {
        replicas,
        current: util,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SimTime {
        SimTime::ZERO.after(SimDuration::from_secs(s))
    }

    fn pod(name: &str, usage: Option<f64>) -> PodSample {
        PodSample {
            name: name.into(),
            ignored: false,
            pending: false,
            request_milli: 1000,
            usage: usage.map(|u| (u, t(1000))),
            start: Some(t(0)),
            ready: Some((true, t(10))),
        }
    }

    // Cases after upstream's replica_calculator_test.go.
    #[test]
    fn scale_up_by_the_usage_ratio() {
        let pods = [
            pod("a", Some(300.0)),
            pod("b", Some(500.0)),
            pod("c", Some(700.0)),
        ];
        let r = calculate(&pods, Target::Utilization(30), 3, t(1000)).unwrap();
        assert_eq!(r.replicas, 5);
        assert_eq!(r.current, 50.0);
    }

    #[test]
    fn within_tolerance_keeps_the_count() {
        let pods = [
            pod("a", Some(1010.0)),
            pod("b", Some(1030.0)),
            pod("c", Some(1020.0)),
        ];
        let r = calculate(&pods, Target::Utilization(100), 3, t(1000)).unwrap();
        assert_eq!(r.replicas, 3);
    }

    #[test]
    fn scale_down_counts_missing_pods_as_full() {
        let pods = [
            pod("a", Some(100.0)),
            pod("b", Some(300.0)),
            pod("c", Some(500.0)),
            pod("d", None),
        ];
        let r = calculate(&pods, Target::Utilization(50), 4, t(1000)).unwrap();
        // ratio 0.6 over three; with d at 100% the ratio is 0.95 → tolerance.
        assert_eq!(r.replicas, 4);
        let pods = [
            pod("a", Some(100.0)),
            pod("b", Some(100.0)),
            pod("c", Some(100.0)),
            pod("d", None),
        ];
        let r = calculate(&pods, Target::Utilization(50), 4, t(1000)).unwrap();
        // (300 + 1000) / 4000 = 32.5% → ratio 0.65 → ceil(2.6) = 3.
        assert_eq!(r.replicas, 3);
    }

    #[test]
    fn scale_up_counts_unready_pods_as_idle() {
        let mut fresh = pod("d", Some(900.0));
        fresh.start = Some(t(900));
        fresh.ready = Some((false, t(900)));
        let pods = [
            pod("a", Some(300.0)),
            pod("b", Some(500.0)),
            pod("c", Some(700.0)),
            fresh,
        ];
        let r = calculate(&pods, Target::Utilization(30), 4, t(1000)).unwrap();
        // 1500 / 4000 = 37.5% (truncated 37) / 30 → ceil(1.233 × 4) = 5.
        assert_eq!(r.replicas, 5);
    }

    #[test]
    fn no_requests_is_an_error() {
        let mut p = pod("a", Some(100.0));
        p.request_milli = 0;
        assert!(calculate(&[p], Target::Utilization(50), 1, t(1000))
            .unwrap_err()
            .contains("missing request"));
    }
}
