//! Offered load on a workload, as a scenario describes it: requests per
//! second over time (steps), spread evenly over the workload's ready pods,
//! each request costing some CPU. This is what the resource metrics
//! pipeline (kubelet → metrics-server) would report as each pod's CPU use,
//! and what the HorizontalPodAutoscaler reacts to.

use crate::api::Kind;
use crate::sim::SimTime;

#[derive(Clone, Debug, PartialEq)]
pub struct LoadProfile {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    /// CPU a ready pod uses with no traffic, in millicores.
    pub idle_cpu_milli: f64,
    /// CPU one request per second costs, in millicores.
    pub cpu_per_request_milli: f64,
    /// (from, requests per second), in time order; zero before the first.
    pub steps: Vec<(SimTime, f64)>,
}

impl LoadProfile {
    /// Requests per second offered at `t`.
    pub fn rps_at(&self, t: SimTime) -> f64 {
        self.steps
            .iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .map_or(0.0, |(_, v)| *v)
    }

    /// One ready pod's CPU use at `t` with `ready` pods sharing the load.
    pub fn pod_cpu_milli(&self, t: SimTime, ready: usize) -> f64 {
        self.idle_cpu_milli + self.rps_at(t) * self.cpu_per_request_milli / ready.max(1) as f64
    }

    pub fn targets(&self, kind: Kind, namespace: &str, name: &str) -> bool {
        self.kind == kind && self.namespace == namespace && self.name == name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimDuration;

    #[test]
    fn load_steps_and_spreads_over_ready_pods() {
        let p = LoadProfile {
            kind: Kind::Deployment,
            namespace: "default".into(),
            name: "web".into(),
            idle_cpu_milli: 10.0,
            cpu_per_request_milli: 2.0,
            steps: vec![
                (SimTime::ZERO, 100.0),
                (SimTime::ZERO.after(SimDuration::from_secs(60)), 400.0),
            ],
        };
        assert_eq!(
            p.rps_at(SimTime::ZERO.after(SimDuration::from_secs(59))),
            100.0
        );
        assert_eq!(
            p.rps_at(SimTime::ZERO.after(SimDuration::from_secs(60))),
            400.0
        );
        assert_eq!(p.pod_cpu_milli(SimTime::ZERO, 2), 110.0);
        assert_eq!(p.pod_cpu_milli(SimTime::ZERO, 0), 210.0);
    }
}
