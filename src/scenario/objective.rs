//! A scenario's stated objective: what "enough" means to a capacity planner.
//! `kubesim sweep` names the smallest setting whose run meets it; every run's
//! summary can be checked against it.

use crate::report::summary::Summary;
use crate::sim::SimDuration;

/// What a run must achieve, read over the whole run where a planner asks
/// about the whole run. Without an `objective:` in the scenario, the
/// upstream pod-startup SLO with nothing left pending.
#[derive(Clone, Debug, PartialEq)]
pub struct Objective {
    /// Pods without a node at the end of the run, at most.
    pub max_pending_pods: u64,
    /// Pod-seconds spent waiting for a node over the run, at most.
    pub max_pending_pod_seconds: Option<f64>,
    /// The longest any pod waited for a node, at most.
    pub max_pod_wait: Option<SimDuration>,
    /// The pod-startup SLI's p99 (image pulls excluded, as upstream's SLO
    /// defines it), pods that never started counted as slower, at most.
    pub pod_startup_p99: Option<SimDuration>,
    /// Requested CPU over allocatable at the busiest instant, at most (0..=1).
    pub max_cpu_requested: Option<f64>,
    /// The run's node-hours at the pools' prices, at most.
    pub max_cost: Option<f64>,
    /// In a sweep over seeds, the share of seeds whose run must meet the
    /// rest (0..=1; every seed by default).
    pub seed_share: f64,
}

impl Default for Objective {
    fn default() -> Self {
        Objective {
            max_pending_pods: 0,
            max_pending_pod_seconds: None,
            max_pod_wait: None,
            pod_startup_p99: Some(SimDuration::from_secs(5)),
            max_cpu_requested: None,
            max_cost: None,
            seed_share: 1.0,
        }
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

impl Objective {
    /// What the run missed, one line per unmet clause; empty when it is met.
    pub fn unmet(&self, s: &Summary) -> Vec<String> {
        let mut out = Vec::new();
        let o = &s.over_time;
        if s.pods.unscheduled > self.max_pending_pods {
            let n = s.pods.unscheduled;
            out.push(format!(
                "{n} pod{} pending without a node at the end (at most {})",
                plural(n),
                self.max_pending_pods
            ));
        }
        if let Some(limit) = self.max_pending_pod_seconds {
            if o.pending_pod_seconds > limit {
                out.push(format!(
                    "{} pod-seconds waiting for a node (at most {limit}; peak {} pods at {:.0}s)",
                    o.pending_pod_seconds, o.peak_pending_pods, o.peak_pending_at_s
                ));
            }
        }
        if let Some(limit) = self.max_pod_wait {
            if o.longest_wait_s > limit.as_secs_f64() {
                out.push(format!(
                    "a pod waited {:.1}s for a node (at most {limit})",
                    o.longest_wait_s
                ));
            }
        }
        if let Some(limit) = self.pod_startup_p99 {
            let st = &s.pod_startup;
            match st.sli_p99_all_ms {
                Some(p99) if p99 > limit.as_secs_f64() * 1000.0 => {
                    out.push(format!("pod startup p99 {p99:.0} ms (at most {limit})"))
                }
                Some(_) => {}
                None => out.push(format!(
                    "pod startup p99 never reached: {} pod{} of {} never started (at most {limit})",
                    st.never_started,
                    plural(st.never_started),
                    st.sli.count as u64 + st.never_started
                )),
            }
        }
        if let Some(limit) = self.max_cpu_requested {
            let peak = o.peak_cpu_requested;
            if peak > limit {
                out.push(format!(
                    "CPU requested {:.1}% of allocatable at the peak (at most {:.1}%)",
                    peak * 100.0,
                    limit * 100.0
                ));
            }
        }
        if let Some(limit) = self.max_cost {
            if o.cost > limit {
                out.push(format!("cost {:.2} (at most {limit:.2})", o.cost));
            }
        }
        out
    }

    /// The objective in one line, for tables and charts.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("at most {} pending pods", self.max_pending_pods)];
        if let Some(l) = self.max_pending_pod_seconds {
            parts.push(format!("<= {l} pod-seconds pending"));
        }
        if let Some(l) = self.max_pod_wait {
            parts.push(format!("wait for a node <= {l}"));
        }
        if let Some(l) = self.pod_startup_p99 {
            parts.push(format!("pod startup p99 <= {l}"));
        }
        if let Some(l) = self.max_cpu_requested {
            parts.push(format!("CPU requested <= {:.0}%", l * 100.0));
        }
        if let Some(l) = self.max_cost {
            parts.push(format!("cost <= {l:.2}"));
        }
        if self.seed_share < 1.0 {
            parts.push(format!("in {:.0}% of seeds", self.seed_share * 100.0));
        }
        parts.join(", ")
    }
}

/// Reads `80%` or `0.8` as a fraction in 0..=1.
pub fn parse_fraction(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("`{t}` is not a fraction (write 80% or 0.8)"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("`{t}` is outside 0%..100%"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_read_as_percent_or_number() {
        assert_eq!(parse_fraction("80%"), Ok(0.8));
        assert_eq!(parse_fraction(" 0.25 "), Ok(0.25));
        assert!(parse_fraction("120%").unwrap_err().contains("outside"));
        assert!(parse_fraction("lots")
            .unwrap_err()
            .contains("not a fraction"));
    }
}
