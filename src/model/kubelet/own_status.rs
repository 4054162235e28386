//! The kubelet's own copy of a pod's status, with a version that moves on
//! every mutable access, so the status manager's 10 s reconciliation can
//! pass over a pod whose own status and cached copy are both unchanged
//! since they last compared equal (upstream compares every pod every time;
//! the answer is the same, the work is not).

use std::ops::{Deref, DerefMut};

use crate::api::pod::PodStatus;

#[derive(Clone, Debug, Default)]
pub(super) struct OwnStatus {
    status: PodStatus,
    version: u64,
}

impl OwnStatus {
    pub(super) fn new(status: PodStatus) -> OwnStatus {
        OwnStatus { status, version: 0 }
    }

    /// Moves on whenever the status may have changed: every `&mut` borrow
    /// counts, written or not, so a change is never missed.
    pub(super) fn version(&self) -> u64 {
        self.version
    }
}

impl Deref for OwnStatus {
    type Target = PodStatus;
    fn deref(&self) -> &PodStatus {
        &self.status
    }
}

impl DerefMut for OwnStatus {
    fn deref_mut(&mut self) -> &mut PodStatus {
        self.version += 1;
        &mut self.status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::pod::PodPhase;

    #[test]
    fn a_mutable_borrow_moves_the_version_and_a_read_does_not() {
        let mut s = OwnStatus::new(PodStatus::default());
        let v0 = s.version();
        let _ = s.phase;
        assert_eq!(s.version(), v0);
        s.phase = PodPhase::Running;
        assert_eq!(s.version(), v0 + 1);
        assert_eq!(s.phase, PodPhase::Running);
    }
}
