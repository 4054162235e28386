//! A scenario's stated objective: what "enough" means to a capacity planner.
//! `kubesim sweep` names the smallest setting whose run meets it; every run's
//! summary can be checked against it.

use crate::report::summary::Summary;
use crate::sim::SimDuration;

/// What a run must achieve. Without an `objective:` in the scenario, the
/// upstream pod-startup SLO with nothing left pending.
#[derive(Clone, Debug, PartialEq)]
pub struct Objective {
    /// Pods without a node at the end of the run, at most.
    pub max_pending_pods: u64,
    /// Pod startup (created to Running), p99, at most.
    pub pod_startup_p99: Option<SimDuration>,
    /// Requested CPU over allocatable at the end, at most (0..=1).
    pub max_cpu_requested: Option<f64>,
}

impl Default for Objective {
    fn default() -> Self {
        Objective {
            max_pending_pods: 0,
            pod_startup_p99: Some(SimDuration::from_secs(5)),
            max_cpu_requested: None,
        }
    }
}

impl Objective {
    /// What the run missed, one line per unmet clause; empty when it is met.
    pub fn unmet(&self, s: &Summary) -> Vec<String> {
        let mut out = Vec::new();
        if s.pods.unscheduled > self.max_pending_pods {
            let n = s.pods.unscheduled;
            out.push(format!(
                "{n} pod{} pending without a node (at most {})",
                if n == 1 { "" } else { "s" },
                self.max_pending_pods
            ));
        }
        if let Some(limit) = self.pod_startup_p99 {
            let p99 = s.pod_startup.created_to_running.p99_ms;
            if p99 > limit.as_secs_f64() * 1000.0 {
                out.push(format!("pod startup p99 {p99:.0} ms (at most {limit})"));
            }
        }
        if let Some(limit) = self.max_cpu_requested {
            let used = s.utilisation.cpu_fraction;
            if used > limit {
                out.push(format!(
                    "CPU requested {:.1}% of allocatable (at most {:.1}%)",
                    used * 100.0,
                    limit * 100.0
                ));
            }
        }
        out
    }

    /// The objective in one line, for tables and charts.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("at most {} pending pods", self.max_pending_pods)];
        if let Some(l) = self.pod_startup_p99 {
            parts.push(format!("pod startup p99 <= {l}"));
        }
        if let Some(l) = self.max_cpu_requested {
            parts.push(format!("CPU requested <= {:.0}%", l * 100.0));
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
