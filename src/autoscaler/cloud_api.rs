//! The node-group API between the cluster autoscaler and the cloud
//! provider: upstream's `CloudProvider`/`NodeGroup` interface, as messages.
//! A `Refresh` answers what `NodeGroups()`, `TargetSize()` and `Nodes()`
//! would on one autoscaler loop; the two mutations answer whether they were
//! accepted.

use std::sync::Arc;

use super::config::MachineShape;
use crate::sim::SimTime;

/// A call the autoscaler makes.
#[derive(Clone, Debug)]
pub enum CloudCall {
    /// Every group's size and instances, for loop number `pass`.
    Refresh { pass: u64 },
    /// `NodeGroup.IncreaseSize(delta)`.
    IncreaseSize { group: u32, delta: u32 },
    /// `NodeGroup.DeleteNodes(nodes)`: terminate these instances.
    DeleteNodes { group: u32, nodes: Vec<String> },
}

impl CloudCall {
    /// The fields that identify the call, for the run digest.
    pub fn tag(&self) -> u64 {
        match self {
            CloudCall::Refresh { pass } => *pass << 2,
            CloudCall::IncreaseSize { group, delta } => {
                (u64::from(*group) << 34) | (u64::from(*delta) << 2) | 1
            }
            CloudCall::DeleteNodes { group, nodes } => {
                (u64::from(*group) << 34) | ((nodes.len() as u64) << 2) | 2
            }
        }
    }
}

/// A call on the wire, with the controller (of the calling process) that
/// made it, so the answer finds its way back.
#[derive(Clone, Debug)]
pub struct CloudRequest {
    pub controller: u8,
    pub call: CloudCall,
}

/// Where an instance is in its life, as `cloudprovider.InstanceState` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceState {
    /// Asked for; the machine is booting.
    Creating,
    /// Booted: its kubelet runs (and registers its Node).
    Running,
}

/// One instance of a group.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// The Node name its kubelet registers.
    pub name: String,
    pub state: InstanceState,
    /// When it was asked for.
    pub requested: SimTime,
}

/// One group as a refresh reports it.
#[derive(Clone, Debug)]
pub struct GroupStatus {
    pub id: u32,
    pub name: String,
    pub min: u32,
    pub max: u32,
    /// Instances asked for and not deleted (`TargetSize()`).
    pub target: u32,
    pub shape: Arc<MachineShape>,
    pub instances: Vec<Instance>,
}

/// What the cloud answers.
#[derive(Clone, Debug)]
pub enum CloudAnswer {
    Groups {
        pass: u64,
        groups: Vec<GroupStatus>,
    },
    Increased {
        group: u32,
        delta: u32,
        result: Result<(), String>,
    },
    Deleted {
        group: u32,
        nodes: Vec<String>,
        result: Result<(), String>,
    },
}

/// An answer on the wire, addressed to the controller that called.
#[derive(Clone, Debug)]
pub struct CloudReply {
    pub controller: u8,
    pub answer: CloudAnswer,
}

impl CloudReply {
    /// The fields that identify the answer, for the run digest.
    pub fn tag(&self) -> u64 {
        match &self.answer {
            CloudAnswer::Groups { pass, groups } => (*pass << 8) | groups.len() as u64,
            CloudAnswer::Increased {
                group,
                delta,
                result,
            } => (u64::from(*group) << 34) | (u64::from(*delta) << 2) | u64::from(result.is_ok()),
            CloudAnswer::Deleted {
                group,
                nodes,
                result,
            } => {
                (u64::from(*group) << 34)
                    | ((nodes.len() as u64) << 2)
                    | 2
                    | u64::from(result.is_ok())
            }
        }
    }
}
