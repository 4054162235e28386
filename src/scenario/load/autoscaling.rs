//! Loading `cluster.autoscaler` and the pools' `autoscaling`: the cluster
//! autoscaler's flags over upstream's defaults, and one node group per
//! autoscaled pool, its machines pre-named `<pool>-1 … <pool>-<maxSize>`.

use std::sync::Arc;

use super::super::spec::{AutoscalerSpec, ClusterSpec, Dur, NodePoolSpec};
use super::super::NodePlan;
use super::Loader;
use crate::autoscaler::config::MachineShape;
use crate::autoscaler::{AutoscalerConfig, Autoscaling, Expander, NodeGroupPlan};
use crate::sim::{LatencyDist, SimDuration};

/// The provisioning delay when a pool gives none: a kubesim default (a
/// cloud VM's boot and kubelet join), not an upstream one.
fn default_provisioning() -> LatencyDist {
    LatencyDist::log_normal(SimDuration::from_secs(90), SimDuration::from_secs(240))
}

impl Loader<'_> {
    /// How many nodes a pool names and how many of them run at the start.
    pub(super) fn pool_size(&mut self, pool: &NodePoolSpec, at: &str) -> (u32, u32) {
        let Some(a) = &pool.autoscaling else {
            let n = pool.count.unwrap_or(1);
            return (n, n);
        };
        if pool.join_at.is_some() {
            self.error(
                &format!("{at}.joinAt"),
                "an autoscaled pool's nodes join when the autoscaler asks the cloud for them, not at a set time",
            );
        }
        if a.max_size == 0 {
            self.error(&format!("{at}.autoscaling.maxSize"), "must be at least 1");
        }
        if a.min_size > a.max_size {
            self.error(
                &format!("{at}.autoscaling.minSize"),
                format!("minSize {} is above maxSize {}", a.min_size, a.max_size),
            );
        }
        let initial = pool.count.unwrap_or(a.min_size);
        if initial < a.min_size || initial > a.max_size {
            self.error(
                &format!("{at}.count"),
                format!(
                    "an autoscaled pool starts between its minSize and maxSize ({}..{}), not at {initial}",
                    a.min_size, a.max_size
                ),
            );
        }
        (a.max_size, initial.min(a.max_size))
    }

    /// The autoscaler, when any pool autoscales.
    pub(super) fn autoscaling(
        &mut self,
        c: &ClusterSpec,
        nodes: &[NodePlan],
    ) -> Option<Arc<Autoscaling>> {
        let mut groups = Vec::new();
        for (i, pool) in c.node_pools.iter().enumerate() {
            let Some(a) = &pool.autoscaling else { continue };
            let at = format!("cluster.nodePools[{i}].autoscaling.provisioningDelay");
            let provisioning = self.latency(&at, &a.provisioning_delay, default_provisioning());
            let members: Vec<&NodePlan> = nodes.iter().filter(|n| n.pool == pool.name).collect();
            let Some(first) = members.first() else {
                continue;
            };
            let mut labels = first.labels.clone();
            labels.remove("kubernetes.io/hostname");
            let allocatable = first
                .body
                .allocatable
                .iter()
                .map(|(k, q)| (k.clone(), crate::scheduler::resources::amount(k, q)))
                .collect();
            groups.push(Arc::new(NodeGroupPlan {
                name: pool.name.clone(),
                min: a.min_size,
                max: a.max_size,
                initial: members.iter().filter(|n| !n.standby).count() as u32,
                provisioning,
                shape: Arc::new(MachineShape {
                    labels,
                    taints: first.body.taints.clone(),
                    allocatable,
                    price_per_hour: first.price_per_hour,
                }),
                nodes: members.iter().map(|n| n.name.clone()).collect(),
            }));
        }
        let config = self.autoscaler_config(c.autoscaler.as_ref());
        if groups.is_empty() {
            if c.autoscaler.is_some() {
                self.error(
                    "cluster.autoscaler",
                    "no node pool has `autoscaling: {minSize, maxSize}`: the autoscaler would have no group to scale",
                );
            }
            return None;
        }
        Some(Arc::new(Autoscaling {
            config: Arc::new(config),
            groups,
        }))
    }

    fn autoscaler_config(&mut self, spec: Option<&AutoscalerSpec>) -> AutoscalerConfig {
        let mut cfg = AutoscalerConfig::default();
        let Some(s) = spec else { return cfg };
        const AT: &str = "cluster.autoscaler";
        for (value, slot) in [
            (s.scale_down_delay_after_add, &mut cfg.delay_after_add),
            (s.scale_down_delay_after_delete, &mut cfg.delay_after_delete),
            (
                s.scale_down_delay_after_failure,
                &mut cfg.delay_after_failure,
            ),
            (s.scale_down_unneeded_time, &mut cfg.unneeded_time),
            (s.scale_down_unready_time, &mut cfg.unready_time),
            (s.max_node_provision_time, &mut cfg.max_node_provision_time),
        ] {
            if let Some(Dur(d)) = value {
                *slot = d;
            }
        }
        if let Some(Dur(d)) = s.scan_interval {
            if self.at_least(
                &format!("{AT}.scanInterval"),
                d,
                SimDuration::from_millis(100),
                "a loop needs the cloud's answer to the previous one",
            ) {
                cfg.scan_interval = d;
            }
        }
        if let Some(t) = s.scale_down_utilization_threshold {
            if !(0.0..=1.0).contains(&t) {
                self.error(
                    &format!("{AT}.scaleDownUtilizationThreshold"),
                    format!("a share between 0 and 1, not {t}"),
                );
            } else {
                cfg.utilization_threshold = t;
            }
        }
        if let Some(g) = s.max_graceful_termination_sec {
            cfg.max_graceful_termination = SimDuration::from_secs(u64::from(g));
        }
        for (field, value, slot) in [
            (
                "maxScaleDownParallelism",
                s.max_scale_down_parallelism,
                &mut cfg.max_scale_down_parallelism,
            ),
            (
                "maxDrainParallelism",
                s.max_drain_parallelism,
                &mut cfg.max_drain_parallelism,
            ),
        ] {
            match value {
                Some(0) => self.error(&format!("{AT}.{field}"), "must be at least 1"),
                Some(n) => *slot = n as usize,
                None => {}
            }
        }
        cfg.max_nodes_total = s.max_nodes_total.unwrap_or(0);
        cfg.scale_down_enabled = s.scale_down_enabled.unwrap_or(true);
        cfg.skip_nodes_with_system_pods = s.skip_nodes_with_system_pods.unwrap_or(true);
        cfg.skip_nodes_with_local_storage = s.skip_nodes_with_local_storage.unwrap_or(true);
        if let Some(e) = &s.expander {
            match Expander::parse(e) {
                Some(x) => cfg.expander = x,
                None => {
                    let hint = crate::api::yaml::closest(e, &Expander::NAMES)
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    self.error(
                        &format!("{AT}.expander"),
                        format!(
                            "Unsupported value: `{e}`: supported values: {}{hint}",
                            Expander::NAMES.join(", ")
                        ),
                    );
                }
            }
        }
        cfg
    }
}
