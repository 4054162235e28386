//! The driver's network faults beyond `partition`/`heal`: one-way cuts,
//! cuts between chosen groups, and degraded links (extra delay and packet
//! loss for a while). Each acts on the network model only
//! ([`crate::model::network`]); `heal` ends the cuts, `restoreLinks` the
//! degradations.

use std::fmt;

use super::driver::ScenarioDriver;
use super::Action;
use crate::model::msg::Payload;
use crate::model::network::{self, Degradation};
use crate::model::world::World;
use crate::sim::{ComponentId, Ctx, SimDuration};

/// `degradeLinks:` resolved: every link of each target (or only those to
/// `peers`) adds `extra_latency` to each segment and loses segments with
/// probability `loss` (repaired by TCP's retransmission).
#[derive(Clone, Debug, PartialEq)]
pub struct LinkDegrade {
    pub targets: Vec<String>,
    /// Empty: every link of the targets.
    pub peers: Vec<String>,
    pub extra_latency: SimDuration,
    pub loss: f64,
}

impl fmt::Display for LinkDegrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "degrade the links of {}", self.targets.join(", "))?;
        if !self.peers.is_empty() {
            write!(f, " to {}", self.peers.join(", "))?;
        }
        write!(f, ": +{}, loss {}", self.extra_latency, self.loss)
    }
}

impl ScenarioDriver {
    /// The ids of `names`; a component the cluster does not run (a
    /// disabled scheduler) has no links to cut.
    fn ids(&self, names: &[String]) -> Vec<ComponentId> {
        names
            .iter()
            .filter_map(|n| self.components.get(n).copied())
            .collect()
    }

    /// Plays one of this file's actions; `false` when `action` is not one.
    pub(super) fn network_fault(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        step: Option<u32>,
        what: &str,
        action: &Action,
    ) -> bool {
        match action {
            Action::PartitionOneWay { from, to } => {
                let (a, b) = (self.ids(from), self.ids(to));
                let to_ids = (!b.is_empty()).then_some(b.as_slice());
                network::partition_one_way(ctx, &a, to_ids);
                let target = format!("{}->{}", from.join(","), to.join(","));
                self.fault(ctx, step, what, "PartitionOneWay", &target, false);
            }
            Action::PartitionBetween(groups) => {
                let ids: Vec<Vec<ComponentId>> = groups.iter().map(|g| self.ids(g)).collect();
                network::partition_between(ctx, &ids);
                let target: Vec<String> = groups.iter().map(|g| g.join(",")).collect();
                self.fault(
                    ctx,
                    step,
                    what,
                    "PartitionBetween",
                    &target.join("|"),
                    false,
                );
            }
            Action::DegradeLinks(d) => {
                let peers = (!d.peers.is_empty()).then(|| self.ids(&d.peers));
                for target in self.ids(&d.targets) {
                    network::degrade_links(
                        ctx,
                        Degradation {
                            target,
                            peers: peers.clone(),
                            extra_latency: d.extra_latency,
                            loss: d.loss,
                        },
                    );
                }
                self.fault(ctx, step, what, "LinkDegrade", &d.targets.join(","), false);
            }
            Action::RestoreLinks(names) => {
                let ended = network::restore_links(ctx, &self.ids(names));
                self.fault(ctx, step, what, "LinkRestore", &names.join(","), ended == 0);
            }
            _ => return false,
        }
        true
    }
}
